//! The process table: spawning, exiting, waiting, killing.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{
    AtomicBool, AtomicU32,
    Ordering::{Relaxed, SeqCst},
};

use quota::{Account, AccountFlags, Limit, NewAccount, Scope};
use spin::Once;

use super::{ExitStatus, Pid, ProcError, ProcState, Process, Session};
use crate::heap::{self, ACCOUNTS};
use crate::sched::{self, Signal, Stop, Thread, WaitQueue};
use crate::sync::IrqMutex;
use crate::tty::Terminal;

/// Stack of every process thread, charged to the process.
pub const STACK_BYTES: usize = 64 << 10;

static TABLE: IrqMutex<BTreeMap<Pid, Arc<Process>>> = IrqMutex::new(BTreeMap::new());
static NEXT_PID: AtomicU32 = AtomicU32::new(1);

/// What a process runs: it gets its own process and returns its exit code,
/// or the [`Stop`] a safe point returned, which ends it with that reason.
pub type Body = Box<dyn FnOnce(&Arc<Process>) -> Result<i32, Stop> + Send>;

/// What to start.
pub struct Spawn {
    /// The command name.
    pub name: String,
    /// The parent; `None` starts a new session led by this process.
    pub parent: Option<Arc<Process>>,
    /// For a new session: whether it is root's.
    pub root_session: bool,
    /// For a new session: its account's hard limit.
    pub session_max: Limit,
    /// For a new session: its process limit (`None`: none).
    pub pids_max: Option<u32>,
    /// A root session's cleanup command, or the console's session when
    /// the sessions' memory is exhausted: its account goes under
    /// `operator`, outside every session's limits and in the operator's
    /// reserve; it may use the thread slots kept for the operator and is
    /// not refused by `pids.max`.
    pub operator: bool,
    /// The terminal whose foreground job it is, made so before it first
    /// runs, so a Ctrl-C typed as soon as it starts reaches it.
    pub foreground: Option<Arc<dyn Terminal>>,
    /// Called when it has exited and its status can be collected (for a
    /// parent that waits for other things too).
    pub notify: Option<fn()>,
}

fn tag(pid: Pid, sid: Pid) -> u64 {
    (u64::from(sid) << 32) | u64::from(pid)
}

/// The pid and sid the kernel stores in an account's tag.
pub fn owner_of(tag: u64) -> (Pid, Pid) {
    ((tag & 0xffff_ffff) as Pid, (tag >> 32) as Pid)
}

/// The session a new process joins (a new one if it has no parent) and its
/// own account (`None` for a session leader, which charges the session's).
fn session_and_account(
    spec: &Spawn,
    pid: Pid,
    operator: bool,
    adopt: Option<Account<'static>>,
) -> Result<(Arc<Session>, Option<Account<'static>>), ProcError> {
    let user = |sid| NewAccount {
        flags: AccountFlags::empty(),
        tag: tag(pid, sid),
    };
    if let Some(parent) = &spec.parent {
        let session = parent.session.clone();
        session.take_pid(operator)?;
        let under = if operator {
            heap::operator_account()
        } else {
            session.account()
        };
        let account = ACCOUNTS
            .create(Some(under), user(session.sid))
            .map_err(|_| {
                session.release_pid();
                ProcError::NoMemory(heap::NoMemory::unexplained())
            })?;
        return Ok((session, Some(account)));
    }
    let under = if operator {
        heap::operator_account()
    } else {
        heap::users_account()
    };
    let account = match adopt {
        Some(account) => {
            let _ = ACCOUNTS.set_tag(account.id(), user(pid).tag);
            account
        }
        None => ACCOUNTS
            .create(Some(under), user(pid))
            .map_err(|_| ProcError::NoMemory(heap::NoMemory::unexplained()))?,
    };
    let _ = ACCOUNTS.set_max(account.id(), spec.session_max);
    let session = heap::as_kernel(|| {
        Arc::new(Session {
            sid: pid,
            root: spec.root_session,
            account,
            pids: AtomicU32::new(1),
            pids_max: AtomicU32::new(
                procfs::PidsMax::from_count(spec.pids_max)
                    .unwrap_or(procfs::PidsMax::UNLIMITED)
                    .to_raw(),
            ),
            ended: AtomicBool::new(false),
        })
    });
    Ok((session, None))
}

