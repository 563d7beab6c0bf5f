//! Interrupt routing: which device each GIC interrupt belongs to.
//!
//! Every CPU has its own timer tick, which asks its scheduler for a
//! switch; the boot CPU's also advances [`crate::time`], wakes sleepers,
//! and wakes the network when its timer is due and the memory-pressure
//! check when it is due. Devices' interrupts go to the boot CPU: the
//! UART's fills the console's input; the virtio-net card's wakes the
//! network thread. SGIs carry requests between CPUs: reschedule (an idle
//! CPU, for a thread made ready elsewhere) and stop (a panic elsewhere).
//! Installed as the IRQ handler of `arch::exceptions`; IRQs are masked
//! while it runs.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::arch::gic::{Gic, Line};
use crate::arch::timer;
use crate::sync::IrqMutex;
use crate::time::TICK_HZ;

static GIC: IrqMutex<Option<Gic>> = IrqMutex::new(None);
static TIMER_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
static UART_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
static TICK_INTERVAL: AtomicU64 = AtomicU64::new(0);

/// The SGI that stops a CPU for good (a panic on another).
const STOP_SGI: u32 = 2;
/// Set before [`STOP_SGI`] is sent.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Routes the timer and UART interrupts through `gic` and starts the
/// periodic tick.
pub fn init(mut gic: Gic, timer_intid: u32, uart_intid: u32) {
    gic.enable(timer_intid, Line::Level);
    gic.enable(uart_intid, Line::Level);
    gic.enable(crate::sched::RESCHED_SGI, Line::Level);
    gic.enable(STOP_SGI, Line::Level);
    TIMER_INTID.store(timer_intid, Relaxed);
    UART_INTID.store(uart_intid, Relaxed);
    *GIC.lock() = Some(gic);
    TICK_INTERVAL.store(timer::frequency() / TICK_HZ, Relaxed);
    timer::arm(TICK_INTERVAL.load(Relaxed));
}

/// Sets up a secondary CPU's interrupts: its GIC interface, its timer
/// tick and its SGIs (devices' interrupts stay with the boot CPU).
pub fn init_this_cpu() {
    if let Some(gic) = GIC.lock().as_mut() {
        gic.init_this_cpu();
        gic.enable(TIMER_INTID.load(Relaxed), Line::Level);
        gic.enable(crate::sched::RESCHED_SGI, Line::Level);
        gic.enable(STOP_SGI, Line::Level);
    }
    timer::arm(TICK_INTERVAL.load(Relaxed));
}

/// Stops every other CPU (for a panic: nothing else runs or prints after
/// it). They park with IRQs masked when they take the SGI.
pub fn stop_other_cpus() {
    STOPPING.store(true, Relaxed);
    let others = (0..crate::cpu::MAX_CPUS)
        .filter(|&i| i != crate::cpu::index())
        .fold(0u8, |mask, i| mask | (1 << i));
    crate::arch::gic::send_sgi(STOP_SGI, others);
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
        let Some(taken) = GIC.lock().as_mut().and_then(Gic::acknowledge) else {
            break;
        };
        let intid = taken.id();
        if intid == TIMER_INTID.load(Relaxed) {
            timer::arm(TICK_INTERVAL.load(Relaxed));
            crate::sched::on_tick();
            if crate::cpu::index() == 0 {
                crate::time::tick();
                crate::sched::wake_sleepers();
                crate::net::on_tick();
                crate::pressure::on_tick();
            }
        } else if intid == crate::sched::RESCHED_SGI {
            crate::sched::on_tick();
        } else if intid == STOP_SGI && STOPPING.load(Relaxed) {
            // Parked for good, IRQs masked; no lock is held here (locks
            // mask IRQs, so this SGI could not be taken under one).
            loop {
                crate::arch::irq_mask::wait();
            }
        } else if intid == UART_INTID.load(Relaxed) {
            crate::console::on_interrupt();
        } else if crate::net::is_card_interrupt(intid) {
            crate::net::on_interrupt();
        }
        if let Some(gic) = GIC.lock().as_mut() {
            gic.end(taken);
        }
    }
    cpu.in_interrupt.store(false, Relaxed);
    crate::sched::preempt_if_needed();
}
