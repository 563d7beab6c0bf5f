//! The atomics this crate uses, swapped for `loom`'s under `--cfg loom` so
//! the charge protocol in [`crate::counter`] and the account lifecycle in
//! [`crate::table`] can be model-checked.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

/// A busy-wait hint; under `loom` it yields to the model scheduler, so a
/// waiting thread lets the one it waits for run.
pub(crate) fn spin_loop() {
    #[cfg(loom)]
    loom::hint::spin_loop();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}