/// Starts a process running `body`.
///
/// Its account is created first (under its session's, or, for a new
/// session, a session account under `users`); its stack is charged to it
/// and refused, not forced, over the limit. The bookkeeping is the kernel's.
///
/// # Errors
/// [`ProcError::NoMemory`] if the account table is full or the stack
/// cannot be charged, [`ProcError::TooMany`] if every thread slot is taken;
/// nothing is left behind.
pub fn spawn(spec: Spawn, body: Body) -> Result<Arc<Process>, ProcError> {
    spawn_into(spec, None, STACK_BYTES, body)
}

/// Starts a session leader whose session's account is `account`, which
/// already holds what was allocated for the session before it had a
/// leader: an SSH connection's socket buffers). The account must be a
/// child of `users` with no children; its tag and `max` become the
/// session's. The leader runs on a stack of `stack_bytes`, charged to it.
/// `spec.parent` must be `None`.
///
/// # Errors
/// As [`spawn`]. On an error `account` is dropped (released once what it
/// holds is freed).
pub fn spawn_session_in(
    spec: Spawn,
    account: Account<'static>,
    stack_bytes: usize,
    body: Body,
) -> Result<Arc<Process>, ProcError> {
    debug_assert!(spec.parent.is_none() && !spec.operator);
    spawn_into(spec, Some(account), stack_bytes, body)
}

fn spawn_into(
    spec: Spawn,
    adopt: Option<Account<'static>>,
    stack_bytes: usize,
    body: Body,
) -> Result<Arc<Process>, ProcError> {
    let operator = spec.operator && spec.parent.as_ref().is_none_or(|p| p.session.root);
    let pid = NEXT_PID.fetch_add(1, Relaxed);
    let (session, account) = session_and_account(&spec, pid, operator, adopt)?;
    let process = heap::as_kernel(|| {
        Arc::new(Process {
            pid,
            ppid: spec.parent.as_ref().map_or(0, |p| p.pid),
            session,
            name: spec.name,
            account,
            state: IrqMutex::new(ProcState::Live),
            terminal: spec.foreground,
            notify: spec.notify,
            oom: IrqMutex::new(None),
            thread: Once::new(),
            exited: WaitQueue::new(),
            catching: AtomicBool::new(false),
            unwinding: AtomicBool::new(false),
        })
    });
    // Room for the one usual waiter (its parent, or the console), kept
    // with the process: waiting on it then allocates nothing, so what the
    // heap holds does not depend on whether that waiter, perhaps on
    // another CPU, has got to its wait yet.
    process.exited.reserve(1);
    let scope = Scope {
        account: process.account_id(),
        fallible: false,
    };
    // The thread borrows its process from its own `Thread` (its owner)
    // while it runs, so no reference count sits on its stack (see
    // `sched::thread_start`).
    let owner: sched::Owner = heap::as_kernel(|| Box::new(process.clone()));
    let slots = if operator {
        sched::Slots::Reserved
    } else {
        sched::Slots::Ordinary
    };
    let thread = heap::charge_to(process.account(), || {
        sched::create(
            "process",
            stack_bytes,
            scope,
            slots,
            Some(owner),
            move |thread| {
                if let Some(process) = super::of_thread(thread) {
                    run(process, body);
                }
            },
        )
    })
    .map_err(|e| {
        process.session.release_pid();
        match e {
            sched::SpawnError::NoMemory(why) => ProcError::NoMemory(why),
            sched::SpawnError::TooMany => ProcError::TooMany,
        }
    })?;
    // In the table, the console's foreground and its process before it
    // first runs, so a kill or a Ctrl-C typed as soon as it starts finds
    // and wakes it.
    process.thread.call_once(|| Arc::downgrade(&thread));
    heap::as_kernel(|| TABLE.lock().insert(pid, process.clone()));
    // A process started in a session whose leader is ending: the leader's
    // sweep (after it marked the session ended, before it took the table's
    // lock) may have missed it, so it is killed here; one that the sweep
    // saw is killed there. It stops at its first safe point.
    if !process.is_leader() && process.session.ended.load(SeqCst) {
        thread.signal(sched::Signal::Kill);
    }
    if let Some(terminal) = &process.terminal {
        terminal.set_foreground(Some(&thread));
    }
    sched::start(&thread);
    Ok(process)
}

