//! The CPU's random number generator (`FEAT_RNG`): the `RNDR` register.
//!
//! `RNDR` returns 64 bits from a hardware DRBG reseeded from a true
//! entropy source; a read can fail (the flags say so) when it has none to
//! give. `crate::rng` seeds its CSPRNG from here and never falls back to
//! anything weaker.

use aarch64_cpu::registers::{ID_AA64ISAR0_EL1, Readable};

/// Whether this CPU implements `RNDR` (`ID_AA64ISAR0_EL1.RNDR` ≠ 0).
pub fn available() -> bool {
    ID_AA64ISAR0_EL1.read(ID_AA64ISAR0_EL1::RNDR) != 0
}

/// 64 random bits from `RNDR`: `None` if the CPU lacks `FEAT_RNG` or the
/// read reported failure.
pub fn read() -> Option<u64> {
    if !available() {
        return None;
    }
    let value: u64;
    let ok: u64;
    // SAFETY: `RNDR` (s3_3_c2_c4_0) exists, checked above; reading it has
    // no side effect but setting NZCV (Z on failure), which `cset` reads
    // before anything else can change the flags.
    unsafe {
        core::arch::asm!(
            "mrs {value}, s3_3_c2_c4_0",
            "cset {ok}, ne",
            value = out(reg) value,
            ok = out(reg) ok,
            options(nomem, nostack),
        );
    }
    (ok != 0).then_some(value)
}
