//! The atomics this crate uses, swapped for `loom`'s under `--cfg loom` so
//! the charge protocol in [`crate::counter`] can be model-checked.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
