//! The MMU: an identity map, with the start of RAM in 4 KiB pages so that
//! single pages can be unmapped (the guard page under every thread stack).
//!
//! ```text
//! L1 (1 GiB entries)   0: device memory (QEMU virt's devices), never executable
//!                      1: RAM 0x4000_0000.. → L2
//!                      2, 3: RAM, 1 GiB blocks
//! L2 (2 MiB entries)   the first PAGED_BYTES of RAM → L3 tables, the rest blocks
//! L3 (4 KiB entries)   one table per 2 MiB
//! ```
//!
//! The tables are built with the MMU off, before anything runs from them, so
//! no live block is ever split (no break-before-make is needed). After that
//! only single L3 entries change, valid ↔ invalid, each followed by a TLB
//! invalidation of that page.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    ID_AA64MMFR0_EL1, MAIR_EL1, ReadWriteable, Readable, SCTLR_EL1, TCR_EL1, TTBR0_EL1, Writeable,
};

const ENTRIES: usize = 512;
const GIB: u64 = 1 << 30;
const MIB2: u64 = 2 << 20;
/// Bytes in a page.
pub const PAGE: usize = 4096;

/// Where RAM starts on QEMU `virt`.
const RAM_START: u64 = GIB;
/// How much of RAM, from its start, is mapped with 4 KiB pages.
pub const PAGED_BYTES: usize = 256 << 20;
const L3_TABLES: usize = PAGED_BYTES / (2 << 20);

const VALID_BLOCK: u64 = 0b01;
const VALID_TABLE: u64 = 0b11;
const VALID_PAGE: u64 = 0b11;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const INNER_SHAREABLE: u64 = 0b11 << 8;
const ACCESS_FLAG: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const NORMAL: u64 = ATTR_NORMAL | INNER_SHAREABLE | ACCESS_FLAG;

/// A translation table. Entries are atomics so that a page can be mapped
/// and unmapped through a shared reference while the walker reads them.
#[repr(C, align(4096))]
struct Table([AtomicU64; ENTRIES]);

impl Table {
    const fn new() -> Self {
        Table([const { AtomicU64::new(0) }; ENTRIES])
    }
}

static L1: Table = Table::new();
static L2: Table = Table::new();
static L3: [Table; L3_TABLES] = [const { Table::new() }; L3_TABLES];

/// Highest RAM address the map covers (exclusive).
pub const MAPPED_END: usize = 4 << 30;

/// Fills the tables; runs once, with the MMU off.
fn build() {
    let set = |t: &Table, i: usize, v: u64| t.0[i].store(v, Ordering::Relaxed);
    set(&L1, 0, VALID_BLOCK | ATTR_DEVICE | ACCESS_FLAG | PXN | UXN);
    set(&L1, 1, core::ptr::addr_of!(L2) as u64 | VALID_TABLE);
    for (index, gib) in [(2, 2 * GIB), (3, 3 * GIB)] {
        set(&L1, index, gib | VALID_BLOCK | NORMAL);
    }
    for (i, entry) in L2.0.iter().enumerate() {
        let base = RAM_START + i as u64 * MIB2;
        if let Some(l3) = L3.get(i) {
            for (j, page) in l3.0.iter().enumerate() {
                let addr = base + (j * PAGE) as u64;
                page.store(addr | VALID_PAGE | NORMAL, Ordering::Relaxed);
            }
            entry.store(
                core::ptr::addr_of!(*l3) as u64 | VALID_TABLE,
                Ordering::Relaxed,
            );
        } else {
            entry.store(base | VALID_BLOCK | NORMAL, Ordering::Relaxed);
        }
    }
}

/// Turns the MMU and caches on.
pub fn enable() {
    build();
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
    invalidate_all();
    SCTLR_EL1.modify(SCTLR_EL1::M::Enable + SCTLR_EL1::C::Cacheable + SCTLR_EL1::I::Cacheable);
    barrier::isb(barrier::SY);
}

fn invalidate_all() {
    // SAFETY: invalidating all EL1 TLB entries has no memory-safety effect:
    // the next walk reads the tables.
    unsafe { core::arch::asm!("tlbi vmalle1", options(nostack, preserves_flags)) };
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
}

/// The L3 entry for `addr`, if `addr` is in the paged part of RAM.
fn page_entry(addr: usize) -> Option<&'static AtomicU64> {
    let offset = (addr as u64).checked_sub(RAM_START)?;
    let table = L3.get(usize::try_from(offset / MIB2).ok()?)?;
    Some(&table.0[usize::try_from((offset % MIB2) / PAGE as u64).ok()?])
}

fn set_page(addr: usize, valid: bool) -> bool {
    let Some(entry) = page_entry(addr) else {
        return false;
    };
    let base = addr as u64 & !(PAGE as u64 - 1);
    let value = if valid { base | VALID_PAGE | NORMAL } else { 0 };
    entry.store(value, Ordering::Release);
    barrier::dsb(barrier::ISHST);
    // SAFETY: invalidating one page's TLB entries has no memory-safety
    // effect; the next access walks the (already updated) tables.
    unsafe {
        core::arch::asm!("tlbi vaae1is, {}", in(reg) base >> 12, options(nostack, preserves_flags));
    }
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    true
}

/// Unmaps the page at `addr` (page aligned): any access to it faults.
/// False if the page is not in the paged part of RAM (nothing changed).
///
/// Only [`super::stack`] calls this, on a page inside a heap block it owns.
pub(super) fn unmap_page(addr: usize) -> bool {
    set_page(addr, false)
}

/// Maps the page at `addr` back (identity, normal memory).
pub(super) fn map_page(addr: usize) -> bool {
    set_page(addr, true)
}

/// Whether `addr` lies in the device-memory part of the map (the first
/// gigabyte, where QEMU `virt` puts its devices).
pub fn is_device(addr: usize) -> bool {
    (addr as u64) < GIB
}
