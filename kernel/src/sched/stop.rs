//! Why a thread must stop: the answer of every safe point.
//!
//! A blocking call (wait, sleep, yield, read) first checks its thread's
//! pending signals and its account's kill-pending flag. If one is set it
//! returns [`Stop`] instead of blocking; the thread's code propagates it
//! with `?`, its destructors run on the way out, and whoever runs the
//! thread (the process layer) turns the reason into an exit status. A
//! `Stop` is never handled and carried on from: it is not an error.

use core::fmt;

/// Why a thread must stop at its next safe point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Killed (`kill`, or its session ended).
    Killed,
    /// Interrupted (Ctrl-C).
    Interrupted,
    /// A charge was forced over its account's limit.
    OutOfMemory,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::Killed => "killed",
            Stop::Interrupted => "interrupted",
            Stop::OutOfMemory => "out of memory (over its limit)",
        })
    }
}

/// A signal sent to a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Stop for good: [`Stop::Killed`].
    Kill,
    /// Ctrl-C: [`Stop::Interrupted`].
    Interrupt,
}

impl Signal {
    pub(super) fn bit(self) -> u8 {
        match self {
            Signal::Kill => 1,
            Signal::Interrupt => 2,
        }
    }
}