/// The body of every process thread.
fn run(process: &Arc<Process>, body: Body) {
    // The body's locals are dropped when it returns, or when it is unwound
    // to here (`unwind_current`): a killed process's memory is freed before
    // its status is published.
    process.catching.store(true, Relaxed);
    let result = crate::arch::unwind::catch(|| body(process));
    process.catching.store(false, Relaxed);
    process.unwinding.store(false, Relaxed);
    let status = match result {
        // Unwound after an allocation beyond its overdraft: killed for
        // memory, as at a safe point.
        Err(_) | Ok(Err(Stop::OutOfMemory)) => oom_status(process),
        Ok(result) => exit_status(process, result),
    };
    finish(process, status);
}

/// The status of a body that returned.
fn exit_status(process: &Process, result: Result<i32, Stop>) -> ExitStatus {
    match result {
        Err(Stop::OutOfMemory) => oom_status(process),
        _ if ACCOUNTS.kill_pending(process.account_id()) => oom_status(process),
        Ok(code) => ExitStatus::Code(code),
        Err(Stop::Killed) => ExitStatus::Killed,
        Err(Stop::Interrupted) => ExitStatus::Interrupted,
    }
}

fn oom_status(process: &Process) -> ExitStatus {
    process.note_oom();
    let report = process.oom.lock().take();
    report.map_or(ExitStatus::Killed, ExitStatus::OutOfMemory)
}

/// Publishes `status`, wakes the parent, and, for a session leader, kills
/// the rest of its session. A process nobody will wait for is reaped now.
fn finish(process: &Arc<Process>, status: ExitStatus) {
    heap::as_kernel(|| *process.state.lock() = ProcState::Exited(status));
    if let Some(terminal) = &process.terminal {
        sched::with_current(|thread| terminal.clear_foreground_if(thread));
    }
    process.session.release_pid();
    if process.is_leader() {
        // Before the sweep below takes the table's lock: a process inserted
        // after that sees this (see `spawn_into`).
        process.session.ended.store(true, SeqCst);
    }
    let parent_alive = find(process.ppid).is_some_and(|p| p.is_live());
    if process.is_leader() {
        for other in list() {
            if other.session.sid == process.session.sid && other.pid != process.pid {
                other.signal(Signal::Kill);
            }
        }
    }
    // Nobody will wait for children that already exited; those still
    // running reap themselves, since their parent is no longer live.
    for child in list() {
        if child.ppid == process.pid && child.has_exited() {
            reap(child.pid);
        }
    }
    if !parent_alive {
        reap(process.pid);
    }
    process.exited.wake_all();
    if let Some(notify) = process.notify {
        notify();
    }
}

/// Removes `pid` from the table; once its thread is gone too, its account
/// is released. Memory pressure may have passed: refill the reserve.
fn reap(pid: Pid) {
    let removed = TABLE.lock().remove(&pid);
    drop(removed);
    heap::refill_emergency();
}

/// Waits for `child` (as [`spawn`] returned it to its parent) to exit,
/// collects its status and removes it from the table.
///
/// # Errors
/// The [`Stop`] if the parent must stop while waiting; the child is then
/// left to be collected later.
pub fn wait(child: Arc<Process>) -> Result<ExitStatus, Stop> {
    let pid = child.pid;
    child
        .exited
        .wait_until(|| matches!(*child.state.lock(), ProcState::Exited(_)))?;
    let status = match child.state() {
        ProcState::Exited(status) => status,
        ProcState::Live => unreachable!("waited until exited"),
    };
    drop(child);
    reap(pid);
    Ok(status)
}

