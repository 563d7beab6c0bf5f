//! `/proc`: files rendered by the `procfs` crate from snapshots of the
//! process table and the accounts, and `memquota` writes parsed into typed
//! requests and checked against `procfs`'s permission rules before
//! anything changes.
//!
//! Rendering is charged to the reader and reserved fallibly: a reader at
//! its limit gets an error, not a kill.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use procfs::{
    AccountRow, AccountTableView, Caller, CmdlineView, LimitKind, MeminfoView, MemquotaView,
    MemquotaWrite, PidFile, ProcPath, StatusView, Target,
};
use quota::AccountFlags;

use super::{Buffer, FsError};
use crate::heap::{self, ACCOUNTS};
use crate::proc::{self, ProcState, Process};
use crate::sync::IrqMutex;

fn caller_of(p: &Process) -> Caller {
    Caller {
        root: p.session.root,
        sid: p.session.sid,
    }
}

fn target_of(p: &Process) -> Target {
    let session_max = ACCOUNTS
        .snapshot(p.session.account().id())
        .map_or(quota::Limit::Unlimited, |s| s.max);
    Target {
        pid: p.pid,
        sid: p.session.sid,
        session_account: p.is_leader(),
        session_max,
        session_pids_max: p.session.pids_max(),
    }
}

/// Held while a limit write is checked and applied.
static LIMITS: IrqMutex<()> = IrqMutex::new(());

pub(super) fn target_process(
    caller: &Process,
    pid_ref: procfs::PidRef,
) -> Result<Arc<Process>, FsError> {
    proc::find(pid_ref.resolve(caller.pid)).ok_or(FsError::NotFound)
}

pub(super) fn render(
    caller: &Process,
    path: ProcPath,
    out: &mut Buffer,
) -> Result<fmt::Result, FsError> {
    Ok(match path {
        ProcPath::Root | ProcPath::PidDir(_) => return Err(FsError::IsDirectory),
        ProcPath::Meminfo => {
            let tmp = super::tmp_usage();
            let view = MeminfoView {
                heap: heap::snapshot(),
                tmp: procfs::TmpUsage {
                    size: quota::Limit::Bytes(tmp.size),
                    used: tmp.used,
                },
                operator_reserve: heap::operator_reserve(),
                pids_max: procfs::PidsMax::from_count(crate::cmdline::pids_max())
                    .unwrap_or(procfs::PidsMax::UNLIMITED),
                faults: ACCOUNTS.fault_policy(),
                pressure: crate::pressure::view(),
            };
            write!(out, "{view}")
        }
        ProcPath::Cmdline => write!(out, "{}", CmdlineView(crate::cmdline::raw())),
        ProcPath::Memquota => render_table(caller, out),
        ProcPath::PidFile(r, PidFile::Status) => {
            let p = target_process(caller, r)?;
            procfs::check_read(caller_of(caller), target_of(&p)).map_err(FsError::Permission)?;
            let state = match p.state() {
                ProcState::Live if p.pid == caller.pid => procfs::ProcState::Running,
                ProcState::Live => procfs::ProcState::Blocked,
                ProcState::Exited(_) => procfs::ProcState::Zombie,
            };
            let view = StatusView {
                name: &p.name,
                state,
                pid: p.pid,
                ppid: p.ppid,
                sid: p.session.sid,
            };
            write!(out, "{view}")
        }
        ProcPath::PidFile(r, PidFile::Memquota) => {
            let p = target_process(caller, r)?;
            procfs::check_read(caller_of(caller), target_of(&p)).map_err(FsError::Permission)?;
            let (Some(process), Some(session)) = (
                p.account_snapshot(),
                ACCOUNTS.snapshot(p.session.account().id()),
            ) else {
                return Err(FsError::NotFound);
            };
            write!(
                out,
                "{}",
                MemquotaView {
                    pid: p.pid,
                    sid: p.session.sid,
                    process,
                    session,
                    pids: p.session.pids(),
                }
            )
        }
    })
}

/// Renders the account table (`/proc/memquota`, the `memquota` command) as
/// `reader` may see it: root sees every account; anyone else only the
/// accounts of its own session (the read rule of [`Process::may_read`]).
///
/// Its working memory is charged to the reader and reserved fallibly: a
/// reader at its limit gets `fmt::Error`, not a kill.
pub fn render_table(reader: &Process, out: &mut impl Write) -> fmt::Result {
    let kernel = heap::kernel_account().id();
    let users = heap::users_account().id();
    // Room for the accounts now and a few created meanwhile; `take` keeps
    // the vectors from growing (infallibly) past what was reserved.
    let room = ACCOUNTS.snapshots().count() + 8;
    let mut snaps: Vec<quota::AccountSnapshot> = Vec::new();
    let mut rows: Vec<AccountRow<'_>> = Vec::new();
    heap::fallible(|| {
        snaps
            .try_reserve_exact(room)
            .and_then(|()| rows.try_reserve_exact(room))
    })
    .map_err(|_| fmt::Error)?;
    snaps.extend(ACCOUNTS.snapshots().take(room));
    let visible = |a: &&quota::AccountSnapshot| {
        reader.session.root || (a.tag != 0 && proc::owner_of(a.tag).1 == reader.session.sid)
    };
    rows.extend(snaps.iter().filter(visible).map(|a| {
        let (pid, sid) = proc::owner_of(a.tag);
        let owned = a.tag != 0;
        let label = if a.id == quota::AccountId::ROOT {
            "root"
        } else if a.id == kernel || a.flags.contains(AccountFlags::KERNEL) {
            "kernel"
        } else if a.id == users {
            "users"
        } else if a.id == heap::operator_account().id() {
            "operator"
        } else if !owned {
            // An account no process owns (the SSH server's pre-login one).
            "shared"
        } else if pid == sid {
            "session"
        } else {
            "process"
        };
        AccountRow {
            account: *a,
            pid: owned.then_some(pid),
            sid: owned.then_some(sid),
            label,
        }
    }));
    write!(out, "{}", AccountTableView { rows: &rows })
}

/// Applies a limit request to `target` on behalf of `caller`.
///
/// # Errors
/// [`FsError::Permission`] if the rules forbid it.
pub fn set_limit(
    caller: &Process,
    target: &Process,
    request: impl Into<MemquotaWrite>,
) -> Result<(), FsError> {
    // The check reads the session's max and the write may change it: one
    // step under one lock, so a check made before another writer lowered
    // the session's max can never apply after it (a non-root "set 4M"
    // checked against 8M must not undo root's "set 2M").
    let _limits = LIMITS.lock();
    let ok = procfs::check_write(caller_of(caller), target_of(target), request)
        .map_err(FsError::Permission)?
        .request();
    let id = target.account_id();
    let result = match ok {
        MemquotaWrite::Limit(limit) => match limit.kind() {
            LimitKind::Max => ACCOUNTS.set_max(id, limit.limit()),
            LimitKind::High => ACCOUNTS.set_high(id, limit.limit()),
        },
        MemquotaWrite::PidsMax(max) => {
            target.session.set_pids_max(max);
            Ok(())
        }
    };
    result.map_err(|_| FsError::NotFound)
}
