//! Interrupt routing: the GIC, the timer tick and device interrupts.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use arm_gic::gicv2::{
    GicV2,
    registers::{Gicc, Gicd},
};
use arm_gic::{IntId, InterruptGroup, Trigger};

use crate::arch::timer;
use crate::bootinfo::BootInfo;
use crate::sync::IrqMutex;

/// Timer interrupts per second.
pub const TICK_HZ: u64 = 100;

struct Gic {
    gic: GicV2<'static>,
    group: InterruptGroup,
}

// SAFETY: the GIC is MMIO, and all access goes through the `GIC` lock.
unsafe impl Send for Gic {}

static GIC: IrqMutex<Option<Gic>> = IrqMutex::new(None);
static TIMER_INTID: AtomicU32 = AtomicU32::new(0);
static UART_INTID: AtomicU32 = AtomicU32::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);
static TICK_INTERVAL: AtomicU64 = AtomicU64::new(0);

/// Timer ticks since boot.
pub fn ticks() -> u64 {
    TICKS.load(Relaxed)
}

/// Sets up the GIC and starts the periodic tick.
///
/// # Safety
/// `info`'s GIC addresses must be the GIC's, mapped as device memory and
/// used by nothing else.
pub unsafe fn init(info: &BootInfo) {
    // SAFETY: the caller's contract.
    let mut gic = unsafe { GicV2::new(info.gicd as *mut Gicd, info.gicc as *mut Gicc) };
    let group = if gic.typer().has_security_extension() {
        InterruptGroup::Group1
    } else {
        InterruptGroup::Group0
    };
    gic.setup();
    for (intid, trigger) in [
        (info.timer_intid, Trigger::Level),
        (info.uart_intid, Trigger::Level),
    ] {
        let Ok(id) = IntId::try_from(intid) else {
            continue;
        };
        gic.set_interrupt_priority(id, 0x80);
        gic.set_trigger(id, trigger);
        let _ = gic.enable_interrupt(id, true);
    }
    TIMER_INTID.store(info.timer_intid, Relaxed);
    UART_INTID.store(info.uart_intid, Relaxed);
    *GIC.lock() = Some(Gic { gic, group });
    TICK_INTERVAL.store(timer::frequency() / TICK_HZ, Relaxed);
    timer::arm(TICK_INTERVAL.load(Relaxed));
}

/// Handles every pending interrupt; called from the IRQ vector.
pub fn dispatch() {
    let cpu = crate::cpu::this();
    cpu.in_interrupt.store(true, Relaxed);
    loop {
        let (intid, group) = {
            let mut gic = GIC.lock();
            let Some(g) = gic.as_mut() else { break };
            match g.gic.get_and_acknowledge_interrupt(g.group) {
                Some(id) => (id, g.group),
                None => break,
            }
        };
        let raw = u32::from(intid);
        if raw == TIMER_INTID.load(Relaxed) {
            timer::arm(TICK_INTERVAL.load(Relaxed));
            TICKS.fetch_add(1, Relaxed);
            crate::sched::on_tick();
        } else if raw == UART_INTID.load(Relaxed) {
            crate::console::on_interrupt();
        }
        if let Some(g) = GIC.lock().as_mut() {
            g.gic.end_interrupt(intid, group);
        }
    }
    cpu.in_interrupt.store(false, Relaxed);
    crate::sched::preempt_if_needed();
}
