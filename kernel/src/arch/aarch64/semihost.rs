//! Arm semihosting, used only to exit QEMU with a status (tests).
//! QEMU must run with `-semihosting`.

const SYS_EXIT: u32 = 0x18;
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

/// Exits QEMU with `code` as its exit status.
pub fn exit(code: u32) -> ! {
    let block: [u64; 2] = [ADP_STOPPED_APPLICATION_EXIT, u64::from(code)];
    // SAFETY: a semihosting SYS_EXIT call reading the two-word parameter
    // block, which lives on this stack for the call.
    unsafe {
        core::arch::asm!("hlt #0xf000", in("w0") SYS_EXIT, in("x1") block.as_ptr(), options(nostack));
    }
    super::psci::system_off()
}
