//! Preemptive round-robin scheduling of kernel threads.
//!
//! Each thread has its own stack and allocation scope. The timer tick asks
//! for a reschedule; the switch happens when the interrupt returns, or when
//! a thread blocks, yields or exits. Scheduler state is touched only with
//! IRQs masked, and a thread may not switch away holding a kernel lock.
//!
//! Every blocking call is a safe point: it returns [`Stop`] if the thread
//! was signalled or its account flagged kill-pending. The scheduler knows
//! nothing of processes; a thread's [`Owner`] is opaque to it.

mod stop;
mod switch;
mod thread;
mod wait;

pub use stop::{Signal, Stop};
pub use thread::{Owner, Thread, ThreadState};
pub use wait::WaitQueue;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::sync::atomic::Ordering::Relaxed;

use crate::arch::context::Context;
use crate::arch::irq_mask as irq;
use crate::cpu;
use crate::sync::IrqMutex;

/// Most threads alive at once (the ready queue never reallocates).
pub const MAX_THREADS: usize = 256;

/// Thread slots only [`Slots::Reserved`] threads may take: the console
/// operator's cleanup commands start even when the rest are taken.
pub const RESERVED_THREADS: usize = 8;

/// Which thread slots a new thread may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slots {
    /// All but the last [`RESERVED_THREADS`].
    Ordinary,
    /// Any, the reserved ones included.
    Reserved,
}

struct Scheduler {
    ready: VecDeque<Arc<Thread>>,
    current: Arc<Thread>,
    idle: Arc<Thread>,
    /// A thread that exited: dropped by the next thread to run, since a
    /// thread cannot free the stack it is running on.
    dead: Option<Arc<Thread>>,
    threads: usize,
}

static SCHED: IrqMutex<Option<Scheduler>> = IrqMutex::new(None);
static TICK: WaitQueue = WaitQueue::new();

/// Makes the running boot flow the idle thread and starts scheduling.
pub fn init() {
    let idle = crate::heap::as_kernel(|| Arc::new(Thread::boot("idle")));
    let ready = crate::heap::as_kernel(|| VecDeque::with_capacity(MAX_THREADS));
    *SCHED.lock() = Some(Scheduler {
        ready,
        current: idle.clone(),
        idle,
        dead: None,
        threads: 1,
    });
}

/// The running thread.
pub fn current() -> Arc<Thread> {
    SCHED
        .lock()
        .as_ref()
        .expect("sched::init ran")
        .current
        .clone()
}

/// Why a thread could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// Its stack could not be charged (the account or heap is full).
    NoMemory(crate::heap::NoMemory),
    /// [`MAX_THREADS`] are running.
    TooMany,
}

/// Creates a thread that will run `f`, taking one of `slots`, without
/// starting it: the caller
/// can publish it (e.g. in its process) before it can first run, then calls
/// [`start`]. Every created thread must be started.
///
/// The stack is charged to the current scope and refused, not forced, over
/// a limit; the thread's bookkeeping is the kernel's. The new thread runs
/// with `scope`, and stops at safe points when `scope.account` is flagged
/// kill-pending. `owner` is kept in the thread for its code to borrow.
///
/// # Errors
/// [`SpawnError`] if the stack cannot be had or too many threads run.
pub fn create(
    name: &'static str,
    stack_bytes: usize,
    scope: quota::Scope,
    slots: Slots,
    owner: Option<Owner>,
    f: impl FnOnce(&Thread) + Send + 'static,
) -> Result<Arc<Thread>, SpawnError> {
    let limit = match slots {
        Slots::Ordinary => MAX_THREADS - RESERVED_THREADS,
        Slots::Reserved => MAX_THREADS,
    };
    {
        let mut guard = SCHED.lock();
        let s = guard.as_mut().expect("sched::init ran");
        if s.threads >= limit {
            return Err(SpawnError::TooMany);
        }
        s.threads += 1;
    }
    let stack = match crate::heap::try_alloc_stack(stack_bytes) {
        Ok(stack) => stack,
        Err(why) => {
            if let Some(s) = SCHED.lock().as_mut() {
                s.threads -= 1;
            }
            return Err(SpawnError::NoMemory(why));
        }
    };
    Ok(crate::heap::as_kernel(|| {
        let entry: thread::Entry = Box::new(f);
        Arc::new(Thread::new(name, stack, scope, owner, entry))
    }))
}

/// Makes a created thread runnable.
pub fn start(thread: &Arc<Thread>) {
    if let Some(s) = SCHED.lock().as_mut() {
        thread.set_state(ThreadState::Ready);
        s.ready.push_back(thread.clone());
    }
}

/// Creates and starts a thread running `f` (see [`create`]).
///
/// # Errors
/// As [`create`].
pub fn spawn(
    name: &'static str,
    stack_bytes: usize,
    scope: quota::Scope,
    f: impl FnOnce(&Thread) + Send + 'static,
) -> Result<Arc<Thread>, SpawnError> {
    let thread = create(name, stack_bytes, scope, Slots::Reserved, None, f)?;
    start(&thread);
    Ok(thread)
}

