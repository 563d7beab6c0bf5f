//! The quota kernel: aarch64, QEMU `virt`.
//!
//! Boot: `arch::aarch64::boot` sets up FP, a stack and `.bss`, installs the
//! exception vectors, turns the MMU on and calls [`kernel_main`] with the
//! device tree, which reads it, starts the console, the heap (talc inside
//! `quota::TrackingAlloc`), the scheduler, the GIC and the timer tick, and
//! starts the console session's shell.
//!
//! Layers, lowest first (ARCHITECTURE.md, checked by
//! `scripts/check-layers.sh`): `arch` → `cpu`, `sync`, `time` → `heap` →
//! `sched` → `console` → `proc`, `cmdline`, `pressure` → `net` → `fs` →
//! `shell` → `irq`, `panic` → this file. Unsafe code is denied here and
//! allowed only in `arch`, `sync` and `sched::switch`.

#![no_std]
#![no_main]
#![deny(unsafe_code)]
// The kernel is built with `panic = "unwind"` on a pinned nightly
// (kernel/rust-toolchain.toml): `catch_unwind` for `arch::unwind::catch`,
// `can_unwind` to never unwind a panic that must not be, and an allocation
// error handler that panics unwindably (the default one in `alloc` panics
// with a `nounwind` panic, which cannot be unwound).
#![feature(core_intrinsics, panic_can_unwind, alloc_error_handler)]
#![allow(
    internal_features,
    reason = "core_intrinsics: catch_unwind has no stable form in no_std"
)]

extern crate alloc;

mod arch;
mod bootinfo;
mod cmdline;
mod console;
mod cpu;
mod fs;
mod heap;
mod irq;
#[cfg(feature = "ktest")]
mod ktest;
mod net;
mod panic;
mod pressure;
mod proc;
mod rng;
mod sched;
mod shell;
mod ssh;
mod sync;
mod time;
mod tty;

/// The kernel proper, entered from `arch` once the MMU is on, with the
/// device tree QEMU passed (`None` if none was found).
fn kernel_main(dtb: Option<&'static [u8]>) -> ! {
    arch::exceptions::set_handlers(arch::exceptions::Handlers {
        irq: irq::dispatch,
        fault: panic::on_fault,
    });
    let Some(dtb) = dtb else {
        panic!("no device tree at x0 or at the start of RAM");
    };
    let info = match bootinfo::BootInfo::parse(dtb) {
        Ok(info) => info,
        Err(e) => panic!("{e}"),
    };
    let Some(uart) = arch::uart::Pl011::claim(info.uart) else {
        panic!("the device tree's UART at {:#x} cannot be used", info.uart);
    };
    console::init(uart);
    kprintln!(
        "memquota kernel: RAM {:#x}..{:#x}, device tree at {:#x} ({} bytes)",
        info.ram.start,
        info.ram.end,
        info.dtb.start,
        info.dtb.len()
    );

    let params = cmdline::parse(info.bootargs, info.ram.end - info.ram.start);
    kprintln!(
        "boot parameters: heap={} floor={} emergency={} session_max={} operator_reserve={} pids_max={} tmp_size={} failslab={:?} pressure_warn={} pressure_critical={}",
        params.heap,
        params.floor,
        params.emergency,
        params.session_max,
        params.operator_reserve,
        kcore::cmdline::Count(params.pids_max),
        params.tmp_size,
        params.failslab,
        params.pressure.warn(),
        params.pressure.critical(),
    );
    let heap = heap::HeapParams {
        size: params.heap,
        floor: params.floor,
        emergency: params.emergency,
        operator_reserve: params.operator_reserve,
        failslab: params.failslab,
    };
    if let Err(e) = heap::init(heap, &info.ram) {
        panic!("heap: {e}");
    }
    fs::set_tmp_size(params.tmp_size);
    sched::init();
    let Some(gic) = arch::gic::Gic::claim(info.gicd, info.gicc) else {
        panic!("the device tree's GIC cannot be used");
    };
    irq::init(gic, info.timer_intid, info.uart_intid);
    start_secondary_cpus(&info);
    console::enable_input();
    pressure::start(params.pressure);
    start_network(&info);
    let scope = quota::Scope {
        account: heap::kernel_account().id(),
        fallible: false,
    };
    kprintln!(
        "boot: kernel ready {} ms after power-on",
        time::millis_since_power_on()
    );
    #[cfg(feature = "ktest")]
    sched::spawn("ktest", 64 << 10, scope, |_| ktest::run_all()).expect("spawn the tests");
    #[cfg(not(feature = "ktest"))]
    sched::spawn("console", 16 << 10, scope, move |_| {
        console_sessions(params);
    })
    .expect("spawn the console");
    sched::idle();
}

