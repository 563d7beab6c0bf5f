//! The `GICv2` interrupt controller: its distributor and this CPU's
//! interface, reached only through [`Gic`].
//!
//! The device tree names the registers; [`Gic::claim`] hands out the one
//! driver for them, once, so the "used by nothing else" half of the MMIO
//! contract is checked here rather than promised by every caller.

use core::sync::atomic::{AtomicBool, Ordering};

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
        Some(Gic { gic, group })
    }

    /// Routes interrupt `intid` to this CPU at a middle priority.
    pub fn enable(&mut self, intid: u32, line: Line) {
        let Ok(id) = IntId::try_from(intid) else {
            return;
        };
        self.gic.set_interrupt_priority(id, 0x80);
        self.gic.set_trigger(
            id,
            match line {
                Line::Level => Trigger::Level,
            },
        );
        let _ = self.gic.enable_interrupt(id, true);
    }

    /// Takes the highest-priority pending interrupt, if any; it must be
    /// ended with [`Gic::end`].
    pub fn acknowledge(&mut self) -> Option<u32> {
        self.gic
            .get_and_acknowledge_interrupt(self.group)
            .map(u32::from)
    }

    /// Ends an interrupt taken by [`Gic::acknowledge`].
    pub fn end(&mut self, intid: u32) {
        if let Ok(id) = IntId::try_from(intid) {
            self.gic.end_interrupt(id, self.group);
        }
    }
}
