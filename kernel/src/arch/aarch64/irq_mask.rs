//! Masking and unmasking IRQs on this CPU (the `DAIF.I` bit), and waiting
//! for an interrupt.

use aarch64_cpu::registers::{DAIF, ReadWriteable, Readable, Writeable};

/// Masks IRQs (only: the other DAIF bits are kept), returning the previous
/// DAIF value to restore.
pub fn save_and_mask() -> u64 {
    let saved = DAIF.get();
    DAIF.modify(DAIF::I::Masked);
    saved
}

/// Restores a DAIF value from [`save_and_mask`].
pub fn restore(saved: u64) {
    DAIF.set(saved);
}

/// Whether IRQs were masked in a DAIF value from [`save_and_mask`].
pub fn was_masked(saved: u64) -> bool {
    DAIF::I.is_set(saved)
}

/// Unmasks IRQs (only).
pub fn enable() {
    DAIF.modify(DAIF::I::Unmasked);
}

/// Whether IRQs are masked now.
pub fn masked() -> bool {
    DAIF.is_set(DAIF::I)
}

/// Waits for an interrupt.
pub fn wait() {
    aarch64_cpu::asm::wfi();
}
