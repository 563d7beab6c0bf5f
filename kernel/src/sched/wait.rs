//! Wait queues: block until a condition holds, or the thread must stop.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

use super::Stop;
use super::Thread;
use crate::arch::irq_mask as irq;
use crate::sync::IrqMutex;

/// Threads waiting for something.
pub struct WaitQueue {
    waiters: IrqMutex<Vec<Arc<Thread>>>,
    /// Room for waiters is kept once allocated ([`WaitQueue::reserve`]).
    keeps_room: AtomicBool,
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            waiters: IrqMutex::new(Vec::new()),
            keeps_room: AtomicBool::new(false),
        }
    }

    /// Allocates room for `waiters` waiters (charged to the kernel) and
    /// keeps it, and any room added later, for good: blocking and waking
    /// then change no memory. For queues that kernel threads sleep on and
    /// wake from at any moment (the network's), whose coming and going
    /// would otherwise show in the heap's figures between two readings.
    pub fn reserve(&self, waiters: usize) {
        self.keeps_room.store(true, Relaxed);
        let mut queue = self.waiters.lock();
        let more = waiters.saturating_sub(queue.len());
        crate::heap::as_kernel(|| queue.reserve_exact(more));
    }

    /// Blocks until `ready()` returns true. A wake-up from any CPU after
    /// the waiter enqueued itself is not lost: the waiter checks `ready()`
    /// after enqueuing, and blocks only if no wake-up came since (see
    /// `Thread::note_wakeup`). A blocking call is a safe point: if the
    /// calling thread must stop (signalled, or its account flagged by the
    /// allocator), it returns why instead.
    ///
    /// # Errors
    /// The [`Stop`].
    pub fn wait_until(&self, ready: impl FnMut() -> bool) -> Result<(), Stop> {
        let me = super::current();
        let result = self.wait_loop(&me, ready);
        // Leave no reference behind: a stale entry would keep an exited
        // thread's stack (charged to its process) alive.
        let mut waiters = self.waiters.lock();
        waiters.retain(|t| !Arc::ptr_eq(t, &me));
        if waiters.is_empty() && !self.keeps_room.load(Relaxed) {
            // Give the buffer back, so idle queues hold no memory.
            waiters.shrink_to_fit();
        }
        drop(waiters);
        result
    }

    fn wait_loop(&self, me: &Arc<Thread>, mut ready: impl FnMut() -> bool) -> Result<(), Stop> {
        loop {
            me.ready_to_wait();
            {
                let mut waiters = self.waiters.lock();
                if !waiters.iter().any(|t| Arc::ptr_eq(t, me)) {
                    crate::heap::as_kernel(|| waiters.push(me.clone()));
                }
            }
            // Memory orderings: the waker changes what `ready` reads, then
            // takes the queue's lock to wake; this took it to enqueue, so
            // either the waker sees this waiter, or this sees the change.
            me.check_stop()?;
            if ready() {
                return Ok(());
            }
            let saved = irq::save_and_mask();
            super::switch::switch(true);
            irq::restore(saved);
        }
    }

    /// Makes every waiter runnable; each re-checks its condition.
    ///
    /// Wakes in place, under the queue's lock (lock order: the queue, then
    /// the scheduler's; nothing takes them the other way), and gives the
    /// buffer back before letting go of it. A woken thread, which may run
    /// on another CPU at once, leaves [`WaitQueue::wait_until`] only
    /// through this lock: by then the waker holds no reference to it and
    /// has freed what it frees, so the heap's figures a woken thread reads
    /// do not depend on how far the waker (perhaps a timer interrupt on
    /// another CPU) has got, and the last reference to a thread is never
    /// dropped here.
    pub fn wake_all(&self) {
        let mut waiters = self.waiters.lock();
        for t in waiters.drain(..) {
            super::wake(&t);
        }
        if !self.keeps_room.load(Relaxed) {
            // Give the buffer back, so idle queues hold no memory.
            crate::heap::as_kernel(|| waiters.shrink_to_fit());
        }
    }
}
