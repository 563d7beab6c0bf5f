//! The scheduler: threads run, sleep, and are preempted.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};

use super::Test;
use crate::{ensure, heap, sched, time};

pub const TESTS: &[Test] = crate::tests![threads_run_and_sleep, a_spinning_thread_is_preempted];

fn kernel_scope() -> quota::Scope {
    quota::Scope {
        account: heap::kernel_account().id(),
        fallible: false,
    }
}

/// Waits (sleeping) until `done` or about `ticks` pass; returns `done()`.
fn wait_for(ticks: u64, done: impl Fn() -> bool) -> bool {
    let deadline = time::ticks() + ticks;
    while !done() && time::ticks() < deadline {
        let _ = sched::sleep_until(time::ticks() + 1);
    }
    done()
}

/// Waits until the scheduler let go of every thread in `threads` (they
/// exited and their stacks were freed): on several CPUs a thread may still
/// be exiting when the test that started it has seen what it waited for,
/// and would free its stack in the middle of the next test's figures.
fn join(threads: Vec<Arc<sched::Thread>>) {
    while threads.iter().any(|t| Arc::strong_count(t) > 1) {
        let _ = sched::sleep_until(time::ticks() + 1);
    }
    drop(threads);
}

fn threads_run_and_sleep() -> Result<(), String> {
    let count = Arc::new(AtomicU32::new(0));
    let mut threads = Vec::new();
    for _ in 0..8 {
        let count = count.clone();
        let thread = sched::spawn("ktest", 16 << 10, kernel_scope(), move |_| {
            let _ = sched::sleep_until(time::ticks() + 2);
            count.fetch_add(1, SeqCst);
        })
        .map_err(|e| alloc::format!("spawn: {e:?}"))?;
        threads.push(thread);
    }
    let done = wait_for(200, || count.load(SeqCst) == 8);
    join(threads);
    ensure!(done, "only {} of 8 threads finished", count.load(SeqCst));
    Ok(())
}

fn a_spinning_thread_is_preempted() -> Result<(), String> {
    // The spinner never yields; only preemption lets the setter run.
    let flag = Arc::new(AtomicBool::new(false));
    let spun = Arc::new(AtomicBool::new(false));
    let (f, s) = (flag.clone(), spun.clone());
    let spinner = sched::spawn("spinner", 16 << 10, kernel_scope(), move |_| {
        while !f.load(SeqCst) {
            core::hint::spin_loop();
        }
        s.store(true, SeqCst);
    })
    .map_err(|e| alloc::format!("spawn: {e:?}"))?;
    let f = flag.clone();
    let setter = sched::spawn("setter", 16 << 10, kernel_scope(), move |_| {
        f.store(true, SeqCst);
    })
    .map_err(|e| alloc::format!("spawn: {e:?}"))?;
    let spun_once = wait_for(200, || spun.load(SeqCst));
    // Let the spinner go if it never saw the flag.
    flag.store(true, SeqCst);
    join(alloc::vec![spinner, setter]);
    ensure!(spun_once, "the spinner was never preempted");
    Ok(())
}
