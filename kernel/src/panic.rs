//! Fatal errors: a report, then a halt.

use core::panic::PanicInfo;

use crate::arch::exceptions::Fault;
use crate::kprintln;

fn report_heap() {
    let heap = crate::heap::snapshot();
    kprintln!(
        "heap: size {} used {} free {} floor {} emergency held {}/{} allocations {}",
        heap.size,
        heap.used,
        heap.free,
        heap.floor,
        heap.emergency.held,
        heap.emergency.capacity,
        heap.allocations
    );
    for a in crate::heap::ACCOUNTS.snapshots() {
        kprintln!(
            "  account {:>3} parent {:>3} current {:>9} max {:>9} peak {:>9} events max={} forced={}",
            a.id.index(),
            a.parent.map_or(0, quota::AccountId::index),
            a.current,
            a.max,
            a.peak,
            a.events.max,
            a.events.forced
        );
    }
}

fn halt() -> ! {
    crate::arch::irq_mask::save_and_mask();
    if cfg!(feature = "ktest") {
        crate::arch::semihost::exit(1);
    }
    loop {
        crate::arch::irq_mask::wait();
    }
}

/// A CPU exception the kernel cannot handle.
pub fn fatal_exception(fault: &Fault) -> ! {
    kprintln!("\nKERNEL FAULT: {fault}");
    let pid = crate::sched::try_with_current(|t| crate::proc::of_thread(t).map_or(0, |p| p.pid))
        .unwrap_or(0);
    kprintln!("thread: {} pid: {pid}", crate::sched::current_name());
    report_heap();
    halt();
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    crate::arch::irq_mask::save_and_mask();
    crate::console::ensure_output();
    // In a process that holds no kernel lock and is not in an interrupt
    // handler, nothing shared is half-updated (shared state lives behind
    // locks): end just that process. This is where an infallible allocation
    // beyond the overdraft lands (`handle_alloc_error` panics).
    let cpu = crate::cpu::this();
    if cpu.lock_depth() == 0 && !cpu.in_interrupt.load(core::sync::atomic::Ordering::Relaxed) {
        // Borrowed from the thread: nothing on this never-unwound stack may
        // hold the process alive.
        crate::sched::try_with_current(|thread| {
            if let Some(process) = crate::proc::of_thread(thread) {
                crate::proc::terminate_current(process, info);
            }
        });
    }
    kprintln!("\nKERNEL PANIC: {info}");
    kprintln!("thread: {}", crate::sched::current_name());
    report_heap();
    halt();
}
