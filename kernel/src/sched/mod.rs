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

/// One CPU's part of the scheduler.
struct OnCpu {
    /// The thread running there (its idle thread when nothing else runs).
    current: Arc<Thread>,
    idle: Arc<Thread>,
    /// A thread that exited there: dropped by the next thread to run
    /// there, since a thread cannot free the stack it is running on.
    dead: Option<Arc<Thread>>,
}

/// One ready queue for every CPU (a handful of CPUs share it without
/// measurable contention, and one queue balances load by itself), and what
/// each CPU runs.
struct Scheduler {
    ready: VecDeque<Arc<Thread>>,
    cpus: [Option<OnCpu>; cpu::MAX_CPUS],
    threads: usize,
}

impl Scheduler {
    /// This CPU's part (the caller holds the lock, so IRQs are masked and
    /// the CPU cannot change under it).
    fn here(&mut self) -> &mut OnCpu {
        self.cpus[cpu::index()]
            .as_mut()
            .expect("this CPU joined the scheduler")
    }
}

/// The scheduler. Held across a context switch: the CPU that switches away
/// from a thread releases it only on the thread it switched to, after the
/// old thread's registers are saved, so no other CPU can resume a thread
/// whose context is still being written.
static SCHED: IrqMutex<Option<Scheduler>> = IrqMutex::new(None);
static TICK: WaitQueue = WaitQueue::new();

/// The SGI that asks a CPU to reschedule (an idle CPU, for a thread made
/// ready elsewhere).
pub const RESCHED_SGI: u32 = 1;

/// Makes the running boot flow the boot CPU's idle thread and starts
/// scheduling.
pub fn init() {
    let idle = crate::heap::as_kernel(|| Arc::new(Thread::boot("idle")));
    let ready = crate::heap::as_kernel(|| VecDeque::with_capacity(MAX_THREADS));
    let mut cpus = [const { None }; cpu::MAX_CPUS];
    cpu::this()
        .running
        .store(Arc::as_ptr(&idle) as usize, Relaxed);
    cpus[cpu::index()] = Some(OnCpu {
        current: idle.clone(),
        idle,
        dead: None,
    });
    *SCHED.lock() = Some(Scheduler {
        ready,
        cpus,
        threads: 1,
    });
}

/// Makes the running boot flow of a secondary CPU its idle thread: from
/// now on the CPU takes threads from the ready queue (call [`idle`] next).
pub fn join_this_cpu() {
    let idle = crate::heap::as_kernel(|| Arc::new(Thread::boot("idle")));
    let mut guard = SCHED.lock();
    let s = guard.as_mut().expect("sched::init ran");
    cpu::this()
        .running
        .store(Arc::as_ptr(&idle) as usize, Relaxed);
    s.cpus[cpu::index()] = Some(OnCpu {
        current: idle.clone(),
        idle,
        dead: None,
    });
    s.threads += 1;
}

/// The running thread.
pub fn current() -> Arc<Thread> {
    switch::clone_running(running().expect("sched::init ran"))
}

/// The running thread's address, from this CPU's state (`None` before the
/// scheduler started here). Read with IRQs masked, so it is this CPU's;
/// after that the thread may move, but it is still the running thread.
fn running() -> Option<*const Thread> {
    let saved = irq::save_and_mask();
    let address = cpu::this().running.load(Relaxed);
    irq::restore(saved);
    (address != 0).then_some(address as *const Thread)
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
    let mut guard = SCHED.lock();
    if let Some(s) = guard.as_mut() {
        thread.set_state(ThreadState::Ready);
        s.ready.push_back(thread.clone());
        kick_idle(s);
    }
}

