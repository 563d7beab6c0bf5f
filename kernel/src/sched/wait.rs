//! Wait queues: block until a condition holds, or the process is killed.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Thread, ThreadState};
use crate::arch::irq;
use crate::proc::Errno;
use crate::sync::IrqMutex;

/// Threads waiting for something.
pub struct WaitQueue {
    waiters: IrqMutex<Vec<Arc<Thread>>>,
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            waiters: IrqMutex::new(Vec::new()),
        }
    }

    /// Blocks until `ready()` returns true (checked with IRQs masked, so a
    /// wake-up between the check and the block is not lost). A blocking
    /// call is a safe point: if the calling process has been killed,
    /// interrupted or flagged by the allocator, it returns the error instead.
    ///
    /// # Errors
    /// [`Errno::Killed`] or [`Errno::Interrupted`].
    pub fn wait_until(&self, ready: impl FnMut() -> bool) -> Result<(), Errno> {
        let me = super::current();
        let result = self.wait_loop(&me, ready);
        // Leave no reference behind: a stale entry would keep an exited
        // thread's stack (charged to its process) alive.
        let mut waiters = self.waiters.lock();
        waiters.retain(|t| !Arc::ptr_eq(t, &me));
        if waiters.is_empty() {
            // Give the buffer back, so idle queues hold no memory.
            waiters.shrink_to_fit();
        }
        drop(waiters);
        result
    }

    fn wait_loop(&self, me: &Arc<Thread>, mut ready: impl FnMut() -> bool) -> Result<(), Errno> {
        loop {
            let saved = irq::save_and_mask();
            if let Some(Err(e)) = me.process.as_ref().map(|p| p.check_alive()) {
                irq::restore(saved);
                return Err(e);
            }
            if ready() {
                irq::restore(saved);
                return Ok(());
            }
            {
                let mut waiters = self.waiters.lock();
                if !waiters.iter().any(|t| Arc::ptr_eq(t, me)) {
                    crate::heap::as_kernel(|| waiters.push(me.clone()));
                }
            }
            me.set_state(ThreadState::Blocked);
            super::switch();
            irq::restore(saved);
        }
    }

    /// Makes every waiter runnable; each re-checks its condition.
    pub fn wake_all(&self) {
        let waiters = core::mem::take(&mut *self.waiters.lock());
        for t in &waiters {
            super::wake(t);
        }
        crate::heap::as_kernel(|| drop(waiters));
    }
}
