//! The quota kernel: aarch64, QEMU `virt`.
//!
//! Boot: `arch::aarch64::boot` sets up FP, a stack and `.bss`, then
//! [`kernel_main`] installs the exception vectors, turns the MMU on, reads
//! the device tree, starts the console, the heap (talc inside
//! `quota::TrackingAlloc`), the GIC and the timer tick, and the scheduler,
//! and starts the console session's shell.

#![no_std]
#![no_main]
// A test build runs the in-kernel tests instead of the shell, which then
// goes unused; normal builds still report dead code.
#![cfg_attr(feature = "ktest", allow(dead_code))]

extern crate alloc;

mod arch;
mod bootinfo;
mod cmdline;
mod console;
mod cpu;
mod heap;
mod io;
mod irq;
#[cfg(feature = "ktest")]
mod ktest;
mod panic;
mod proc;
mod ramfs;
mod sched;
mod shell;
mod sync;
mod vfs;

unsafe extern "C" {
    /// End of the kernel image (linker script).
    static __kernel_end: u8;
}

/// Where QEMU `virt` puts the device tree: the start of RAM. QEMU 7.2
/// (Debian 12's) leaves x0 = 0 when it boots an ELF, so the kernel looks
/// here when x0 does not say.
const DTB_AT_RAM_START: usize = 0x4000_0000;

/// Entered from `_start` with the device tree's address (or 0).
#[unsafe(no_mangle)]
extern "C" fn kernel_main(dtb: usize) -> ! {
    arch::exceptions::init();
    arch::mmu::enable();
    let dtb = if dtb == 0 { DTB_AT_RAM_START } else { dtb };
    // SAFETY: QEMU passes a valid device tree in x0 and nothing writes it.
    let info = match unsafe { bootinfo::BootInfo::parse(dtb) } {
        Ok(info) => info,
        Err(e) => panic!("{e} (x0 = {dtb:#x})"),
    };
    // SAFETY: the device tree names the UART; nothing else drives it.
    unsafe { console::init(info.uart) };
    kprintln!(
        "memquota kernel: RAM {:#x}..{:#x}, device tree at {:#x} ({} bytes)",
        info.ram.start,
        info.ram.end,
        info.dtb.start,
        info.dtb.len()
    );

    let kernel_end = (&raw const __kernel_end) as usize;
    let params = cmdline::parse(info.bootargs, info.ram.end - info.ram.start);
    let heap_base = kernel_end.next_multiple_of(4096);
    let heap_end = heap_base
        .checked_add(params.heap)
        .filter(|end| *end <= info.ram.end.min(arch::mmu::MAPPED_END));
    let Some(heap_end) = heap_end else {
        panic!(
            "heap={} does not fit in RAM after the kernel (ends {:#x})",
            params.heap, info.ram.end
        )
    };
    let heap = heap::HeapParams {
        size: heap_end - heap_base,
        floor: params.floor,
        emergency: params.emergency,
    };
    // SAFETY: RAM after the kernel image is unused and, as checked, inside
    // RAM and the identity map; the device tree lies below the kernel.
    if let Err(e) = unsafe { heap::init(heap_base, heap) } {
        panic!("heap: {e}");
    }
    sched::init();
    // SAFETY: the device tree names the GIC; nothing else drives it.
    unsafe { irq::init(&info) };
    console::enable_input();
    let scope = quota::Scope {
        account: heap::kernel_account().id(),
        fallible: false,
    };
    let millis = arch::timer::now() * 1000 / arch::timer::frequency();
    kprintln!("boot: kernel ready {millis} ms after power-on");
    #[cfg(feature = "ktest")]
    sched::spawn("ktest", 64 << 10, scope, |_| ktest::run_all()).expect("spawn the tests");
    #[cfg(not(feature = "ktest"))]
    sched::spawn("console", 16 << 10, scope, move |_| {
        console_sessions(params);
    })
    .expect("spawn the console");
    sched::idle();
}

/// Runs the root shell on the serial console, starting a new one whenever
/// it exits.
fn console_sessions(params: cmdline::Params) {
    loop {
        banner(params);
        let spawn = proc::Spawn {
            name: "sh".into(),
            parent: None,
            root_session: true,
            session_max: params.session_max,
            foreground: false,
        };
        match proc::spawn(spawn, alloc::boxed::Box::new(shell::run)) {
            Ok(shell) => {
                proc::wait_exit(&shell);
                if let proc::ProcState::Exited(status) = shell.state() {
                    kprintln!("session {} ended: sh {status}", shell.pid);
                }
            }
            Err(e) => {
                kprintln!("cannot start the shell: {e}");
                let _ = sched::sleep_until(irq::ticks() + irq::TICK_HZ);
            }
        }
    }
}

fn banner(params: cmdline::Params) {
    kprintln!();
    kprintln!("memquota: per-session kernel memory quotas");
    kprintln!(
        "heap {} bytes, floor {} bytes, each session's max {}",
        params.heap,
        params.floor,
        params.session_max
    );
    kprintln!("try:  memquota               the account table");
    kprintln!("      cat /proc/self/memquota  this command's own account");
    kprintln!("      hog 8M                 allocate until the session's limit refuses");
    kprintln!(
        "      hog 8M --infallible    the same without handling failure: killed, kernel fine"
    );
    kprintln!("      memquota set session 16M; help; poweroff");
}
