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

const CPU_ON: u64 = 0xc400_0003;

/// Starts the CPU whose `MPIDR` affinity is `mpidr` at `entry` (a physical
/// address) with `context` in its `x0`; the PSCI status (0 is success).
pub(super) fn cpu_on(mpidr: u64, entry: u64, context: u64) -> i64 {
    let status: u64;
    // SAFETY: a PSCI call; CPU_ON starts another CPU at `entry` and
    // returns here with a status. What that CPU runs is the caller's
    // responsibility (`smp::start_cpu`).
    unsafe {
        core::arch::asm!(
            "hvc #0",
            inout("x0") CPU_ON => status,
            inout("x1") mpidr => _,
            inout("x2") entry => _,
            inout("x3") context => _,
            // SMCCC 1.0 lets the firmware change x4 to x17 too.
            clobber_abi("C"),
            options(nostack),
        );
    }
    status.cast_signed()
}
