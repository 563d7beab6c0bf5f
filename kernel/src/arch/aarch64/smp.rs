//! Starting the secondary CPUs: PSCI `CPU_ON` into a small assembly entry
//! that turns the MMU on with the boot CPU's settings, takes its stacks and
//! vector table, and calls the kernel's entry for that CPU.
//!
//! A secondary CPU starts with its MMU and caches off, so until the MMU is
//! on it reads memory uncached: the one block it reads then (its
//! [`StartBlock`]) is written by the boot CPU and cleaned to the point of
//! coherency before `CPU_ON`. Nothing else is touched before the MMU is on,
//! so the stacks and everything after see the same coherent, cached memory
//! as every other CPU.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{MAIR_EL1, Readable, SCTLR_EL1, TCR_EL1, TTBR0_EL1, VBAR_EL1};
use spin::Once;

use super::psci;
use super::stack::GuardedStack;

/// Most CPUs this module starts (the boot CPU included).
pub const MAX_CPUS: usize = 4;

/// Bytes of a secondary CPU's boot stack (its idle thread's).
const BOOT_STACK: usize = 16 << 10;
/// Bytes of its exception stack (`SP_EL1`), as the boot CPU's.
const EXCEPTION_STACK: usize = 16 << 10;

/// What a starting CPU reads before its MMU is on. Layout shared with the
/// assembly below; one cache line.
#[repr(C, align(64))]
struct StartBlock {
    mair: AtomicU64,
    tcr: AtomicU64,
    ttbr0: AtomicU64,
    sctlr: AtomicU64,
    vbar: AtomicU64,
    sp_el1: AtomicU64,
    sp_el0: AtomicU64,
    entry: AtomicU64,
}

const _: () = assert!(core::mem::size_of::<StartBlock>() == 64);

static BLOCKS: [StartBlock; MAX_CPUS] = [const {
    StartBlock {
        mair: AtomicU64::new(0),
        tcr: AtomicU64::new(0),
        ttbr0: AtomicU64::new(0),
        sctlr: AtomicU64::new(0),
        vbar: AtomicU64::new(0),
        sp_el1: AtomicU64::new(0),
        sp_el0: AtomicU64::new(0),
        entry: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// The stacks of each started CPU: they live as long as the machine.
static STACKS: [Once<(GuardedStack, GuardedStack)>; MAX_CPUS] = [const { Once::new() }; MAX_CPUS];

core::arch::global_asm!(
    r#"
    .section .text
    .balign 8
    .global secondary_start
secondary_start:
    // x0: this CPU's StartBlock (physical == virtual). FP/SIMD on first.
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb
    ldp     x1, x2, [x0, #0]
    msr     mair_el1, x1
    msr     tcr_el1, x2
    ldp     x1, x2, [x0, #16]
    msr     ttbr0_el1, x1
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    msr     sctlr_el1, x2
    isb
    ldp     x1, x2, [x0, #32]
    msr     vbar_el1, x1
    isb
    mov     sp, x2
    msr     spsel, #0
    ldp     x1, x2, [x0, #48]
    mov     sp, x1
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    blr     x2
0:  wfe
    b       0b
"#
);

unsafe extern "C" {
    fn secondary_start();
}

/// Why a CPU could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// Its index is not below [`MAX_CPUS`].
    TooMany,
    /// Its stacks could not be allocated.
    NoMemory,
    /// It was started before.
    AlreadyStarted,
    /// PSCI refused, with this status.
    Psci(i64),
}

/// Starts the CPU whose `MPIDR` affinity is `mpidr` (its device-tree
/// `reg`) at `entry`, which it calls with its index (affinity level 0,
/// as [`super::cpu::index`] reads it) on its own boot
/// stack, IRQs masked, the MMU, caches and vector table set up as on the
/// calling CPU. Must run on the boot CPU after its MMU is on. The stacks
/// are allocated from the heap, charged to the running scope.
///
/// # Errors
/// [`StartError`]; the CPU then stays off.
pub fn start_cpu(mpidr: u64, entry: extern "C" fn(usize) -> !) -> Result<(), StartError> {
    let index = usize::try_from(mpidr & 0xff).map_err(|_| StartError::TooMany)?;
    let block = BLOCKS.get(index).ok_or(StartError::TooMany)?;
    if STACKS[index].is_completed() {
        return Err(StartError::AlreadyStarted);
    }
    let boot = GuardedStack::new(BOOT_STACK).ok_or(StartError::NoMemory)?;
    let exception = GuardedStack::new(EXCEPTION_STACK).ok_or(StartError::NoMemory)?;
    let (boot, exception) = STACKS[index].call_once(|| (boot, exception));
    let set = |field: &AtomicU64, value: u64| field.store(value, Ordering::Relaxed);
    set(&block.mair, MAIR_EL1.get());
    set(&block.tcr, TCR_EL1.get());
    set(&block.ttbr0, TTBR0_EL1.get());
    set(&block.sctlr, SCTLR_EL1.get());
    set(&block.vbar, VBAR_EL1.get());
    set(&block.sp_el1, exception.top() as u64);
    set(&block.sp_el0, boot.top() as u64);
    set(&block.entry, entry as usize as u64);
    let address = core::ptr::from_ref(block) as u64;
    // SAFETY: cleaning and invalidating one cache line by address has no
    // memory-safety effect; it makes the block's bytes visible to a CPU
    // reading memory with its caches off.
    unsafe {
        core::arch::asm!("dc civac, {}", "dsb sy", in(reg) address, options(nostack, preserves_flags));
    }
    match psci::cpu_on(mpidr, secondary_start as *const () as u64, address) {
        0 => Ok(()),
        status => Err(StartError::Psci(status)),
    }
}
