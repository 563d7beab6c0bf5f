//! Fatal errors and allocation failures.
//!
//! An allocation that cannot be had (beyond a process's overdraft, or the
//! heap exhausted) panics, unwindably. In a process's body, holding no lock,
//! with IRQs enabled and outside any interrupt handler, the panic unwinds
//! the process to its run loop, which frees everything it held and exits it
//! killed for memory (`proc::unwind_current`). Where it cannot be unwound,
//! a process is ended on the spot; anything else halts with a report.

use core::alloc::Layout;
use core::panic::PanicInfo;
use core::sync::atomic::Ordering::Relaxed;

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

/// Where `handle_alloc_error` lands. The default handler in `alloc` panics
/// with a `nounwind` panic, which can never be unwound; this one panics
/// like `panic!`, and notes that the panic is an allocation failure.
#[alloc_error_handler]
fn alloc_error(layout: Layout) -> ! {
    crate::cpu::this().alloc_failed.store(true, Relaxed);
    panic!("memory allocation of {} bytes failed", layout.size())
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let saved = crate::arch::irq_mask::save_and_mask();
    // In a process that holds no kernel lock and is not in an interrupt
    // handler, nothing shared is half-updated (shared state lives behind
    // locks): end just that process.
    let cpu = crate::cpu::this();
    let alloc_failed = cpu.alloc_failed.swap(false, Relaxed);
    let process_may_end = cpu.lock_depth() == 0 && !cpu.in_interrupt.load(Relaxed);
    // An allocation failure is unwound: every destructor of the process
    // runs and it exits killed for memory. Not if IRQs were masked (the
    // code was switching threads or masking on purpose, without a lock),
    // nor if this panic may not unwind (one raised while unwinding, in a
    // destructor). `unwind_current` returns if it cannot unwind.
    if process_may_end
        && alloc_failed
        && info.can_unwind()
        && !crate::arch::irq_mask::was_masked(saved)
    {
        crate::arch::irq_mask::restore(saved);
        crate::proc::unwind_current();
        crate::arch::irq_mask::save_and_mask();
    }
    crate::console::ensure_output();
    if process_may_end {
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
