//! Per-CPU state.
//!
//! A thread can move to another CPU whenever it can be preempted, so code
//! that reads this CPU's state and relies on the answer must run with IRQs
//! masked (a kernel lock held, in an interrupt handler, or explicitly);
//! what a thread carries across CPUs (its allocation scope and last
//! refusal) is saved to it and loaded from it at every switch.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

use quota::{Scope, ScopeCell};

/// Most CPUs the kernel can run on.
pub const MAX_CPUS: usize = crate::arch::smp::MAX_CPUS;

/// State owned by one CPU.
pub struct PerCpu {
    /// The allocation context of the thread running here; saved to and
    /// loaded from the thread on every context switch.
    pub scope: ScopeCell,
    /// Kernel locks held by the running code (locks mask IRQs, so the
    /// holder stays on this CPU and this is also its thread's count). Must be 0 at a context switch and
    /// when a process is unwound or terminated on the spot.
    lock_depth: AtomicU32,
    /// The timer asked for a reschedule at the next safe point.
    pub need_resched: AtomicBool,
    /// An interrupt handler is running.
    pub in_interrupt: AtomicBool,
    /// The panic being raised is an allocation failure (set by the
    /// allocation error handler, taken by the panic handler).
    pub alloc_failed: AtomicBool,
    /// Whether IRQs were masked where that allocation failed (the error
    /// handler masks them, so that the panic stays on this CPU).
    pub alloc_failed_irqs_masked: AtomicBool,
    /// The last charge refused here, packed by `heap` (0: none since it
    /// was cleared); saved to the running thread and loaded from the next
    /// at every switch, so the code that sees an allocation fail reads its
    /// own thread's refusal.
    pub refusal: AtomicU64,
    /// The thread running here (the address `sched` keeps of it, 0 before
    /// the scheduler starts here); set by `sched` at every switch.
    pub running: AtomicUsize,
}

impl PerCpu {
    const fn new() -> Self {
        Self {
            scope: ScopeCell::new(Scope::ROOT),
            lock_depth: AtomicU32::new(0),
            need_resched: AtomicBool::new(false),
            in_interrupt: AtomicBool::new(false),
            alloc_failed: AtomicBool::new(false),
            alloc_failed_irqs_masked: AtomicBool::new(false),
            refusal: AtomicU64::new(0),
            running: AtomicUsize::new(0),
        }
    }

    /// Kernel locks held now.
    pub fn lock_depth(&self) -> u32 {
        self.lock_depth.load(Relaxed)
    }

    pub(crate) fn lock_acquired(&self) {
        self.lock_depth.fetch_add(1, Relaxed);
    }

    pub(crate) fn lock_released(&self) {
        self.lock_depth.fetch_sub(1, Relaxed);
    }
}

static CPUS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];

/// This CPU's index, below [`MAX_CPUS`] (stable only while IRQs are
/// masked; see the module doc).
pub fn index() -> usize {
    crate::arch::cpu::index() % MAX_CPUS
}

/// This CPU's state (see the module doc on moving between CPUs).
pub fn this() -> &'static PerCpu {
    &CPUS[index()]
}

static ONLINE: AtomicUsize = AtomicUsize::new(1);

/// CPUs running the scheduler now (the boot CPU and every secondary that
/// came up).
pub fn online() -> usize {
    ONLINE.load(Relaxed)
}

/// A secondary CPU joined the scheduler.
pub fn came_online() {
    ONLINE.fetch_add(1, Relaxed);
}
