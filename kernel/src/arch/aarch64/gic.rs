//! The `GICv2` interrupt controller: its distributor and this CPU's
//! interface, reached only through [`Gic`].
//!
//! The device tree names the registers; [`Gic::claim`] hands out the one
//! driver for them, once, so the "used by nothing else" half of the MMIO
//! contract is checked here rather than promised by every caller.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arm_gic::gicv2::{
    GicV2,
    registers::{Gicc, Gicd},
};
use arm_gic::{IntId, InterruptGroup, Trigger};

use super::mmu;

/// How an interrupt line signals.
#[derive(Clone, Copy, Debug)]
pub enum Line {
    /// Raised while the condition holds.
    Level,
}

/// The interrupt controller.
pub struct Gic {
    gic: GicV2<'static>,
    group: InterruptGroup,
}

// SAFETY: the GIC is MMIO with no thread affinity; the kernel keeps its one
// `Gic` behind a lock, so register accesses never interleave.
unsafe impl Send for Gic {}

static CLAIMED: AtomicBool = AtomicBool::new(false);

/// The claimed distributor's address, for [`send_sgi`] (0 until claimed).
static DISTRIBUTOR: AtomicUsize = AtomicUsize::new(0);

/// `GICD_IPRIORITYR<n>`: one byte per interrupt, its priority.
const IPRIORITYR: usize = 0x400;
/// The priority [`Gic::enable`] gives every interrupt (a middle one).
pub const PRIORITY: u8 = 0x80;
/// `GICD_ITARGETSR<n>`: one byte per interrupt, the CPUs it goes to.
const ITARGETSR: usize = 0x800;
/// `GICD_SGIR`: writing it raises a software-generated interrupt.
const SGIR: usize = 0xf00;

/// Software-generated interrupts (SGIs) are ids 0 to 15.
pub const SGI_COUNT: u32 = 16;

impl Gic {
    /// The driver for the GIC whose distributor and CPU interface the
    /// device tree places at `distributor` and `cpu_interface`, set up with every interrupt
    /// disabled. `None` if it was claimed before or an address lies outside
    /// the device map.
    pub fn claim(distributor: usize, cpu_interface: usize) -> Option<Gic> {
        let usable = |addr| addr != 0 && mmu::is_device(addr);
        if !usable(distributor) || !usable(cpu_interface) {
            return None;
        }
        if CLAIMED.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: both blocks are in the device-memory map (checked above),
        // the device tree says they are the GIC's, and the `CLAIMED` flag
        // makes this the only driver ever built for them.
        let mut gic = unsafe { GicV2::new(distributor as *mut Gicd, cpu_interface as *mut Gicc) };
        let group = if gic.typer().has_security_extension() {
            InterruptGroup::Group1
        } else {
            InterruptGroup::Group0
        };
        gic.setup();
        DISTRIBUTOR.store(distributor, Ordering::Release);
        Some(Gic { gic, group })
    }

    /// Sets up the calling CPU's interface and its banked registers (the
    /// group of its SGIs and PPIs): every CPU but the first calls this
    /// once, before it enables its own SGIs and PPIs with [`Gic::enable`].
    pub fn init_this_cpu(&mut self) {
        self.gic.setup();
    }

    /// Enables interrupt `intid` at a middle priority: an SGI or PPI
    /// (ids below 32, banked per CPU) for the calling CPU only; a shared
    /// interrupt (SPI) for the first CPU, which handles every device.
    pub fn enable(&mut self, intid: u32, line: Line) {
        let Ok(id) = IntId::try_from(intid) else {
            return;
        };
        let Ok(offset) = usize::try_from(intid) else {
            return;
        };
        let distributor = DISTRIBUTOR.load(Ordering::Acquire);
        if intid >= 32 {
            let target = distributor + ITARGETSR + offset;
            // SAFETY: `target` is the byte of `GICD_ITARGETSR` for `intid`
            // in the distributor this driver claimed (device memory, byte
            // accessible); writing it only chooses the CPU the interrupt
            // goes to, CPU 0.
            unsafe { core::ptr::write_volatile(target as *mut u8, 1) };
        }
        // Not `GicV2::set_interrupt_priority`: it writes the whole 32-bit
        // register, setting the three other interrupts sharing it to
        // priority 0 (enabling the stop SGI reset the reschedule SGI's).
        // SAFETY: the byte of `GICD_IPRIORITYR` for `intid` (banked per
        // CPU below 32) in the distributor this driver claimed (device
        // memory, byte accessible); it only sets that interrupt's priority.
        unsafe {
            core::ptr::write_volatile((distributor + IPRIORITYR + offset) as *mut u8, PRIORITY);
        }
        self.gic.set_trigger(
            id,
            match line {
                Line::Level => Trigger::Level,
            },
        );
        let _ = self.gic.enable_interrupt(id, true);
    }

    /// Takes the highest-priority pending interrupt, if any; it must be
    /// ended with [`Gic::end`] on the same CPU.
    pub fn acknowledge(&mut self) -> Option<Acknowledged> {
        self.gic
            .get_and_acknowledge_interrupt(self.group)
            .map(|raw| Acknowledged { raw })
    }

    /// Ends an interrupt taken by [`Gic::acknowledge`].
    pub fn end(&mut self, taken: Acknowledged) {
        self.gic.end_interrupt(taken.raw, self.group);
    }
}

/// An interrupt taken from the CPU interface, to be ended once handled.
#[derive(Clone, Copy, Debug)]
pub struct Acknowledged {
    /// What `GICC_IAR` read: for an SGI it also holds the sending CPU
    /// (bits 10 to 12), which ending it must write back.
    raw: IntId,
}

impl Acknowledged {
    /// The interrupt's id (0 to 1019), without the sending CPU.
    pub fn id(self) -> u32 {
        u32::from(self.raw) & 0x3ff
    }
}

/// The priority of interrupt `intid` (below 1020) as the calling CPU's
/// distributor view reads it (SGIs and PPIs are banked per CPU): what
/// [`Gic::enable`] wrote. `None` before the GIC is claimed.
#[cfg(feature = "ktest")]
pub fn priority(intid: u32) -> Option<u8> {
    let distributor = DISTRIBUTOR.load(Ordering::Acquire);
    let offset = usize::try_from(intid).ok().filter(|&i| i < 1020)?;
    if distributor == 0 {
        return None;
    }
    // SAFETY: the byte of `GICD_IPRIORITYR` for `intid` in the claimed
    // distributor (device memory, byte accessible); reading it has no
    // effect.
    Some(unsafe { core::ptr::read_volatile((distributor + IPRIORITYR + offset) as *const u8) })
}

/// Raises SGI `sgi` (below [`SGI_COUNT`]) on every CPU in `cpus` (bit `n`:
/// CPU interface `n`). Does nothing before the GIC is claimed. Writes the
/// caller made before are visible to the CPUs it interrupts.
pub fn send_sgi(sgi: u32, cpus: u8) {
    let distributor = DISTRIBUTOR.load(Ordering::Acquire);
    if distributor == 0 || sgi >= SGI_COUNT || cpus == 0 {
        return;
    }
    let value = (u32::from(cpus) << 16) | sgi;
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
    // SAFETY: `GICD_SGIR` of the claimed distributor (device memory, a
    // 32-bit write-only register); a write raises the SGI on the CPUs in
    // its target list and touches no memory.
    unsafe { core::ptr::write_volatile((distributor + SGIR) as *mut u32, value) };
}
