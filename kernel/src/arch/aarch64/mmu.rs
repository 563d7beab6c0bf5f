//! The MMU, on with a static identity map.
//!
//! A single level-1 table (4 KiB granule, 39-bit addresses) maps the first
//! 4 GiB with 1 GiB blocks: the first gigabyte, where QEMU `virt` puts its
//! devices, as `Device-nGnRE` and never executable; the next three, where
//! RAM starts (`0x4000_0000`), as normal write-back cacheable memory. The
//! table is computed at compile time and never changes.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    ID_AA64MMFR0_EL1, MAIR_EL1, ReadWriteable, Readable, SCTLR_EL1, TCR_EL1, TTBR0_EL1, Writeable,
};

const ENTRIES: usize = 512;
const GIB: u64 = 1 << 30;

const VALID_BLOCK: u64 = 0b01;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const INNER_SHAREABLE: u64 = 0b11 << 8;
const ACCESS_FLAG: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

const fn identity_map() -> Table {
    let mut table = [0u64; ENTRIES];
    table[0] = VALID_BLOCK | ATTR_DEVICE | ACCESS_FLAG | PXN | UXN;
    let mut gib = 1;
    while gib < 4 {
        table[gib] = (gib as u64 * GIB) | VALID_BLOCK | ATTR_NORMAL | INNER_SHAREABLE | ACCESS_FLAG;
        gib += 1;
    }
    Table(table)
}

static L1: Table = identity_map();

/// Highest RAM address the map covers (exclusive).
pub const MAPPED_END: usize = 4 << 30;

/// Turns the MMU and caches on.
pub fn enable() {
    MAIR_EL1.write(
        MAIR_EL1::Attr0_Device::nonGathering_nonReordering_EarlyWriteAck
            + MAIR_EL1::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc,
    );
    let pa_range = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange).min(0b101);
    TCR_EL1.write(
        TCR_EL1::T0SZ.val(25)
            + TCR_EL1::TG0::KiB_4
            + TCR_EL1::SH0::Inner
            + TCR_EL1::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::EPD1::DisableTTBR1Walks
            + TCR_EL1::IPS.val(pa_range),
    );
    TTBR0_EL1.set(core::ptr::addr_of!(L1) as u64);
    barrier::dsb(barrier::ISHST);
    // SAFETY: invalidating all EL1 TLB entries has no memory-safety effect;
    // the identity map makes every address translate to itself.
    unsafe { core::arch::asm!("tlbi vmalle1", options(nostack, preserves_flags)) };
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    SCTLR_EL1.modify(SCTLR_EL1::M::Enable + SCTLR_EL1::C::Cacheable + SCTLR_EL1::I::Cacheable);
    barrier::isb(barrier::SY);
}

/// Whether `addr` lies in the device-memory part of the map (the first
/// gigabyte, where QEMU `virt` puts its devices).
pub fn is_device(addr: usize) -> bool {
    (addr as u64) < GIB
}
