//! Kernel locks: spin locks that mask IRQs while held.
//!
//! Masking IRQs means a lock holder is never preempted, so a thread on
//! another CPU never spins on a lock whose holder cannot run, and an
//! interrupt handler never finds a lock taken by the code it interrupted
//! on its CPU. Masking excludes nothing on other CPUs: the lock does. Each acquisition bumps the
//! CPU's lock depth, which the scheduler and the OOM path check: a thread
//! must hold no lock when it switches away or is terminated.
//!
//! Locks must be released in the reverse order they were taken, so that
//! the IRQ state each one restores is the one it saw.
//!
//! One of the few modules allowed `unsafe`: `lock_api::RawMutex` is an
//! unsafe trait.

#![allow(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::irq_mask as irq;
use crate::cpu;

/// The raw lock under [`IrqMutex`] (and under the heap's `talc`).
pub struct IrqRawMutex {
    locked: AtomicBool,
    saved_daif: AtomicU64,
}

// SAFETY: `lock` returns only after winning the `locked` flag with an
// acquire CAS and `unlock` clears it with a release store, so at most one
// holder exists and its writes are visible to the next.
unsafe impl lock_api::RawMutex for IrqRawMutex {
    #[allow(
        clippy::declare_interior_mutable_const,
        reason = "lock_api's required initialiser"
    )]
    const INIT: Self = Self {
        locked: AtomicBool::new(false),
        saved_daif: AtomicU64::new(0),
    };

    type GuardMarker = lock_api::GuardNoSend;

    fn lock(&self) {
        let saved = irq::save_and_mask();
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        self.saved_daif.store(saved, Ordering::Relaxed);
        cpu::this().lock_acquired();
    }

    fn try_lock(&self) -> bool {
        let saved = irq::save_and_mask();
        if self
            .locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            self.saved_daif.store(saved, Ordering::Relaxed);
            cpu::this().lock_acquired();
            true
        } else {
            irq::restore(saved);
            false
        }
    }

    unsafe fn unlock(&self) {
        let saved = self.saved_daif.load(Ordering::Relaxed);
        cpu::this().lock_released();
        self.locked.store(false, Ordering::Release);
        irq::restore(saved);
    }
}

/// A mutex that masks IRQs while held.
pub type IrqMutex<T> = lock_api::Mutex<IrqRawMutex, T>;
