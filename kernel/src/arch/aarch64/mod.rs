//! Everything specific to aarch64 and QEMU `virt`: the only place with
//! `asm!` and MMIO, and, with `sync.rs` and `sched/switch.rs`, the only
//! place allowed `unsafe`. Hardware is handed up as safe values: drivers
//! claimed once ([`gic::Gic`], [`uart::Pl011`], [`virtio::claim`]), the
//! device tree as a `'static` slice, the heap region already given to the
//! allocator, `RNDR` as an `Option<u64>`.

#![allow(unsafe_code)]

pub mod boot;
pub mod context;
pub mod cpu;
pub mod exceptions;
pub mod fwcfg;
pub mod getrandom_backend;
pub mod gic;
pub mod irq_mask;
pub mod memory;
pub mod mmu;
pub mod psci;
pub mod rndr;
pub mod semihost;
pub mod smp;
pub mod stack;
pub mod timer;
pub mod uart;
pub mod unwind;
pub mod virtio;
