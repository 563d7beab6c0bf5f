//! A kernel thread: its saved registers, stack, state and allocation scope.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

use quota::{Scope, ScopeCell};

use crate::arch::context::Context;
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

/// Written at the bottom of every stack; checked at each switch.
const CANARY: u128 = 0x5354_4143_4b5f_4341_4e41_5259_2121_2121;

/// A kernel thread.
pub struct Thread {
    /// Name, for reports.
    pub name: &'static str,
    context: UnsafeCell<Context>,
    stack: Option<Box<[u128]>>,
    state: AtomicU8,
    scope: ScopeCell,
    entry: IrqMutex<Option<Entry>>,
    /// The process this thread runs, if any.
    pub process: Option<Arc<crate::proc::Process>>,
}

// SAFETY: `context` is read and written only by `sched::switch`, with IRQs
// masked on the one CPU that runs the thread; every other field is atomic or
// behind a lock.
unsafe impl Sync for Thread {}
// SAFETY: as above; nothing in a thread is tied to the CPU that created it.
unsafe impl Send for Thread {}

impl Thread {
    /// The thread already running at boot (it becomes the idle thread).
    pub(super) fn boot(name: &'static str) -> Self {
        Self {
            name,
            context: UnsafeCell::new(Context::default()),
            stack: None,
            state: AtomicU8::new(ThreadState::Running as u8),
            scope: ScopeCell::new(crate::cpu::this().scope.get()),
            entry: IrqMutex::new(None),
            process: None,
        }
    }

    pub(super) fn new(
        name: &'static str,
        stack: Box<[u128]>,
        scope: Scope,
        process: Option<Arc<crate::proc::Process>>,
        entry: Entry,
    ) -> Self {
        let mut stack = stack;
        stack[0] = CANARY;
        let top = stack.as_ptr_range().end as usize;
        Self {
            name,
            context: UnsafeCell::new(Context::new(top)),
            stack: Some(stack),
            state: AtomicU8::new(ThreadState::Ready as u8),
            scope: ScopeCell::new(scope),
            entry: IrqMutex::new(Some(entry)),
            process,
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

    pub(super) fn context_ptr(&self) -> *mut Context {
        self.context.get()
    }

    pub(super) fn scope(&self) -> Scope {
        self.scope.get()
    }

    pub(super) fn save_scope(&self, scope: Scope) {
        self.scope.replace(scope);
    }

    /// Whether the lowest word of the stack still holds the canary: a
    /// stack that grew past its end overwrote it.
    pub(super) fn stack_intact(&self) -> bool {
        self.stack.as_ref().is_none_or(|s| {
            // SAFETY: `s` is this thread's live stack; its first word is
            // written only by `Thread::new` (and by an overflow).
            unsafe { core::ptr::read_volatile(s.as_ptr()) == CANARY }
        })
    }

    pub(super) fn take_entry(&self) -> Option<Entry> {
        self.entry.lock().take()
    }
}
