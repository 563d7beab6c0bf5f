//! Processes and sessions.
//!
//! A process is a kernel thread with a pid, a parent, a session, a name, an
//! exit status and its own `quota` account, whose parent is its session's
//! account. A session is a tree of processes with one account at its root;
//! its leader (the shell) charges the session account directly.
//!
//! # Kill at a safe point
//! A process's thread stops at its next safe point (any blocking call, or
//! [`crate::sched::check_current`]) when it was killed, interrupted, or
//! flagged kill-pending by the allocator after a charge was forced over a
//! limit: the call returns a [`Stop`](crate::sched::Stop), the process's code propagates it
//! with `?` and returns, its destructors free what it holds, and the
//! process's run loop (the only place that does) turns the `Stop` into its
//! exit status.
//!
//! # Unwound beyond the overdraft
//! An allocation the allocator must refuse outright (beyond the overdraft)
//! panics in code that cannot handle failure. If the process's thread holds
//! no lock and is not in an interrupt handler, the panic handler unwinds it
//! ([`unwind_current`]) to the catch frame around its body in the run loop:
//! every destructor on the way runs, and the process exits killed for
//! memory, exactly as at a safe point. Only where unwinding is impossible
//! is it ended on the spot ([`terminate_current`]).

mod error;
mod exit;
mod table;

pub use error::ProcError;
pub use exit::{ExitStatus, OomReport};
pub use table::{
    Body, Spawn, find, kill, list, owner_of, spawn, spawn_session_in, terminate_current, try_wait,
    unwind_current, wait, wait_exit,
};

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

use procfs::PidsMax;
use quota::{Account, AccountId, AccountSnapshot};
use spin::Once;

use crate::heap::ACCOUNTS;
use crate::sched::{Signal, Thread, WaitQueue};
use crate::sync::IrqMutex;

/// A process id.
pub type Pid = u32;

/// A session: a tree of processes sharing one account.
pub struct Session {
    /// The session id: its leader's pid.
    pub sid: Pid,
    /// Root's session (the serial console): may change any limit.
    pub root: bool,
    account: Account<'static>,
    /// Processes of the session that have not exited (`pids.current`).
    pids: AtomicU32,
    /// Most processes it may have (`pids.max`); `u32::MAX` for none.
    pids_max: AtomicU32,
    /// Its leader has exited.
    ended: AtomicBool,
}

impl Session {
    /// The session's account.
    pub fn account(&self) -> &Account<'static> {
        &self.account
    }

    /// Its processes that have not exited (cgroup v2's `pids.current`).
    pub fn pids_current(&self) -> u32 {
        self.pids.load(Relaxed)
    }

    /// Its process limit (`pids.max`).
    pub fn pids_max(&self) -> PidsMax {
        PidsMax::from_raw(self.pids_max.load(Relaxed)).unwrap_or(PidsMax::UNLIMITED)
    }

    /// Sets its process limit. Processes already running are not touched;
    /// new ones are refused while `pids.current` is at or above it.
    pub fn set_pids_max(&self, max: PidsMax) {
        self.pids_max.store(max.to_raw(), Relaxed);
    }

    /// `pids.current` and `pids.max`, for `/proc/<pid>/memquota`.
    pub fn pids(&self) -> procfs::PidsUsage {
        procfs::PidsUsage {
            current: self.pids_current(),
            max: self.pids_max(),
        }
    }

    /// Whether its leader has exited (its files may outlive it).
    pub fn ended(&self) -> bool {
        self.ended.load(Relaxed)
    }

    /// Counts a new process against `pids.max` (an operator's command is
    /// counted but never refused).
    fn take_pid(&self, operator: bool) -> Result<(), ProcError> {
        let max = self.pids_max();
        self.pids
            .fetch_update(Relaxed, Relaxed, |n| {
                let next = n.saturating_add(1);
                (operator || max.admits(next)).then_some(next)
            })
            .map(drop)
            .map_err(|_| ProcError::PidsMax { max })
    }

    fn release_pid(&self) {
        let _ = self
            .pids
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }
}

