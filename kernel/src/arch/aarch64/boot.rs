//! Entry point: the first instructions QEMU runs.
//!
//! QEMU's `virt` machine loads the ELF at its link address and starts the
//! boot CPU at `_start` in EL1 with the device tree's address in `x0`. Before
//! any Rust runs we must: park secondary CPUs, enable FP/SIMD (Rust emits
//! NEON for formatting and `memcpy`, and it traps until `CPACR_EL1.FPEN` is
//! set), give exceptions their own stack (`SP_EL1`) and run on the boot stack
//! with `SP_EL0`, as every thread does, and zero `.bss`.

core::arch::global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    mrs     x1, mpidr_el1
    and     x1, x1, #0xff
    cbz     x1, 1f
0:  wfe
    b       0b
1:  mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb
    ldr     x1, =__exception_stack_top
    mov     sp, x1
    msr     spsel, #0
    ldr     x1, =__boot_stack_top
    mov     sp, x1
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
2:  cmp     x1, x2
    b.hs    3f
    str     xzr, [x1], #8
    b       2b
3:  bl      arch_entry
4:  wfe
    b       4b
    "#
);

/// First Rust code, on the boot stack with `.bss` zeroed; `x0` is what QEMU
/// passed (the device tree's address, or 0).
#[unsafe(no_mangle)]
extern "C" fn arch_entry(x0: usize) -> ! {
    super::exceptions::init();
    super::mmu::enable();
    crate::kernel_main(super::memory::device_tree(x0))
}
