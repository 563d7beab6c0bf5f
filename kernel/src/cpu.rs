//! Per-CPU state. One CPU runs today; the state is still kept per CPU so
//! that SMP does not have to untangle globals later.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

use quota::{Scope, ScopeCell};

/// Most CPUs the kernel can run on.
pub const MAX_CPUS: usize = 4;

/// State owned by one CPU.
pub struct PerCpu {
    /// The allocation context of the thread running here; saved to and
    /// loaded from the thread on every context switch.
    pub scope: ScopeCell,
    /// Kernel locks held by the running code (locks mask IRQs, so this is
    /// also the running thread's count). Must be 0 at a context switch and
    /// when a process is unwound or terminated on the spot.
    lock_depth: AtomicU32,
    /// The timer asked for a reschedule at the next safe point.
    pub need_resched: AtomicBool,
    /// An interrupt handler is running.
    pub in_interrupt: AtomicBool,
    /// The panic being raised is an allocation failure (set by the
    /// allocation error handler, taken by the panic handler).
    pub alloc_failed: AtomicBool,
    /// The last charge refused here, packed by `heap` (0: none since it
    /// was cleared). A thread moves only at a context switch, which happens
    /// at safe points, so the code that sees an allocation fail reads its
    /// own refusal.
    pub refusal: AtomicU64,
}

impl PerCpu {
    const fn new() -> Self {
        Self {
            scope: ScopeCell::new(Scope::ROOT),
            lock_depth: AtomicU32::new(0),
            need_resched: AtomicBool::new(false),
            in_interrupt: AtomicBool::new(false),
            alloc_failed: AtomicBool::new(false),
            refusal: AtomicU64::new(0),
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

/// This CPU's state.
pub fn this() -> &'static PerCpu {
    &CPUS[crate::arch::cpu::index() % MAX_CPUS]
}

static ONLINE: AtomicUsize = AtomicUsize::new(1);

/// CPUs running the scheduler now (the boot CPU and every secondary that
/// came up).
pub fn online() -> usize {
    ONLINE.load(Relaxed)
}
