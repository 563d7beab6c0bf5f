//! What the process layer's calls can fail with, and how a caller handles
//! it: every variant here is recoverable. Why a process must *stop* is not
//! an error: that is [`crate::sched::Stop`].

use core::fmt;

/// Why a process call failed; nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcError {
    /// Its account, stack or records could not be had (refused, not forced).
    NoMemory(crate::heap::NoMemory),
    /// No such process.
    NotFound,
    /// Another session's process, and the caller is not root.
    Permission,
    /// Every thread slot is taken.
    TooMany,
    /// The session has as many processes as its `pids.max`.
    PidsMax {
        /// The limit.
        max: procfs::PidsMax,
    },
}

impl fmt::Display for ProcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcError::PidsMax { max } => {
                return write!(
                    f,
                    "the session has as many processes as its limit (pids.max {max})"
                );
            }
            ProcError::NoMemory(why) => return write!(f, "{why}"),
            _ => {}
        }
        f.write_str(match self {
            ProcError::NotFound => "no such process",
            ProcError::Permission => "permission denied",
            ProcError::TooMany => "too many threads",
            ProcError::PidsMax { .. } | ProcError::NoMemory(_) => unreachable!("written above"),
        })
    }
}
