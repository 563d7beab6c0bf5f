//! Architecture support. Only aarch64 (QEMU `virt`) exists.

pub mod aarch64;

pub use aarch64::*;
