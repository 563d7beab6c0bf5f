//! Errors of blocking kernel calls.

use core::fmt;

/// Why a kernel call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    /// The process was killed (`kill`).
    Killed,
    /// The process was interrupted (Ctrl-C).
    Interrupted,
    /// A charge was forced over the process's limit: it must exit now.
    OutOfMemory,
    /// An allocation was refused (a fallible path: nothing was changed).
    NoMemory,
    /// No such file or process.
    NotFound,
    /// Not allowed.
    Permission,
    /// Bad argument.
    Invalid,
    /// Too many threads or processes.
    TooMany,
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Errno::Killed => "killed",
            Errno::Interrupted => "interrupted",
            Errno::OutOfMemory => "out of memory (over its limit)",
            Errno::NoMemory => "cannot allocate memory",
            Errno::NotFound => "no such file or process",
            Errno::Permission => "permission denied",
            Errno::Invalid => "invalid argument",
            Errno::TooMany => "too many processes",
        })
    }
}
