//! A kernel thread: its saved registers, stack, state, allocation scope,
//! pending signals, and what it runs for.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::any::Any;
use core::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

use quota::{AccountId, Scope, ScopeCell};

use super::stop::{Signal, Stop};
use super::switch::SavedContext;
use crate::arch::stack::GuardedStack;
use crate::heap::ACCOUNTS;
use crate::sync::IrqMutex;

/// Where a thread is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ThreadState {
    /// Waiting for the CPU.
    Ready,
    /// On the CPU.
    Running,
    /// Waiting for an event.
    Blocked,
    /// Finished; its stack is about to be freed.
    Dead,
}

/// What a new thread runs: given its own thread, borrowed.
pub type Entry = Box<dyn FnOnce(&Thread) + Send>;

/// What a thread runs for, opaque to the scheduler (a process, for the
/// process layer). The thread's own code borrows it from the thread, so no
/// reference count to it sits on the thread's stack.
pub type Owner = Box<dyn Any + Send + Sync>;

/// A kernel thread.
pub struct Thread {
    /// Name, for reports.
    pub name: &'static str,
    pub(super) context: SavedContext,
    stack: Option<GuardedStack>,
    state: AtomicU8,
    scope: ScopeCell,
    /// The last refusal its allocations met (see `cpu::PerCpu::refusal`),
    /// kept here while it is off the CPU.
    refusal: AtomicU64,
    /// A wake-up came since it last got ready to wait: it must not block.
    wakeup: AtomicBool,
    /// Its guard page caught an overflow (see [`Thread::caught_overflow`]).
    overflow_caught: AtomicBool,
    entry: IrqMutex<Option<Entry>>,
    signals: AtomicU8,
    /// The account whose kill-pending flag stops this thread.
    account: AccountId,
    owner: Option<Owner>,
}

impl Thread {
    /// The thread already running at boot (it becomes the idle thread).
    pub(super) fn boot(name: &'static str) -> Self {
        let scope = crate::cpu::this().scope.get();
        Self {
            name,
            context: SavedContext::default(),
            stack: None,
            state: AtomicU8::new(ThreadState::Running as u8),
            scope: ScopeCell::new(scope),
            refusal: AtomicU64::new(0),
            wakeup: AtomicBool::new(false),
            overflow_caught: AtomicBool::new(false),
            entry: IrqMutex::new(None),
            signals: AtomicU8::new(0),
            account: scope.account,
            owner: None,
        }
    }

    pub(super) fn new(
        name: &'static str,
        stack: GuardedStack,
        scope: Scope,
        owner: Option<Owner>,
        entry: Entry,
    ) -> Self {
        Self {
            name,
            context: SavedContext::new_thread(stack.top()),
            stack: Some(stack),
            state: AtomicU8::new(ThreadState::Ready as u8),
            scope: ScopeCell::new(scope),
            refusal: AtomicU64::new(0),
            wakeup: AtomicBool::new(false),
            overflow_caught: AtomicBool::new(false),
            entry: IrqMutex::new(Some(entry)),
            signals: AtomicU8::new(0),
            account: scope.account,
            owner,
        }
    }

    /// Its state now.
    pub fn state(&self) -> ThreadState {
        match self.state.load(Relaxed) {
            0 => ThreadState::Ready,
            1 => ThreadState::Running,
            2 => ThreadState::Blocked,
            _ => ThreadState::Dead,
        }
    }

    pub(super) fn set_state(&self, state: ThreadState) {
        self.state.store(state as u8, Relaxed);
    }

