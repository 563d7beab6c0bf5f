//! Exception vectors and the trap frame.
//!
//! Threads run on `SP_EL0`; taking an exception switches the CPU to
//! `SP_EL1`, a small per-CPU exception stack. Every exception saves the full
//! register state, FP/SIMD included, in a [`TrapFrame`], then calls
//! [`exception_entry`]:
//! - an IRQ switches back to `SP_EL0` first and saves its frame on the
//!   interrupted thread's stack, so the kernel's interrupt handler may
//!   switch threads before the frame is restored;
//! - anything else is a fault, handled on the exception stack, so that a
//!   thread that overflowed onto its guard page can still be dealt with.
//!   The kernel's fault handler either halts, or asks for the faulting
//!   thread to be *restarted* at a given function on a fresh stack pointer
//!   ([`Restart`]): that is how a stack overflow ends just its thread.
//!
//! The kernel installs both handlers with [`set_handlers`]: `arch` calls up
//! only through them.

use core::fmt;

use spin::Once;

use aarch64_cpu::registers::{ESR_EL1, FAR_EL1, Readable, SP_EL0, VBAR_EL1, Writeable};

/// Registers saved on exception entry. Layout shared with the assembly below.
#[repr(C)]
pub struct TrapFrame {
    /// x0 – x30.
    pub x: [u64; 31],
    /// Where the exception was taken.
    pub elr: u64,
    /// Saved PSTATE.
    pub spsr: u64,
    pad: u64,
    /// q0 – q31.
    pub q: [u128; 32],
    /// FP control and status.
    pub fpcr: u64,
    /// FP status.
    pub fpsr: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 800);

