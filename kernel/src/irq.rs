//! Interrupt routing: which device each GIC interrupt belongs to.
//!
//! The timer tick advances [`crate::time`], asks the scheduler for a
//! switch, wakes the network when its timer is due and the memory-pressure
//! check when it is due; the UART's
//! interrupt fills the console's input; the virtio-net card's wakes the
//! network thread. Installed as the
//! IRQ handler of `arch::exceptions`; IRQs are masked while it runs.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::arch::gic::{Gic, Line};
use crate::arch::timer;
use crate::sync::IrqMutex;
use crate::time::TICK_HZ;

static GIC: IrqMutex<Option<Gic>> = IrqMutex::new(None);
static TIMER_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
static UART_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
static TICK_INTERVAL: AtomicU64 = AtomicU64::new(0);

/// Routes the timer and UART interrupts through `gic` and starts the
/// periodic tick.
pub fn init(mut gic: Gic, timer_intid: u32, uart_intid: u32) {
    gic.enable(timer_intid, Line::Level);
    gic.enable(uart_intid, Line::Level);
    TIMER_INTID.store(timer_intid, Relaxed);
    UART_INTID.store(uart_intid, Relaxed);
    *GIC.lock() = Some(gic);
    TICK_INTERVAL.store(timer::frequency() / TICK_HZ, Relaxed);
    timer::arm(TICK_INTERVAL.load(Relaxed));
}

/// Routes the network card's interrupt (level-triggered, like every
/// virtio MMIO slot's on QEMU `virt`) to [`crate::net::on_interrupt`].
pub fn route_network(intid: u32) {
    if let Some(gic) = GIC.lock().as_mut() {
        gic.enable(intid, Line::Level);
    }
}

/// Handles every pending interrupt; the IRQ vector's handler.
pub fn dispatch() {
    let cpu = crate::cpu::this();
    cpu.in_interrupt.store(true, Relaxed);
    loop {
        let Some(intid) = GIC.lock().as_mut().and_then(Gic::acknowledge) else {
            break;
        };
        if intid == TIMER_INTID.load(Relaxed) {
            timer::arm(TICK_INTERVAL.load(Relaxed));
            crate::time::tick();
            crate::sched::on_tick();
            crate::net::on_tick();
            crate::pressure::on_tick();
        } else if intid == UART_INTID.load(Relaxed) {
            crate::console::on_interrupt();
        } else if crate::net::is_card_interrupt(intid) {
            crate::net::on_interrupt();
        }
        if let Some(gic) = GIC.lock().as_mut() {
            gic.end(intid);
        }
    }
    cpu.in_interrupt.store(false, Relaxed);
    crate::sched::preempt_if_needed();
}
