//! Thread context switch.
//!
//! A switch is a function call, so only the callee-saved registers need
//! saving (x19–x30, sp, d8–d15); the compiler saves the rest around the
//! call. A switch from an interrupt has the full state in the trap frame on
//! the old thread's stack already.

/// Callee-saved registers of a switched-out thread. Layout shared with the
/// assembly below.
#[repr(C)]
#[derive(Default)]
pub struct Context {
    x19_x30: [u64; 12],
    sp: u64,
    d8_d15: [u64; 8],
}

impl Context {
    /// A context whose first switch-in calls `entry` on an empty stack
    /// ending at `stack_top` (16-byte aligned): the switch's `ret` jumps to
    /// `entry`, with a zero frame pointer so backtraces stop there.
    pub fn new(stack_top: usize, entry: extern "C" fn() -> !) -> Self {
        let mut c = Self::default();
        c.x19_x30[11] = entry as usize as u64;
        c.sp = stack_top as u64;
        c
    }
}

unsafe extern "C" {
    /// Saves the running thread's registers in `from` and loads `to`'s.
    ///
    /// # Safety
    /// `to` must hold a context saved by this function or built by
    /// [`Context::new`] over a live stack; IRQs must be masked.
    pub fn switch_context(from: *mut Context, to: *const Context);
}

core::arch::global_asm!(
    r#"
    .section .text
    .global switch_context
switch_context:
    mov     x9, sp
    stp     x19, x20, [x0, #0]
    stp     x21, x22, [x0, #16]
    stp     x23, x24, [x0, #32]
    stp     x25, x26, [x0, #48]
    stp     x27, x28, [x0, #64]
    stp     x29, x30, [x0, #80]
    str     x9, [x0, #96]
    stp     d8, d9, [x0, #104]
    stp     d10, d11, [x0, #120]
    stp     d12, d13, [x0, #136]
    stp     d14, d15, [x0, #152]
    ldp     x19, x20, [x1, #0]
    ldp     x21, x22, [x1, #16]
    ldp     x23, x24, [x1, #32]
    ldp     x25, x26, [x1, #48]
    ldp     x27, x28, [x1, #64]
    ldp     x29, x30, [x1, #80]
    ldr     x9, [x1, #96]
    ldp     d8, d9, [x1, #104]
    ldp     d10, d11, [x1, #120]
    ldp     d12, d13, [x1, #136]
    ldp     d14, d15, [x1, #152]
    mov     sp, x9
    ret
"#
);