    /// Moves `from` → `to` if the state is `from`.
    pub(super) fn compare_state(&self, from: ThreadState, to: ThreadState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Relaxed, Relaxed)
            .is_ok()
    }

    /// What it takes onto a CPU: its allocation scope and last refusal.
    pub(super) fn cpu_state(&self) -> (Scope, u64) {
        (self.scope.get(), self.refusal.load(Relaxed))
    }

    /// Keeps what it leaves a CPU with.
    pub(super) fn save_cpu_state(&self, scope: Scope, refusal: u64) {
        self.scope.replace(scope);
        self.refusal.store(refusal, Relaxed);
    }

    /// Records a wake-up. A waiter clears the flag ([`Thread::ready_to_wait`])
    /// before it enqueues itself and checks its condition, and blocks only
    /// if the flag is still clear then (under the scheduler's lock, which
    /// wakers hold too): a wake-up between the check and the block, from
    /// any CPU, is never lost.
    ///
    /// Release, paired with the acquire in [`Thread::ready_to_wait`]: a
    /// waker that takes no wait queue's lock (a signal) publishes its
    /// change with this store. If the waiter's clear comes after it, the
    /// waiter then sees the change when it checks; otherwise the flag is
    /// still set when it is about to block.
    pub(super) fn note_wakeup(&self) {
        self.wakeup.store(true, Release);
    }

    /// Clears the wake-up flag before checking a wait's condition: a
    /// read-modify-write with acquire, so that if it clears a wake-up, what
    /// that waker changed before (see [`Thread::note_wakeup`]) is visible
    /// to the check that follows. A plain store would let a signal's
    /// wake-up be wiped out while the waiter still reads the old signals.
    pub(super) fn ready_to_wait(&self) {
        self.wakeup.swap(false, Acquire);
    }

    /// Takes the wake-up flag.
    pub(super) fn take_wakeup(&self) -> bool {
        self.wakeup.swap(false, Relaxed)
    }

    /// Whether the lowest word of the stack still holds the canary: a
    /// stack without a guard page that grew past its end overwrote it.
    /// A stack whose guard page caught an overflow counts as intact: the
    /// overflow wrote nothing below the stack, and will usually have
    /// written over the canary on its way down to the guard page (or not,
    /// depending on where its frames fell), which must not fail the
    /// switch that ends the thread.
    pub(super) fn stack_intact(&self) -> bool {
        self.overflow_caught.load(Relaxed)
            || self.stack.as_ref().is_none_or(GuardedStack::canary_intact)
    }

    /// Notes that its guard page caught an overflow (it is being ended on
    /// the spot): see [`Thread::stack_intact`].
    pub fn caught_overflow(&self) {
        self.overflow_caught.store(true, Relaxed);
    }

    /// Whether `addr` is in this thread's stack guard page: a fault there
    /// is this thread overflowing its stack.
    pub fn guard_hit(&self, addr: usize) -> bool {
        self.stack.as_ref().is_some_and(|s| s.guard_contains(addr))
    }

    /// The top of its stack (where it starts), if it has its own.
    pub fn stack_top(&self) -> Option<usize> {
        self.stack.as_ref().map(GuardedStack::top)
    }

    /// Bytes its stack's heap block takes (before the allocator's header).
    pub fn stack_block_bytes(&self) -> usize {
        self.stack.as_ref().map_or(0, GuardedStack::block_bytes)
    }

    pub(super) fn take_entry(&self) -> Option<Entry> {
        self.entry.lock().take()
    }

    /// What it runs for, if it was created with an owner.
    pub fn owner(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.owner.as_deref()
    }

    /// `Ok` while the thread may go on; otherwise why it must stop: its
    /// account was flagged kill-pending by the allocator, or it was sent
    /// [`Signal::Kill`] or [`Signal::Interrupt`] (checked in that order).
    ///
    /// # Errors
    /// The [`Stop`].
    pub fn check_stop(&self) -> Result<(), Stop> {
        if ACCOUNTS.kill_pending(self.account) {
            return Err(Stop::OutOfMemory);
        }
        let signals = self.signals.load(Relaxed);
        if signals & Signal::Kill.bit() != 0 {
            Err(Stop::Killed)
        } else if signals & Signal::Interrupt.bit() != 0 {
            Err(Stop::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Sends `signal`: the thread stops at its next safe point, and is
    /// woken if it is blocked so that it gets there.
    pub fn signal(self: &Arc<Self>, signal: Signal) {
        self.signals.fetch_or(signal.bit(), Relaxed);
        super::wake(self);
    }
}
