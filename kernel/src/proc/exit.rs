//! Exit statuses, and the out-of-memory report a parent prints.

use alloc::string::String;
use core::fmt;

use procfs::HumanSize;
use quota::{Events, Limit};

use super::{Pid, Process};
use crate::heap::ACCOUNTS;

/// How a process ended.
#[derive(Clone, Debug)]
pub enum ExitStatus {
    /// It returned this code.
    Code(i32),
    /// Killed by `kill`.
    Killed,
    /// Interrupted by Ctrl-C.
    Interrupted,
    /// Killed at a safe point after a charge was forced over a limit.
    OutOfMemory(OomReport),
    /// Terminated on the spot: it exhausted its overdraft before reaching a
    /// safe point. Its destructors did not run; `leaked` bytes stay charged.
    Terminated {
        /// Bytes still charged to its account when it was terminated.
        leaked: usize,
    },
}

impl ExitStatus {
    /// The number `$?` shows: the code, or 128 + the signal a shell would
    /// report (130 for Ctrl-C, 137 for a kill of any kind).
    pub fn code(&self) -> i32 {
        match self {
            ExitStatus::Code(c) => *c,
            ExitStatus::Interrupted => 130,
            ExitStatus::Killed | ExitStatus::OutOfMemory(_) | ExitStatus::Terminated { .. } => 137,
        }
    }
}

/// Which account was over its limit when a process was killed for memory.
#[derive(Clone, Debug)]
pub struct OomReport {
    /// The process.
    pub pid: Pid,
    /// Its name.
    pub name: String,
    /// Whether that account is the session's rather than the process's.
    pub session_limit: bool,
    /// Its limit.
    pub limit: Limit,
    /// Its peak usage.
    pub peak: usize,
    /// Its events, the kill included.
    pub events: Events,
}

impl OomReport {
    /// A limit that would have let the process through
    /// ([`kcore::oom::suggested_limit`]: 1.5 × peak, rounded up).
    pub fn suggested_limit(&self) -> usize {
        kcore::oom::suggested_limit(self.peak)
    }
}

impl fmt::Display for OomReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whose = if self.session_limit {
            "the session's"
        } else {
            "its"
        };
        write!(
            f,
            "{}[{}]: killed: out of memory: over {whose} limit of {} bytes (peak {} bytes; events max={} high={} oom_kill={} forced={}); suggested limit: {} (1.5 x peak)",
            self.name,
            self.pid,
            self.limit,
            self.peak,
            self.events.max,
            self.events.high,
            self.events.oom_kill,
            self.events.forced,
            HumanSize(self.suggested_limit()),
        )
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit {c}"),
            ExitStatus::Killed => f.write_str("killed"),
            ExitStatus::Interrupted => f.write_str("interrupted"),
            ExitStatus::OutOfMemory(r) => write!(f, "{r}"),
            ExitStatus::Terminated { leaked } => {
                write!(
                    f,
                    "terminated on the spot: out of memory beyond its overdraft; {leaked} bytes leaked"
                )
            }
        }
    }
}

/// Finds the account over its limit (the process's own, else the nearest
/// ancestor), counts the kill there and describes it.
///
/// A process unwound after a refusal beyond the overdraft may have no
/// account over its limit (the refused charge was never made): the nearest
/// account with a limit is then the one that refused.
pub(super) fn oom_report(process: &Process) -> OomReport {
    let mut id = process.account_id();
    let mut chosen = None;
    let mut limited = None;
    while let Some(snap) = ACCOUNTS.snapshot(id) {
        // Over its max now, or once (only a forced charge takes the peak
        // past max): that is the level the process was forced over.
        if !snap.max.admits(snap.current) || !snap.max.admits(snap.peak) {
            chosen = Some(snap);
            break;
        }
        if limited.is_none() && snap.max != Limit::Unlimited {
            limited = Some(snap);
        }
        match snap.parent {
            Some(p) if p != crate::heap::users_account().id() => id = p,
            _ => break,
        }
    }
    let snap = chosen.or(limited).or_else(|| process.account_snapshot());
    let account = snap.map_or(process.account_id(), |s| s.id);
    let _ = ACCOUNTS.record_oom_kill(account);
    let snap = ACCOUNTS.snapshot(account).or(snap);
    OomReport {
        pid: process.pid,
        name: crate::heap::as_kernel(|| process.name.clone()),
        session_limit: account == process.session.account.id() && !process.is_leader(),
        limit: snap.map_or(Limit::Unlimited, |s| s.max),
        peak: snap.map_or(0, |s| s.peak),
        events: snap.map_or(Events::default(), |s| s.events),
    }
}
