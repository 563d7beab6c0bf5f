//! The quota kernel for aarch64 QEMU `virt`.
//!
//! Empty until the kernel issue fills it (boot, processes, procfs, shell).
//! It is built only for `aarch64-unknown-none`.

#![no_std]
