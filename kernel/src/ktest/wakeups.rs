//! Wake-ups across CPUs: none is lost, whether it comes through a wait
//! queue (threads passing a turn back and forth) or as a signal to a
//! thread that is about to block (a kill, sent at every point of its
//! wait). A lost wake-up leaves a thread blocked for good: each case waits
//! a bounded time, then kills what is left and fails.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};

use super::Test;
use crate::sched::{self, Signal, Slots, Stop, Thread, WaitQueue};
use crate::{ensure, heap, time};

pub const TESTS: &[Test] = crate::tests![
    a_turn_passed_back_and_forth,
    kills_reach_threads_about_to_block
];

/// Round trips of the turn.
const ROUNDS: u32 = 3000;
/// Threads killed, each at a different moment of its wait.
const KILLS: u32 = 200;

fn kernel_scope() -> quota::Scope {
    quota::Scope {
        account: heap::kernel_account().id(),
        fallible: false,
    }
}

/// Sleeps a tick at a time until `done`, for at most `ticks`.
fn wait_for(ticks: u64, done: impl Fn() -> bool) -> bool {
    let deadline = time::ticks().saturating_add(ticks);
    while !done() && time::ticks() < deadline {
        let _ = sched::sleep_until(time::ticks().saturating_add(1));
    }
    done()
}

/// Two threads, each waiting on its own queue for its turn, then passing
/// it to the other and waking it.
struct Turn {
    whose: AtomicU32,
    queues: [WaitQueue; 2],
    finished: [AtomicBool; 2],
    stopped: AtomicBool,
}

fn take_turns(turn: &Turn, me: usize) {
    let other = 1 - me;
    let me_u32 = u32::try_from(me).unwrap_or(0);
    for _ in 0..ROUNDS {
        if turn.queues[me]
            .wait_until(|| turn.whose.load(SeqCst) == me_u32)
            .is_err()
        {
            turn.stopped.store(true, SeqCst);
            return;
        }
        turn.whose.store(1 - me_u32, SeqCst);
        turn.queues[other].wake_all();
    }
    turn.finished[me].store(true, SeqCst);
}

fn spawn(
    name: &'static str,
    f: impl FnOnce(&Thread) + Send + 'static,
) -> Result<Arc<Thread>, String> {
    let thread = sched::create(name, 16 << 10, kernel_scope(), Slots::Ordinary, None, f)
        .map_err(|e| alloc::format!("create: {e:?}"))?;
    sched::start(&thread);
    Ok(thread)
}

/// Waits until the scheduler let go of every thread (they exited).
fn join(threads: Vec<Arc<Thread>>) {
    while threads.iter().any(|t| Arc::strong_count(t) > 1) {
        let _ = sched::sleep_until(time::ticks().saturating_add(1));
    }
    drop(threads);
}

fn a_turn_passed_back_and_forth() -> Result<(), String> {
    let turn = Arc::new(Turn {
        whose: AtomicU32::new(0),
        queues: [WaitQueue::new(), WaitQueue::new()],
        finished: [AtomicBool::new(false), AtomicBool::new(false)],
        stopped: AtomicBool::new(false),
    });
    let mut threads = Vec::new();
    for me in 0..2 {
        let turn = turn.clone();
        threads.push(spawn("turn", move |_| take_turns(&turn, me))?);
    }
    let done = wait_for(30 * time::TICK_HZ, || {
        turn.finished.iter().all(|f| f.load(SeqCst))
    });
    if !done {
        for t in &threads {
            t.signal(Signal::Kill);
        }
    }
    join(threads);
    ensure!(
        done,
        "a wake-up was lost: the turn is {}'s, and both wait ({:?} finished)",
        turn.whose.load(SeqCst),
        turn.finished
    );
    ensure!(!turn.stopped.load(SeqCst), "a thread was told to stop");
    Ok(())
}

fn kills_reach_threads_about_to_block() -> Result<(), String> {
    let never = Arc::new(WaitQueue::new());
    for i in 0..KILLS {
        let ended = Arc::new(AtomicU32::new(0));
        let (queue, e) = (never.clone(), ended.clone());
        let thread = spawn("killed", move |_| {
            let why = queue.wait_until(|| false);
            e.store(if why == Err(Stop::Killed) { 1 } else { 2 }, SeqCst);
        })?;
        // Kill it at a different point each time: before it runs, while
        // it gets ready to wait, or once it is blocked.
        for _ in 0..(i % 20) * 50 {
            core::hint::spin_loop();
        }
        thread.signal(Signal::Kill);
        let ok = wait_for(2 * time::TICK_HZ, || ended.load(SeqCst) != 0);
        if !ok {
            // Wake it so that it can go, then report.
            never.wake_all();
        }
        join(alloc::vec![thread]);
        ensure!(
            ok,
            "kill {i}: the kill did not reach a thread about to block"
        );
        ensure!(
            ended.load(SeqCst) == 1,
            "kill {i}: its wait ended otherwise"
        );
    }
    Ok(())
}
