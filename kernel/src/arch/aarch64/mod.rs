//! Everything specific to aarch64 and QEMU `virt`: the only place with
//! `asm!` and MMIO. The rest of the kernel reads like ordinary Rust.

pub mod boot;
pub mod context;
pub mod exceptions;
pub mod irq;
pub mod mmu;
pub mod psci;
pub mod semihost;
pub mod timer;
pub mod uart;