/// Starts every other CPU the device tree lists, one at a time, each
/// given a second to join the scheduler.
fn start_secondary_cpus(info: &bootinfo::BootInfo) {
    let here = u64::try_from(cpu::index()).unwrap_or(0);
    for mpidr in info.cpus.iter().flatten().filter(|&&m| m & 0xff != here) {
        let before = cpu::online();
        if let Err(e) = heap::as_kernel(|| arch::smp::start_cpu(*mpidr, secondary_main)) {
            kprintln!("boot: CPU {mpidr:#x} not started: {e:?}");
            continue;
        }
        let deadline = time::millis_since_power_on() + 1000;
        while cpu::online() == before && time::millis_since_power_on() < deadline {
            core::hint::spin_loop();
        }
        if cpu::online() == before {
            kprintln!("boot: CPU {mpidr:#x} did not come up");
        }
    }
    kprintln!("boot: {} CPU(s) online", cpu::online());
}

/// A secondary CPU's first Rust code, on its own boot stack, IRQs masked:
/// it joins the scheduler and becomes an idle thread.
extern "C" fn secondary_main(_index: usize) -> ! {
    heap::enter_kernel_scope();
    irq::init_this_cpu();
    sched::join_this_cpu();
    cpu::came_online();
    sched::idle();
}

/// Seeds the random generator from `RNDR` and starts the network and its
/// TCP service; without `RNDR` neither starts (there is no weaker
/// fallback), and the kernel runs on without them.
fn start_network(info: &bootinfo::BootInfo) {
    if let Err(e) = rng::init() {
        kprintln!("rng: {e}: REFUSING to start the network (QEMU needs -cpu max)");
        return;
    }
    let slots: alloc::vec::Vec<_> = heap::as_kernel(|| info.virtio_slots().collect());
    match net::init(&slots) {
        Ok(card) => {
            irq::route_network(card.intid);
            let m = card.mac;
            kprintln!(
                "net: virtio-net at {:#x}, interrupt {}, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                card.base,
                card.intid,
                m[0],
                m[1],
                m[2],
                m[3],
                m[4],
                m[5]
            );
            if !ssh::start(info.fw_cfg) {
                net::echo::start();
            }
        }
        Err(e) => kprintln!("net: not started: {e}"),
    }
}

/// Runs the root shell on the serial console, starting a new one whenever
/// it exits.
#[cfg(not(feature = "ktest"))]
fn console_sessions(params: cmdline::Params) {
    // A kernel thread is never signalled, so this only returns when up.
    let _ = net::wait_up();
    loop {
        banner(params);
        let spawn = |operator| proc::Spawn {
            name: "sh".into(),
            parent: None,
            root_session: true,
            session_max: params.session_max,
            pids_max: params.pids_max,
            operator,
            foreground: None,
            notify: None,
        };
        // If the sessions' memory is exhausted (files of ended sessions,
        // say), the console's session starts in the operator's reserve, so
        // the operator can always log in and clean up.
        // An injected failure (failslab) is not exhaustion: try again
        // before falling back, and fall back only if the sessions' share
        // is really (nearly) used up.
        let mut started = proc::spawn(spawn(false), console_shell());
        for _ in 0..3 {
            if started.is_ok() {
                break;
            }
            let _ = sched::sleep_until(time::ticks() + 1);
            started = proc::spawn(spawn(false), console_shell());
        }
        let started = started.or_else(|e| {
            if heap::users_headroom() > 256 << 10 {
                return Err(e);
            }
            kprintln!(
                "console: cannot start a session ({e}); starting it in the operator's reserve"
            );
            proc::spawn(spawn(true), console_shell())
        });
        match started {
            Ok(shell) => {
                proc::wait_exit(&shell);
                if let proc::ProcState::Exited(status) = shell.state() {
                    kprintln!("session {} ended: sh {status}", shell.pid);
                }
            }
            Err(e) => {
                kprintln!("cannot start the shell: {e}");
                let _ = sched::sleep_until(time::ticks() + time::TICK_HZ);
            }
        }
    }
}

/// The console session's shell, reading from the serial console.
#[cfg(not(feature = "ktest"))]
fn console_shell() -> proc::Body {
    alloc::boxed::Box::new(|me| {
        let console: alloc::sync::Arc<dyn tty::Terminal> =
            alloc::sync::Arc::new(console::ConsoleTerminal);
        shell::run(me, &console)
    })
}

#[cfg(not(feature = "ktest"))]
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
