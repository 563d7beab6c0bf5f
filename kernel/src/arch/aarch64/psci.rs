//! PSCI calls through the `hvc` conduit QEMU `virt` uses.

const SYSTEM_OFF: u64 = 0x8400_0008;

/// Powers the machine off; QEMU exits with status 0.
pub fn system_off() -> ! {
    // SAFETY: a PSCI call; SYSTEM_OFF does not return.
    unsafe {
        core::arch::asm!("hvc #0", in("x0") SYSTEM_OFF, options(nomem, nostack));
    }
    loop {
        aarch64_cpu::asm::wfe();
    }
}