/// Asks one idle CPU other than this one, if any, to look at the ready
/// queue (it may be asleep in `wfi`).
fn kick_idle(s: &mut Scheduler) {
    let here = cpu::index();
    let idle =
        s.cpus.iter().enumerate().find(|(i, c)| {
            *i != here && c.as_ref().is_some_and(|c| Arc::ptr_eq(&c.current, &c.idle))
        });
    if let Some((i, _)) = idle {
        crate::arch::gic::send_sgi(RESCHED_SGI, 1 << i);
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

/// Makes a blocked thread runnable; a thread about to block does not
/// block (see [`Thread::note_wakeup`]).
pub fn wake(thread: &Arc<Thread>) {
    let mut guard = SCHED.lock();
    thread.note_wakeup();
    // A thread is set `Blocked` only under this lock, as its CPU switches
    // away from it (see `pick_next`): so a blocked thread here is off every
    // CPU, its registers saved.
    if thread.compare_state(ThreadState::Blocked, ThreadState::Ready)
        && let Some(s) = guard.as_mut()
    {
        s.ready.push_back(thread.clone());
        kick_idle(s);
    }
}

/// Gives the CPU to the next ready thread, if any.
pub fn yield_now() {
    let saved = irq::save_and_mask();
    switch::switch(false);
    irq::restore(saved);
}

/// This CPU's timer tick (or a reschedule SGI): asks for a reschedule at
/// the end of the interrupt.
pub fn on_tick() {
    cpu::this().need_resched.store(true, Relaxed);
}

/// The kernel's tick (one CPU's): wakes sleepers to check the time.
pub fn wake_sleepers() {
    TICK.wake_all();
}

/// At the end of an interrupt: switch if the tick asked for it.
pub fn preempt_if_needed() {
    if cpu::this().need_resched.swap(false, Relaxed) {
        switch::switch(false);
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
    switch::switch(false);
    unreachable!("a dead thread was scheduled");
}

/// Checks, before a switch, that the running thread holds no lock and did
/// not overflow its stack.
fn check_before_switch() {
    if let Some(name) = with_current(|t| (!t.stack_intact()).then_some(t.name)) {
        panic!("stack overflow in thread {name}");
    }
    let depth = cpu::this().lock_depth();
    assert!(
        depth == 0,
        "context switch while holding {depth} kernel lock(s)"
    );
}

/// Chooses the thread to run next on this CPU and makes it current: the
/// contexts to switch from and to, or `None` to keep running. With
/// `block`, the running thread blocks, unless a wake-up came since it last
/// cleared its flag. The caller holds the scheduler's lock through the
/// switch.
fn pick_next(s: &mut Scheduler, block: bool) -> Option<(*mut Context, *mut Context)> {
    let here = s.here();
    let prev = here.current.clone();
    if block && !prev.take_wakeup() {
        prev.set_state(ThreadState::Blocked);
    }
    let is_idle = Arc::ptr_eq(&prev, &here.idle);
    let next = match s.ready.pop_front() {
        Some(next) => next,
        None if prev.state() == ThreadState::Running || is_idle => return None,
        None => s.here().idle.clone(),
    };
    s.here().current = next.clone();
    match prev.state() {
        ThreadState::Running if !is_idle => {
            prev.set_state(ThreadState::Ready);
            s.ready.push_back(prev.clone());
        }
        ThreadState::Dead => {
            s.threads -= 1;
            s.here().dead = Some(prev.clone());
        }
        _ => {}
    }
    next.set_state(ThreadState::Running);
    let this = cpu::this();
    this.running.store(Arc::as_ptr(&next) as usize, Relaxed);
    prev.save_cpu_state(this.scope.get(), this.refusal.load(Relaxed));
    let (scope, refusal) = next.cpu_state();
    this.scope.replace(scope);
    this.refusal.store(refusal, Relaxed);
    Some((prev.context.ptr(), next.context.ptr()))
}

/// Runs on the new thread after every switch, the scheduler's lock
/// released: frees a thread that exited on this CPU.
fn finish_switch() {
    let dead = SCHED.lock().as_mut().and_then(|s| s.here().dead.take());
    drop(dead);
}

/// First code of every new thread (its context's entry).
///
/// It holds no reference count on the thread it runs: a thread ended on
/// the spot never unwinds this frame, and must not keep its thread (and so
/// its stack and owner) alive from it.
fn thread_start() -> ! {
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
    switch::borrow_running(running().expect("sched::init ran"), f)
}

/// Like [`with_current`], but `None` before the scheduler started on this
/// CPU (for the panic path, which may run that early).
pub fn try_with_current<R>(f: impl FnOnce(&Thread) -> R) -> Option<R> {
    Some(switch::borrow_running(running()?, f))
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
    try_with_current(|t| t.name).unwrap_or("?")
}
