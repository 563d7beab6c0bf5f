//! Which CPU is running.

use aarch64_cpu::registers::{MPIDR_EL1, Readable};

/// This CPU's number (affinity level 0 of `MPIDR_EL1`).
pub fn index() -> usize {
    usize::try_from(MPIDR_EL1.get() & 0xff).unwrap_or(0)
}
