//! Kernel time: the tick counter the timer interrupt advances.
//!
//! [`TICK_HZ`] ticks make a second. The interrupt path calls [`tick`];
//! the scheduler (sleeps, preemption) and the shell (`sleep`, `uptime`)
//! read [`ticks`].

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Timer interrupts per second.
pub const TICK_HZ: u64 = 100;

static TICKS: AtomicU64 = AtomicU64::new(0);

/// Timer ticks since boot.
pub fn ticks() -> u64 {
    TICKS.load(Relaxed)
}

/// Counts one tick (the timer interrupt).
pub fn tick() {
    TICKS.fetch_add(1, Relaxed);
}

/// Milliseconds since power-on, from the hardware counter.
pub fn millis_since_power_on() -> u64 {
    let frequency = crate::arch::timer::frequency().max(1);
    crate::arch::timer::now().saturating_mul(1000) / frequency
}
