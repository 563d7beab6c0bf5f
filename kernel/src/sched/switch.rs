//! The scheduler's one unsafe corner: saved register contexts, the switch
//! between them, and borrowing the running thread.
//!
//! Everything here rests on one invariant the rest of `sched` keeps: a
//! thread is owned by the scheduler (in `current`, the ready queue, a wait
//! queue, or `dead`) from before its context is first switched to until
//! after the next thread has been switched to following its exit. So the
//! running thread, and the context being switched to, are always alive.

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
        Self(UnsafeCell::new(Context::new(
            stack_top,
            super::thread_start,
        )))
    }

    pub(super) fn ptr(&self) -> *mut Context {
        self.0.get()
    }
}

/// Switches from the running thread to the next one [`super::pick_next`]
/// chooses, if any; returns when the running thread is switched back to.
/// IRQs must be masked and no lock held.
pub(super) fn switch() {
    debug_assert!(irq::masked());
    let Some((from, to)) = super::pick_next() else {
        return;
    };
    if !core::ptr::eq(from, to) {
        // SAFETY: IRQs are masked. `to` is the context of the thread
        // `pick_next` made current, which the scheduler owns (module
        // invariant), saved by an earlier switch or built by
        // `SavedContext::new_thread` over its live stack; `from` belongs to
        // the running thread, kept alive in the ready queue, a wait queue
        // or `dead` until another thread runs.
        unsafe { switch_context(from, to) };
    }
    super::finish_switch();
}

/// Runs `f` with `thread`, the running thread, borrowed without a
/// reference count.
pub(super) fn borrow_running<R>(thread: *const Thread, f: impl FnOnce(&Thread) -> R) -> R {
    // SAFETY: `thread` is the scheduler's `current` (the caller took it
    // under the lock), which stays alive while it runs and, after it exits,
    // in `dead` until the next thread has been switched to; `f` runs on
    // this thread, before either ends.
    f(unsafe { &*thread })
}
