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

/// What stopped a process that was killed for memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OomCause {
    /// Its own account's limit.
    OwnLimit,
    /// Its session's limit.
    SessionLimit,
    /// No limit: the heap reached its floor, the bytes kept for the kernel.
    HeapFloor {
        /// The floor, in bytes.
        floor: usize,
    },
    /// No limit of its own: the sessions together used their share of
    /// the heap (`users`' max), which stops short of the floor by the
    /// operator's reserve.
    SessionsShare {
        /// The sessions' share, in bytes.
        max: usize,
    },
    /// No limit and no floor: a failure injected by `failslab`.
    Injected,
}

/// Which account was over its limit when a process was killed for memory.
#[derive(Clone, Debug)]
pub struct OomReport {
    /// The process.
    pub pid: Pid,
    /// Its name.
    pub name: String,
    /// What it ran into.
    pub cause: OomCause,
    /// Its limit (`max` when the heap floor stopped it).
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
        write!(f, "{}[{}]: killed: out of memory: ", self.name, self.pid)?;
        let events = format_args!(
            "events max={} high={} oom_kill={} forced={}",
            self.events.max, self.events.high, self.events.oom_kill, self.events.forced
        );
        let whose = match self.cause {
            OomCause::HeapFloor { floor } => {
                return write!(
                    f,
                    "the heap reached its floor ({floor} bytes kept for the kernel), not a limit (peak {} bytes; {events}); a larger limit would not help",
                    self.peak
                );
            }
            OomCause::SessionsShare { max } => {
                return write!(
                    f,
                    "all sessions together reached their share of the heap ({max} bytes; the rest above the floor is kept for the operator), not a limit of its own (peak {} bytes; {events})",
                    self.peak
                );
            }
            OomCause::Injected => {
                return write!(
                    f,
                    "an allocation failure injected by failslab (peak {} bytes; {events})",
                    self.peak
                );
            }
            OomCause::SessionLimit => "the session's",
            OomCause::OwnLimit => "its",
        };
        write!(
            f,
            "over {whose} limit of {} bytes (peak {} bytes; {events}); suggested limit: {} (1.5 x peak)",
            self.limit,
            self.peak,
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
    // A refusal beyond the overdraft committed nothing: judge "near" a
    // limit or the floor by the peak and a margin of what one refused step
    // could have been.
    let margin = quota::DEFAULT_OVERDRAFT + (1 << 20);
    let near = |used: usize, limit: Limit| match limit {
        Limit::Bytes(max) => used.saturating_add(margin) >= max,
        Limit::Unlimited => false,
    };
    let heap = crate::heap::snapshot();
    let near_floor = near(
        heap.table.kernel_bytes + heap.table.user_bytes,
        heap.table.heap_budget,
    );
    let near_limit = limited.filter(|l| near(l.peak, l.max));
    let injecting = ACCOUNTS.fault_policy() != quota::FaultPolicy::Off;
    let users = ACCOUNTS.snapshot(crate::heap::users_account().id());
    let sessions_share = users
        .filter(|u| process.account_id() != u.id && near(u.peak, u.max))
        .and_then(|u| match u.max {
            Limit::Bytes(max) => Some(max),
            Limit::Unlimited => None,
        })
        .filter(|_| {
            chosen.is_none() && near_limit.is_none() && crate::heap::operator_reserve() > 0
        });
    let (snap, floor) = match (chosen, near_limit) {
        (Some(over), _) => (Some(over), None),
        (None, None) if sessions_share.is_some() => (process.account_snapshot(), None),
        (None, _) if near_floor => (process.account_snapshot(), Some(heap.floor)),
        (None, Some(limit)) => (Some(limit), None),
        (None, None) if injecting => (process.account_snapshot(), None),
        (None, None) => (
            limited.or_else(|| process.account_snapshot()),
            limited.is_none().then_some(heap.floor),
        ),
    };
    let account = snap.map_or(process.account_id(), |s| s.id);
    let _ = ACCOUNTS.record_oom_kill(account);
    let snap = ACCOUNTS.snapshot(account).or(snap);
    let cause = if let Some(max) = sessions_share {
        OomCause::SessionsShare { max }
    } else if let Some(floor) = floor {
        OomCause::HeapFloor { floor }
    } else if chosen.is_none() && near_limit.is_none() && injecting && !near_floor {
        OomCause::Injected
    } else if account == process.session.account.id() && !process.is_leader() {
        OomCause::SessionLimit
    } else {
        OomCause::OwnLimit
    };
    OomReport {
        pid: process.pid,
        name: crate::heap::as_kernel(|| process.name.clone()),
        cause,
        limit: snap.map_or(Limit::Unlimited, |s| s.max),
        peak: snap.map_or(0, |s| s.peak),
        events: snap.map_or(Events::default(), |s| s.events),
    }
}