/// Makes a blocked thread runnable.
pub fn wake(thread: &Arc<Thread>) {
    if thread.compare_state(ThreadState::Blocked, ThreadState::Ready)
        && let Some(s) = SCHED.lock().as_mut()
    {
        s.ready.push_back(thread.clone());
    }
}

/// Gives the CPU to the next ready thread, if any.
pub fn yield_now() {
    let saved = irq::save_and_mask();
    switch::switch();
    irq::restore(saved);
}

/// The timer tick: asks for a reschedule and wakes sleepers.
pub fn on_tick() {
    cpu::this().need_resched.store(true, Relaxed);
    TICK.wake_all();
}

/// At the end of an interrupt: switch if the tick asked for it.
pub fn preempt_if_needed() {
    if cpu::this().need_resched.swap(false, Relaxed) {
        switch::switch();
    }
}

/// Blocks the running thread until `deadline_ticks` (in timer ticks).
///
/// # Errors
/// The [`Stop`] if the thread must stop first.
pub fn sleep_until(deadline_ticks: u64) -> Result<(), Stop> {
    TICK.wait_until(|| crate::time::ticks() >= deadline_ticks)
}

/// A safe point that does not block: why the running thread must stop, if
/// it must.
///
/// # Errors
/// The [`Stop`].
pub fn check_current() -> Result<(), Stop> {
    with_current(Thread::check_stop)
}

/// Ends the running thread. Its stack is freed by the next thread to run.
pub fn exit_current() -> ! {
    let _ = irq::save_and_mask();
    current().set_state(ThreadState::Dead);
    switch::switch();
    unreachable!("a dead thread was scheduled");
}

/// Chooses the thread to run next and makes it current: the contexts to
/// switch from and to, or `None` to keep running. Checks that the running
/// thread holds no lock and did not overflow its stack.
fn pick_next() -> Option<(*mut Context, *mut Context)> {
    if let Some(name) = try_with_current(|t| (!t.stack_intact()).then_some(t.name)).flatten() {
        panic!("stack overflow in thread {name}");
    }
    let depth = cpu::this().lock_depth();
    assert!(
        depth == 0,
        "context switch while holding {depth} kernel lock(s)"
    );
    let mut guard = SCHED.lock();
    let s = guard.as_mut().expect("sched::init ran");
    let next = s.ready.pop_front().or_else(|| {
        (s.current.state() != ThreadState::Running && !Arc::ptr_eq(&s.current, &s.idle))
            .then(|| s.idle.clone())
    })?;
    let prev = core::mem::replace(&mut s.current, next.clone());
    match prev.state() {
        ThreadState::Running if !Arc::ptr_eq(&prev, &s.idle) => {
            prev.set_state(ThreadState::Ready);
            s.ready.push_back(prev.clone());
        }
        ThreadState::Dead => {
            s.threads -= 1;
            s.dead = Some(prev.clone());
        }
        _ => {}
    }
    next.set_state(ThreadState::Running);
    prev.save_scope(cpu::this().scope.get());
    cpu::this().scope.replace(next.scope());
    Some((prev.context.ptr(), next.context.ptr()))
}

/// Runs on the new thread after every switch: frees a thread that exited.
fn finish_switch() {
    let dead = SCHED.lock().as_mut().and_then(|s| s.dead.take());
    drop(dead);
}

/// First code of every new thread (its context's entry).
///
/// It holds no reference count on the thread it runs: a thread ended on
/// the spot never unwinds this frame, and must not keep its thread (and so
/// its stack and owner) alive from it.
extern "C" fn thread_start() -> ! {
    finish_switch();
    irq::enable();
    with_current(|thread| {
        let entry = thread.take_entry();
        if let Some(entry) = entry {
            entry(thread);
        }
    });
    exit_current();
}

/// Runs `f` with the running thread, borrowed without a reference count.
pub fn with_current<R>(f: impl FnOnce(&Thread) -> R) -> R {
    let thread = Arc::as_ptr(&SCHED.lock().as_ref().expect("sched::init ran").current);
    switch::borrow_running(thread, f)
}

/// Like [`with_current`], but `None` if the scheduler is locked (for the
/// panic path, which must not wait).
pub fn try_with_current<R>(f: impl FnOnce(&Thread) -> R) -> Option<R> {
    let thread = {
        let guard = SCHED.try_lock()?;
        Arc::as_ptr(&guard.as_ref()?.current)
    };
    Some(switch::borrow_running(thread, f))
}

/// The idle loop: sleeps until an interrupt, runs whatever became ready.
pub fn idle() -> ! {
    loop {
        irq::save_and_mask();
        let nothing_ready = SCHED.lock().as_ref().is_none_or(|s| s.ready.is_empty());
        if nothing_ready {
            // WFI wakes on a pending interrupt even while it is masked, so
            // a wake-up between the check and here is not slept through.
            irq::wait();
        }
        irq::enable();
        yield_now();
    }
}

/// The running thread's name, for reports; safe to call from a panic.
pub fn current_name() -> &'static str {
    SCHED
        .try_lock()
        .and_then(|s| s.as_ref().map(|s| s.current.name))
        .unwrap_or("?")
}