/// Collects `pid`'s status if it has exited, without blocking.
pub fn try_wait(parent: &Process, pid: Pid) -> Option<ExitStatus> {
    let child = find(pid).filter(|c| c.ppid == parent.pid)?;
    let ProcState::Exited(status) = child.state() else {
        return None;
    };
    drop(child);
    reap(pid);
    Some(status)
}

/// The process with `pid`, live or exited but not yet collected.
pub fn find(pid: Pid) -> Option<Arc<Process>> {
    TABLE.lock().get(&pid).cloned()
}

/// Every process in the table, by pid.
pub fn list() -> Vec<Arc<Process>> {
    heap::as_kernel(|| TABLE.lock().values().cloned().collect())
}

/// Kills `pid` on behalf of `by`: it stops at its next safe point.
///
/// # Errors
/// [`ProcError::NotFound`], or [`ProcError::Permission`] for another
/// session's process when `by` is not root.
pub fn kill(by: &Process, pid: Pid) -> Result<(), ProcError> {
    let target = find(pid).ok_or(ProcError::NotFound)?;
    if !by.session.root && target.session.sid != by.session.sid {
        return Err(ProcError::Permission);
    }
    target.signal(Signal::Kill);
    Ok(())
}

/// Unwinds the running process's body to its run loop, from the panic
/// handler: every destructor on its stack runs, and it exits killed for
/// memory (see the module doc). Does not return then.
///
/// Returns if the running thread is not a process inside its body, or the
/// unwind cannot start. The caller has checked that the thread holds no
/// kernel lock, is not in an interrupt handler, had IRQs enabled (so it
/// was not inside the scheduler) and that the panic may unwind; it has
/// restored the IRQ state the panic interrupted.
pub fn unwind_current() {
    // Borrowed from the thread: no reference count may sit on the frames
    // this leaves behind.
    sched::try_with_current(|thread| {
        // Not twice: a failure in a destructor that its own unwind runs
        // leaves the flag set, for `terminate_current` to give the
        // unwind up.
        if let Some(process) = super::of_thread(thread)
            && process.catching.load(Relaxed)
            && !process.unwinding.swap(true, Relaxed)
        {
            crate::arch::unwind::raise(u64::from(process.pid));
            // Not raised.
            process.unwinding.store(false, Relaxed);
        }
    });
}

/// Ends the running process on the spot, from the panic handler: its
/// destructors do not run, so what it had allocated stays charged to its
/// account and is reported as leaked. The caller has checked that the
/// thread holds no kernel lock.
pub fn terminate_current(process: &Arc<Process>, why: &dyn core::fmt::Display) -> ! {
    let mut current = process.account_snapshot().map_or(0, |a| a.current);
    if process.is_leader() {
        // A leader charges the session's account: its children's accounts
        // sit under it, and what they hold is theirs, not the leader's.
        let session = process.session.account().id();
        let children: usize = ACCOUNTS
            .snapshots()
            .filter(|a| a.parent == Some(session))
            .map(|a| a.current)
            .sum();
        current = current.saturating_sub(children);
    }
    // The stack (a 16-aligned block, so a 16-byte header) is freed with
    // the thread; everything else stays charged.
    let stack = sched::with_current(Thread::stack_block_bytes) + 16usize.max(quota::HEADER_SIZE);
    let leaked = current.saturating_sub(stack);
    // Ended in the middle of its own unwind (a destructor it ran failed
    // again): that unwind will never complete.
    if process.unwinding.swap(false, Relaxed) {
        crate::arch::unwind::abandon(u64::from(process.pid));
    }
    crate::kprintln!(
        "\n{}[{}]: terminated on the spot ({why}); {leaked} bytes stay charged to its account",
        process.name,
        process.pid,
    );
    finish(process, ExitStatus::Terminated { leaked });
    sched::exit_current()
}

/// Blocks a kernel thread until `process` has exited (it is not reaped).
pub fn wait_exit(process: &Process) {
    let _ = process
        .exited
        .wait_until(|| matches!(*process.state.lock(), ProcState::Exited(_)));
}
