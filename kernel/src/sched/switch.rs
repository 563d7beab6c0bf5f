//! The scheduler's one unsafe corner: saved register contexts, the switch
//! between them, and borrowing the running thread.
//!
//! Everything here rests on two invariants:
//! - a thread is owned by the scheduler (a CPU's `current`, the ready
//!   queue, a wait queue, or a CPU's `dead`) from before its context is
//!   first switched to until after the next thread has been switched to
//!   following its exit. So the running thread, and the context being
//!   switched to, are always alive;
//! - the scheduler's lock is held from choosing the next thread until
//!   after the old thread's registers are saved: [`switch`] takes it, and
//!   the thread switched to releases it ([`release`]), in `switch` after
//!   `switch_context` returns or in [`thread_entry`] for a new thread. A
//!   thread leaves the running state (back to the ready queue, blocked or
//!   dead) only under that lock, so no CPU can pick a thread whose context
//!   another CPU is still saving.

#![allow(unsafe_code)]

use core::cell::UnsafeCell;

use super::Thread;
use crate::arch::context::{Context, switch_context};
use crate::arch::irq_mask as irq;

/// A thread's saved callee-saved registers.
#[derive(Default)]
pub(super) struct SavedContext(UnsafeCell<Context>);

// SAFETY: the context is read and written only by `switch`, with IRQs
// masked, on the CPU that is switching away from or to its thread; no two
// CPUs ever switch the same thread at once.
unsafe impl Sync for SavedContext {}

impl SavedContext {
    /// A context that starts [`super::thread_start`] on an empty stack
    /// ending at `stack_top`.
    pub(super) fn new_thread(stack_top: usize) -> Self {
        Self(UnsafeCell::new(Context::new(stack_top, thread_entry)))
    }

    pub(super) fn ptr(&self) -> *mut Context {
        self.0.get()
    }
}

/// Switches from the running thread to the next one [`super::pick_next`]
/// chooses, if any (blocking the running thread first with `block`);
/// returns when the running thread is switched back to. IRQs must be
/// masked and no lock held.
pub(super) fn switch(block: bool) {
    debug_assert!(irq::masked());
    super::check_before_switch();
    let mut guard = super::SCHED.lock();
    let picked = guard.as_mut().and_then(|s| super::pick_next(s, block));
    let Some((from, to)) = picked.filter(|(from, to)| !core::ptr::eq(*from, *to)) else {
        drop(guard);
        return;
    };
    // Released by the thread switched to (module invariant).
    core::mem::forget(guard);
    // SAFETY: IRQs are masked and the scheduler's lock is held. `to` is the
    // context of the thread `pick_next` made current, which the scheduler
    // owns (module invariant), saved by an earlier switch (completed: its
    // CPU released the lock after saving it) or built by
    // `SavedContext::new_thread` over its live stack; `from` belongs to the
    // running thread, kept alive by the scheduler until another thread runs.
    unsafe { switch_context(from, to) };
    release();
    super::finish_switch();
}

/// Releases the scheduler's lock that the switch to this thread left held.
fn release() {
    // SAFETY: called only right after a switch lands on this thread (in
    // `switch` after `switch_context` returns, or first thing in
    // `thread_entry`); the switching CPU, this one, took the lock in
    // `switch` and forgot its guard, so the lock is held and nothing else
    // will release it.
    unsafe { super::SCHED.force_unlock() };
}

/// First code of every new thread: the switch to it left the scheduler's
/// lock held.
extern "C" fn thread_entry() -> ! {
    release();
    super::thread_start()
}

/// A counted reference to `thread`, the running thread (the address this
/// CPU's state holds).
pub(super) fn clone_running(thread: *const Thread) -> alloc::sync::Arc<Thread> {
    // SAFETY: `thread` came from `Arc::as_ptr` on the `Arc` the scheduler
    // keeps as this CPU's `current` (stored in `pick_next`, `init` or
    // `join_this_cpu`), which stays alive while it runs (module
    // invariant); the caller is that thread. Borrowing that `Arc` without
    // taking it (`ManuallyDrop`) and cloning it adds one strong count.
    let borrowed = core::mem::ManuallyDrop::new(unsafe { alloc::sync::Arc::from_raw(thread) });
    alloc::sync::Arc::clone(&borrowed)
}

/// Runs `f` with `thread`, the running thread, borrowed without a
/// reference count.
pub(super) fn borrow_running<R>(thread: *const Thread, f: impl FnOnce(&Thread) -> R) -> R {
    // SAFETY: `thread` is the scheduler's `current` on this CPU (the
    // address this CPU's state holds, read by the thread itself), which
    // stays alive while it runs and, after it exits,
    // in `dead` until the next thread has been switched to; `f` runs on
    // this thread, before either ends.
    f(unsafe { &*thread })
}