/// Where a process is in its life.
#[derive(Clone, Debug)]
pub enum ProcState {
    /// Running or waiting.
    Live,
    /// Finished, waiting for its parent to collect the status.
    Exited(ExitStatus),
}

/// A process.
pub struct Process {
    /// Its id.
    pub pid: Pid,
    /// Its parent's id (0 for a session leader started by the kernel).
    pub ppid: Pid,
    /// Its session.
    pub session: Arc<Session>,
    /// Its name (the command).
    pub name: String,
    /// Its own account; `None` for a session leader, which charges the
    /// session's account.
    account: Option<Account<'static>>,
    state: IrqMutex<ProcState>,
    /// The terminal it is the foreground job of, if any.
    terminal: Option<Arc<dyn crate::tty::Terminal>>,
    /// Woken when it has exited.
    notify: Option<fn()>,
    /// Set when an out-of-memory kill is first noticed: which account was
    /// over its limit, as it was then.
    oom: IrqMutex<Option<OomReport>>,
    thread: Once<Weak<Thread>>,
    exited: WaitQueue,
    /// Its body is running inside the run loop's catch frame, so a panic
    /// in it may unwind to there.
    catching: AtomicBool,
    /// Its thread raised the unwind in flight, which has not been caught.
    unwinding: AtomicBool,
}

impl Process {
    /// The account this process charges.
    pub fn account_id(&self) -> AccountId {
        self.account.as_ref().unwrap_or(&self.session.account).id()
    }

    /// The account handle this process charges.
    pub fn account(&self) -> &Account<'static> {
        self.account.as_ref().unwrap_or(&self.session.account)
    }

    /// Whether this process leads its session.
    pub fn is_leader(&self) -> bool {
        self.account.is_none()
    }

    /// Its state now. The copy (an exit report holds text) is charged to
    /// the kernel: it is made under the state's lock, where an allocation
    /// refused over the caller's limit would halt the kernel.
    pub fn state(&self) -> ProcState {
        crate::heap::as_kernel(|| self.state.lock().clone())
    }

    /// Whether it has exited: allocates nothing, so it may be asked under
    /// a lock or in a wait condition (IRQs masked), where an allocation
    /// refused over the asker's limit would halt the kernel.
    pub fn has_exited(&self) -> bool {
        matches!(*self.state.lock(), ProcState::Exited(_))
    }

    /// Whether it is running (neither exited nor exiting): allocates
    /// nothing, as [`Process::has_exited`].
    pub fn is_live(&self) -> bool {
        matches!(*self.state.lock(), ProcState::Live)
    }

    /// A snapshot of its account.
    pub fn account_snapshot(&self) -> Option<AccountSnapshot> {
        ACCOUNTS.snapshot(self.account_id())
    }

    /// Records, once, which level was over its limit while the forced bytes
    /// are still charged, and counts the kill there (`events.oom_kill`).
    fn note_oom(&self) {
        let mut oom = self.oom.lock();
        if oom.is_some() {
            return;
        }
        *oom = Some(exit::oom_report(self));
    }

    /// Whether this process may see `other` in listings (`ps`, `ls /proc`,
    /// the account table) and read its files: `procfs`'s one read rule
    /// (root sees every session, anyone else only its own).
    pub fn may_read(&self, other: &Process) -> bool {
        let caller = procfs::Caller {
            root: self.session.root,
            sid: self.session.sid,
        };
        let target = procfs::Target {
            pid: other.pid,
            sid: other.session.sid,
            session_account: other.is_leader(),
            session_max: quota::Limit::Unlimited,
            session_pids_max: PidsMax::UNLIMITED,
        };
        procfs::check_read(caller, target).is_ok()
    }

    /// Its thread, while it exists.
    pub fn thread(&self) -> Option<Arc<Thread>> {
        self.thread.get().and_then(Weak::upgrade)
    }

    fn signal(&self, signal: Signal) {
        if let Some(thread) = self.thread() {
            thread.signal(signal);
        }
    }
}

/// The process `thread` runs, if it is a process's thread: borrowed from
/// the thread, so no reference count is taken.
pub fn of_thread(thread: &Thread) -> Option<&Arc<Process>> {
    thread.owner()?.downcast_ref::<Arc<Process>>()
}