macro_rules! vector_table {
    () => {
        r#"
.macro SAVE_FRAME
    sub     sp, sp, #800
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x9, elr_el1
    stp     x30, x9, [sp, #240]
    mrs     x10, spsr_el1
    str     x10, [sp, #256]
    add     x9, sp, #272
    stp     q0, q1, [x9, #0]
    stp     q2, q3, [x9, #32]
    stp     q4, q5, [x9, #64]
    stp     q6, q7, [x9, #96]
    stp     q8, q9, [x9, #128]
    stp     q10, q11, [x9, #160]
    stp     q12, q13, [x9, #192]
    stp     q14, q15, [x9, #224]
    stp     q16, q17, [x9, #256]
    stp     q18, q19, [x9, #288]
    stp     q20, q21, [x9, #320]
    stp     q22, q23, [x9, #352]
    stp     q24, q25, [x9, #384]
    stp     q26, q27, [x9, #416]
    stp     q28, q29, [x9, #448]
    stp     q30, q31, [x9, #480]
    mrs     x10, fpcr
    mrs     x11, fpsr
    add     x12, sp, #784
    stp     x10, x11, [x12]
.endm

.macro RESTORE_FRAME
    add     x12, sp, #784
    ldp     x10, x11, [x12]
    msr     fpcr, x10
    msr     fpsr, x11
    add     x9, sp, #272
    ldp     q0, q1, [x9, #0]
    ldp     q2, q3, [x9, #32]
    ldp     q4, q5, [x9, #64]
    ldp     q6, q7, [x9, #96]
    ldp     q8, q9, [x9, #128]
    ldp     q10, q11, [x9, #160]
    ldp     q12, q13, [x9, #192]
    ldp     q14, q15, [x9, #224]
    ldp     q16, q17, [x9, #256]
    ldp     q18, q19, [x9, #288]
    ldp     q20, q21, [x9, #320]
    ldp     q22, q23, [x9, #352]
    ldp     q24, q25, [x9, #384]
    ldp     q26, q27, [x9, #416]
    ldp     q28, q29, [x9, #448]
    ldp     q30, q31, [x9, #480]
    ldp     x30, x9, [sp, #240]
    msr     elr_el1, x9
    ldr     x10, [sp, #256]
    msr     spsr_el1, x10
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #800
    eret
.endm

.macro VECTOR kind
    .balign 0x80
    b       vector_\kind
.endm

.macro HANDLER kind
vector_\kind:
    .if \kind == 1
    msr     spsel, #0
    .endif
    SAVE_FRAME
    mov     x0, sp
    mov     x1, #\kind
    bl      exception_entry
    RESTORE_FRAME
.endm

    .section .text
    .balign 0x800
    .global exception_vectors
exception_vectors:
    VECTOR 0
    VECTOR 1
    VECTOR 2
    VECTOR 3
    VECTOR 4
    VECTOR 5
    VECTOR 6
    VECTOR 7
    VECTOR 8
    VECTOR 9
    VECTOR 10
    VECTOR 11
    VECTOR 12
    VECTOR 13
    VECTOR 14
    VECTOR 15

    HANDLER 0
    HANDLER 1
    HANDLER 2
    HANDLER 3
    HANDLER 4
    HANDLER 5
    HANDLER 6
    HANDLER 7
    HANDLER 8
    HANDLER 9
    HANDLER 10
    HANDLER 11
    HANDLER 12
    HANDLER 13
    HANDLER 14
    HANDLER 15
"#
    };
}

core::arch::global_asm!(vector_table!());

/// Which vector was taken (offset in the table / 0x80): an IRQ while a
/// thread ran (on `SP_EL0`).
const IRQ_CURRENT_EL_SP0: u64 = 1;

/// `SPSR_EL1` for a restart: EL1 with `SP_EL0` (`EL1t`), IRQs and FIQs masked.
const SPSR_EL1T_MASKED: u64 = 0b0100 | (1 << 7) | (1 << 6);

const KINDS: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];
const ORIGINS: [&str; 4] = [
    "EL1 on a thread stack (SP_EL0)",
    "EL1 on the exception stack (SP_EL1)",
    "EL0 (AArch64)",
    "EL0 (AArch32)",
];

/// What the kernel does with exceptions.
#[derive(Clone, Copy)]
pub struct Handlers {
    /// An IRQ was taken (IRQs are masked while it runs).
    pub irq: fn(),
    /// Any other exception: a kernel fault. The handler halts, or returns
    /// how to restart the faulting thread.
    pub fault: fn(&Fault) -> Restart,
}

/// Where a faulting thread goes on: `entry` runs on the thread's own stack
/// reset to `stack_top`, with IRQs masked. Whatever the stack held is
/// abandoned: `entry` must end the thread.
#[derive(Clone, Copy)]
pub struct Restart {
    /// What the thread runs next.
    pub entry: extern "C" fn() -> !,
    /// Its stack pointer (16-byte aligned).
    pub stack_top: usize,
}

static HANDLERS: Once<Handlers> = Once::new();

/// Installs the kernel's handlers (once; later calls are ignored).
pub fn set_handlers(handlers: Handlers) {
    HANDLERS.call_once(|| handlers);
}

/// Installs the vector table. Until [`set_handlers`] runs, an exception
/// parks the CPU.
pub(super) fn init() {
    unsafe extern "C" {
        static exception_vectors: u8;
    }
    let base = (&raw const exception_vectors) as u64;
    VBAR_EL1.set(base);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// A kernel fault, for the report and for the handler's decision.
pub struct Fault {
    kind: u64,
    esr: u64,
    far: u64,
    elr: u64,
    spsr: u64,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let index = usize::try_from(self.kind).unwrap_or(0);
        let class = (self.esr >> 26) & 0x3f;
        write!(
            f,
            "{} exception from {}: ESR={:#010x} (class {:#04x}: {}) FAR={:#018x} ELR={:#018x} SPSR={:#010x}",
            KINDS[index % 4],
            ORIGINS[(index / 4) % 4],
            self.esr,
            class,
            exception_class(class),
            self.far,
            self.elr,
            self.spsr,
        )
    }
}

impl Fault {
    /// The faulting address.
    pub fn address(&self) -> usize {
        usize::try_from(self.far).unwrap_or(usize::MAX)
    }

    /// A data abort from EL1, taken while a thread ran on its own stack
    /// (`SP_EL0`), with a translation fault: an access to an unmapped
    /// page, such as a guard page.
    pub fn is_thread_translation_fault(&self) -> bool {
        let class = (self.esr >> 26) & 0x3f;
        let status = self.esr & 0x3f;
        self.kind == 0 && class == 0x25 && (0b00_0100..=0b00_0111).contains(&status)
    }
}

fn exception_class(class: u64) -> &'static str {
    match class {
        0x00 => "unknown reason",
        0x07 => "FP/SIMD access trapped",
        0x15 => "SVC",
        0x20 | 0x21 => "instruction abort",
        0x22 => "PC alignment fault",
        0x24 | 0x25 => "data abort",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x3c => "BRK instruction",
        _ => "other",
    }
}

/// Called by the vector stubs with the saved frame.
#[unsafe(no_mangle)]
extern "C" fn exception_entry(frame: &mut TrapFrame, kind: u64) {
    let Some(handlers) = HANDLERS.get() else {
        loop {
            aarch64_cpu::asm::wfe();
        }
    };
    if kind == IRQ_CURRENT_EL_SP0 {
        (handlers.irq)();
        return;
    }
    let fault = Fault {
        kind,
        esr: ESR_EL1.get(),
        far: FAR_EL1.get(),
        elr: frame.elr,
        spsr: frame.spsr,
    };
    let restart = (handlers.fault)(&fault);
    // Only a fault taken from a thread (on SP_EL0, so this frame is on the
    // exception stack) can be restarted; anything else halts.
    if kind != 0 {
        loop {
            aarch64_cpu::asm::wfe();
        }
    }
    frame.elr = restart.entry as usize as u64;
    frame.spsr = SPSR_EL1T_MASKED;
    SP_EL0.set(restart.stack_top as u64);
}
