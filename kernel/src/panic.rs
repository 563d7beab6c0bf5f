//! Faults, panics and allocation failures: the one process at fault ends,
//! or, when that cannot be done safely, the kernel halts once with a full
//! report.
//!
//! - An allocation that cannot be had (beyond a process's overdraft, or the
//!   heap exhausted) panics, unwindably. In a process's body, holding no
//!   lock, with IRQs enabled and outside any interrupt handler, the panic
//!   unwinds the process to its run loop, which frees everything it held
//!   and exits it killed for memory (`proc::unwind_current`).
//! - A process that overflows its stack faults on the guard page; the fault
//!   is handled on the exception stack and the process is restarted at
//!   [`stack_overflow`] on its own stack reset to its top, which ends it on
//!   the spot (nothing on the overflowed stack can be unwound).
//! - Any other panic in a process that holds no lock and is not in an
//!   interrupt handler ends that process on the spot.
//! - Anything else (a fault or panic in the kernel proper, with a lock
//!   held, in an interrupt handler, or inside this fatal path itself) halts.

use core::alloc::Layout;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use crate::arch::exceptions::{Fault, Restart};
use crate::kprintln;

/// Set when the kernel has started to halt: any fault after that parks the
/// CPU at once instead of reporting again (a fault in the report itself
/// must not loop).
static HALTING: AtomicBool = AtomicBool::new(false);

/// The guard-page address of the last stack overflow on each CPU, for its
/// report (the fault and the restart run on one CPU, IRQs masked).
static OVERFLOW_AT: [AtomicUsize; crate::cpu::MAX_CPUS] =
    [const { AtomicUsize::new(0) }; crate::cpu::MAX_CPUS];

/// Runs `f` with the running thread, if the scheduler has started.
fn with_thread<R>(f: impl FnOnce(&crate::sched::Thread) -> R) -> Option<R> {
    crate::sched::try_with_current(f)
}

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
    crate::irq::stop_other_cpus();
    if cfg!(feature = "ktest") {
        crate::arch::semihost::exit(1);
    }
    loop {
        crate::arch::irq_mask::wait();
    }
}

/// The kernel's fault handler: a stack overflow by a process restarts it
/// at [`stack_overflow`]; anything else halts.
pub fn on_fault(fault: &Fault) -> Restart {
    if HALTING.load(Relaxed) {
        park();
    }
    if fault.is_thread_translation_fault() {
        let cpu = crate::cpu::this();
        let overflow = with_thread(|t| {
            let process = crate::proc::of_thread(t).is_some();
            t.guard_hit(fault.address())
                .then_some((t.stack_top(), process, t.name))
        })
        .flatten();
        if let Some((Some(stack_top), process, name)) = overflow {
            if process && cpu.lock_depth() == 0 && !cpu.in_interrupt.load(Relaxed) {
                OVERFLOW_AT[crate::cpu::index()].store(fault.address(), Relaxed);
                return Restart {
                    entry: stack_overflow,
                    stack_top,
                };
            }
            kprintln!("\nstack overflow in thread {name}, which cannot be ended alone");
        }
    }
    fatal_exception(fault)
}

/// Where a process that overflowed its stack is restarted, on its own stack
/// reset to its top with IRQs masked: ends it on the spot.
extern "C" fn stack_overflow() -> ! {
    let at = OVERFLOW_AT[crate::cpu::index()].load(Relaxed);
    with_thread(|thread| {
        // Not reported again as a broken canary when it switches away.
        thread.caught_overflow();
        if let Some(process) = crate::proc::of_thread(thread) {
            let why = format_args!("stack overflow: it touched its guard page at {at:#x}");
            crate::proc::terminate_current(process, &why);
        }
    });
    halt_with("a stack overflow could not end its process")
}

fn park() -> ! {
    crate::arch::irq_mask::save_and_mask();
    loop {
        crate::arch::irq_mask::wait();
    }
}

fn halt_with(what: &str) -> ! {
    HALTING.store(true, Relaxed);
    kprintln!("\nKERNEL HALT: {what}");
    report_heap();
    halt();
}

/// Prints the return addresses on this stack (`nm -n` on the kernel ELF
/// names them).
fn print_backtrace() {
    let mut frames = [0usize; 24];
    let n = crate::arch::unwind::backtrace(&mut frames);
    crate::kprint!("backtrace (nm -n the kernel ELF):");
    for ip in &frames[..n] {
        crate::kprint!(" {ip:#x}");
    }
    kprintln!();
}

/// A CPU exception the kernel cannot handle.
pub fn fatal_exception(fault: &Fault) -> ! {
    if HALTING.swap(true, Relaxed) {
        park();
    }
    crate::irq::stop_other_cpus();
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
    // IRQs masked from here, so the panic handler runs on this CPU and
    // finds the note; it is told whether they were masked before.
    let saved = crate::arch::irq_mask::save_and_mask();
    let cpu = crate::cpu::this();
    cpu.alloc_failed_irqs_masked
        .store(crate::arch::irq_mask::was_masked(saved), Relaxed);
    cpu.alloc_failed.store(true, Relaxed);
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
    let irqs_were_masked = if alloc_failed {
        cpu.alloc_failed_irqs_masked.load(Relaxed)
    } else {
        crate::arch::irq_mask::was_masked(saved)
    };
    let process_may_end = cpu.lock_depth() == 0 && !cpu.in_interrupt.load(Relaxed);
    // An allocation failure is unwound: every destructor of the process
    // runs and it exits killed for memory. Not if IRQs were masked (the
    // code was switching threads or masking on purpose, without a lock),
    // nor if this panic may not unwind (one raised while unwinding, in a
    // destructor). `unwind_current` returns if it cannot unwind.
    if process_may_end && alloc_failed && info.can_unwind() && !irqs_were_masked {
        crate::arch::irq_mask::enable();
        crate::proc::unwind_current();
        crate::arch::irq_mask::save_and_mask();
    }
    crate::console::ensure_output();
    if process_may_end {
        // Borrowed from the thread: nothing on this never-unwound stack may
        // hold the process alive.
        with_thread(|thread| {
            if let Some(process) = crate::proc::of_thread(thread) {
                crate::proc::terminate_current(process, &info.message());
            }
        });
    }
    if HALTING.swap(true, Relaxed) {
        park();
    }
    // Nothing else runs or prints from here (a CPU holding a lock takes
    // the stop once it lets the lock go).
    crate::irq::stop_other_cpus();
    // This CPU's state again: an attempted unwind above ran with IRQs
    // enabled, so the thread may have moved.
    let cpu = crate::cpu::this();
    kprintln!("\nKERNEL PANIC: {info}");
    kprintln!(
        "thread: {} (kernel locks held: {}, in an interrupt: {}, interrupts were masked: {})",
        crate::sched::current_name(),
        cpu.lock_depth(),
        cpu.in_interrupt.load(Relaxed),
        irqs_were_masked
    );
    print_backtrace();
    report_heap();
    halt();
}
