//! What the kernel learns from the device tree QEMU hands it: RAM, the
//! UART, the GIC, the timer interrupt, the virtio MMIO slots and the boot
//! arguments.
//!
//! Nothing here is hard-coded: a different `-m` or machine layout is read,
//! not assumed. The device tree stays where QEMU put it (below the kernel,
//! which the heap never overlaps), so strings borrowed from it live forever.

use core::fmt;
use core::ops::Range;

use flat_device_tree::Fdt;
use flat_device_tree::node::FdtNode;

/// Devices and memory found in the device tree.
pub struct BootInfo {
    /// RAM.
    pub ram: Range<usize>,
    /// Where the device tree blob sits.
    pub dtb: Range<usize>,
    /// The PL011 UART's registers.
    pub uart: usize,
    /// Its interrupt (GIC INTID).
    pub uart_intid: u32,
    /// `GICv2` distributor registers.
    pub gicd: usize,
    /// `GICv2` CPU interface registers.
    pub gicc: usize,
    /// The virtual timer's interrupt (GIC INTID).
    pub timer_intid: u32,
    /// `/chosen/bootargs` (QEMU `-append`).
    pub bootargs: &'static str,
    /// The `virtio,mmio` slots (most of QEMU's are empty), in tree order.
    pub virtio: [Option<VirtioSlot>; MAX_VIRTIO],
    /// QEMU's firmware configuration device, if present.
    pub fw_cfg: Option<usize>,
    /// Each CPU's `MPIDR` affinity (its `reg` under `/cpus`), up to
    /// [`crate::cpu::MAX_CPUS`].
    pub cpus: [Option<u64>; crate::cpu::MAX_CPUS],
}

/// Most virtio MMIO slots read from the device tree.
pub const MAX_VIRTIO: usize = crate::arch::virtio::MAX_SLOTS;

/// One `virtio,mmio` node: where its registers are and its interrupt. The
/// device type is read from the registers, not from the tree.
#[derive(Clone, Copy, Debug)]
pub struct VirtioSlot {
    /// Its registers.
    pub base: usize,
    /// Bytes of registers.
    pub size: usize,
    /// Its interrupt (GIC INTID).
    pub intid: u32,
}

impl BootInfo {
    /// The virtio MMIO slots found.
    pub fn virtio_slots(&self) -> impl Iterator<Item = VirtioSlot> + '_ {
        self.virtio.iter().flatten().copied()
    }
}

fn virtio_slots(fdt: &Fdt<'static>) -> [Option<VirtioSlot>; MAX_VIRTIO] {
    let mut slots = [None; MAX_VIRTIO];
    let nodes = fdt.all_nodes().filter(|n| {
        n.compatible()
            .is_some_and(|c| c.all().any(|c| c == "virtio,mmio"))
    });
    let found = nodes.filter_map(|node| {
        let reg = node.reg().next()?;
        Some(VirtioSlot {
            base: reg.starting_address as usize,
            size: reg.size?,
            intid: intids(node).next()?,
        })
    });
    for (slot, found) in slots.iter_mut().zip(found) {
        *slot = Some(found);
    }
    slots
}

/// A device tree that lacks something the kernel needs.
#[derive(Debug)]
pub struct Missing(&'static str);

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device tree: no {}", self.0)
    }
}

const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
/// The armv8-timer `interrupts` entries: secure, non-secure, virtual, hyp.
const TIMER_VIRTUAL: usize = 2;

/// The GIC INTIDs of a node's 3-cell `interrupts` property.
fn intids<'a>(node: FdtNode<'_, 'a>) -> impl Iterator<Item = u32> + 'a {
    let cells = node.property("interrupts").map_or(&[][..], |p| p.value);
    cells.chunks_exact(12).map(|c| {
        let word = |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
        let (kind, number) = (word(0), word(4));
        match kind {
            GIC_SPI => 32 + number,
            GIC_PPI => 16 + number,
            _ => number,
        }
    })
}

/// The `reg` of each CPU node, the first [`crate::cpu::MAX_CPUS`].
fn cpu_ids(fdt: &Fdt<'static>) -> [Option<u64>; crate::cpu::MAX_CPUS] {
    let mut ids = [None; crate::cpu::MAX_CPUS];
    let found = fdt
        .cpus()
        .filter_map(|cpu| cpu.ids().ok()?.first().ok())
        .filter_map(|id| u64::try_from(id).ok());
    for (slot, id) in ids.iter_mut().zip(found) {
        *slot = Some(id);
    }
    ids
}

fn first_reg(node: FdtNode<'_, '_>, what: &'static str) -> Result<usize, Missing> {
    node.reg()
        .next()
        .map(|r| r.starting_address as usize)
        .ok_or(Missing(what))
}

impl BootInfo {
    /// Reads the device tree `dtb` (handed out by `arch::memory`).
    ///
    /// # Errors
    /// [`Missing`] names the first thing the kernel needs and did not find.
    pub fn parse(dtb: &'static [u8]) -> Result<Self, Missing> {
        let fdt: Fdt<'static> = Fdt::new(dtb).map_err(|_| Missing("valid header"))?;
        let memory = fdt.memory().map_err(|_| Missing("/memory"))?;
        let region = memory.regions().next().ok_or(Missing("memory region"))?;
        let ram_start = region.starting_address as usize;
        let ram = ram_start..ram_start + region.size.ok_or(Missing("memory size"))?;
        let uart = fdt
            .find_compatible(&["arm,pl011"])
            .ok_or(Missing("PL011 UART"))?;
        let gic = fdt
            .find_compatible(&["arm,cortex-a15-gic", "arm,gic-400"])
            .ok_or(Missing("GICv2"))?;
        let mut gic_regs = gic.reg();
        let distributor = gic_regs.next().ok_or(Missing("GIC distributor"))?;
        let cpu_interface = gic_regs.next().ok_or(Missing("GIC CPU interface"))?;
        let timer = fdt
            .find_compatible(&["arm,armv8-timer"])
            .ok_or(Missing("armv8 timer"))?;
        let bootargs = fdt
            .chosen()
            .ok()
            .and_then(flat_device_tree::standard_nodes::Chosen::bootargs)
            .unwrap_or("");
        Ok(Self {
            ram,
            dtb: dtb.as_ptr_range().start as usize..dtb.as_ptr_range().end as usize,
            uart: first_reg(uart, "UART registers")?,
            uart_intid: intids(uart).next().ok_or(Missing("UART interrupt"))?,
            gicd: distributor.starting_address as usize,
            gicc: cpu_interface.starting_address as usize,
            timer_intid: intids(timer)
                .nth(TIMER_VIRTUAL)
                .ok_or(Missing("virtual timer interrupt"))?,
            bootargs,
            virtio: virtio_slots(&fdt),
            fw_cfg: fdt
                .find_compatible(&["qemu,fw-cfg-mmio"])
                .and_then(|n| first_reg(n, "fw_cfg registers").ok()),
            cpus: cpu_ids(&fdt),
        })
    }
}
