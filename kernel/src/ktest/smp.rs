//! Accounts under real parallelism: threads (on every CPU online, when
//! there are several) hammer one account through the real global
//! allocator, near its limit.
//!
//! What it checks, with the table's own counters rather than by sampling:
//! the account's `peak` never passed its `max`, refusals happened and were
//! all counted (`events.max`), nothing was forced, and at the end the
//! account holds 0 bytes in 0 blocks and the heap's used bytes are exactly
//! at the baseline taken before. With more than one CPU online, the
//! threads must have been seen on more than one of them. On one CPU the
//! same code runs, interleaved by the tick.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use kcore::bench::CpuSet;
use quota::{Limit, Scope};

use super::Test;
use crate::heap::{self, ACCOUNTS};
use crate::sched::{self, Slots, Thread};
use crate::{ensure, time};

pub const TESTS: &[Test] = crate::tests![
    two_cpus_hammer_one_account,
    the_reschedule_sgi_keeps_its_priority
];

/// The account's limit: a few of the largest blocks, so that the threads
/// together keep running into it.
const MAX_BYTES: usize = 4 << 10;
/// Blocks each thread may hold at once.
const HELD: usize = 16;
/// Largest block, in bytes (the smallest is 1).
const LARGEST: usize = 1024;
/// How long the threads hammer, in milliseconds.
const RUN_MS: u64 = 600;

/// What one hammering thread reports.
#[derive(Default)]
struct Tally {
    /// Allocations made.
    allocated: AtomicU64,
    /// Allocations refused.
    refused: AtomicU64,
    /// CPUs it was seen on.
    cpus: AtomicU32,
    /// Its safe point told it to stop before the time was up.
    stopped: AtomicBool,
}

fn two_cpus_hammer_one_account() -> Result<(), String> {
    let baseline = heap::snapshot().used;
    let account = heap::new_user_account(MAX_BYTES).map_err(|e| alloc::format!("create: {e:?}"))?;
    let id = account.id();
    let threads = crate::cpu::online().max(2);
    let tallies: Arc<Vec<Tally>> = Arc::new((0..threads).map(|_| Tally::default()).collect());
    let scope = Scope {
        account: id,
        fallible: true,
    };
    let end = time::millis_since_power_on().saturating_add(RUN_MS);
    let mut workers = Vec::with_capacity(threads);
    for i in 0..threads {
        let tallies = tallies.clone();
        let thread = sched::create(
            "hammer",
            16 << 10,
            scope,
            Slots::Ordinary,
            None,
            move |_| {
                hammer(seed(i), end, &tallies[i]);
            },
        )
        .map_err(|e| alloc::format!("create: {e:?}"))?;
        workers.push(thread);
    }
    for thread in &workers {
        sched::start(thread);
    }
    join(workers);
    ensure!(
        !tallies.iter().any(|t| t.stopped.load(Relaxed)),
        "a thread was told to stop"
    );

    let snap = ACCOUNTS.snapshot(id).ok_or("the account vanished")?;
    let allocated: u64 = tallies.iter().map(|t| t.allocated.load(Relaxed)).sum();
    let refused: u64 = tallies.iter().map(|t| t.refused.load(Relaxed)).sum();
    let cpus = tallies.iter().fold(CpuSet::default(), |s, t| {
        s.union(CpuSet(t.cpus.load(Relaxed)))
    });
    ensure!(
        snap.current == 0 && snap.blocks == 0,
        "{} bytes in {} blocks left: {snap:?}",
        snap.current,
        snap.blocks
    );
    ensure!(
        snap.max == Limit::Bytes(MAX_BYTES) && snap.peak <= MAX_BYTES,
        "peak {} passed max {MAX_BYTES}: {snap:?}",
        snap.peak
    );
    ensure!(
        snap.peak > MAX_BYTES / 2,
        "peak {} never came near max {MAX_BYTES}: not hammered",
        snap.peak
    );
    ensure!(
        refused > 0 && snap.events.max >= refused,
        "refusals: {refused} seen, {} counted ({allocated} allocations)",
        snap.events.max
    );
    ensure!(
        snap.events.forced == 0,
        "fallible charges were forced: {snap:?}"
    );
    ensure!(
        crate::cpu::online() < 2 || cpus.len() >= 2,
        "{} CPUs online but the threads ran on CPU(s) {cpus} only",
        crate::cpu::online()
    );
    drop(tallies);
    drop(account);
    ensure!(
        ACCOUNTS.snapshot(id).is_none(),
        "the account was not released"
    );
    let used = settled_used(baseline);
    ensure!(used == baseline, "heap used {used}, was {baseline}");
    Ok(())
}

/// A per-thread seed for the block sizes and the slots.
fn seed(i: usize) -> u64 {
    0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(u64::try_from(i).unwrap_or(0).wrapping_add(1))
}

/// Allocates and frees blocks of 1 to [`LARGEST`] bytes until `end`
/// (milliseconds since power-on), holding up to [`HELD`] at once: each
/// step picks a slot and frees what it holds, or fills it if empty, so
/// the account's usage climbs to its limit and falls back.
fn hammer(mut rng: u64, end: u64, tally: &Tally) {
    let mut held: [Vec<u8>; HELD] = Default::default();
    let mut cpus = CpuSet::default();
    let mut steps = 0u64;
    loop {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let slot = &mut held[usize::try_from(rng % HELD as u64).unwrap_or(0)];
        if slot.capacity() > 0 {
            *slot = Vec::new();
        } else {
            let bytes = usize::try_from(rng >> 32).unwrap_or(0) % LARGEST + 1;
            if slot.try_reserve_exact(bytes).is_ok() {
                slot.push(0xa5);
                tally.allocated.fetch_add(1, Relaxed);
            } else {
                tally.refused.fetch_add(1, Relaxed);
            }
        }
        steps = steps.wrapping_add(1);
        if steps.is_multiple_of(64) {
            cpus = cpus.with(crate::arch::cpu::index());
            tally.cpus.store(cpus.0, Relaxed);
            if sched::check_current().is_err() {
                tally.stopped.store(true, Relaxed);
                break;
            }
            if time::millis_since_power_on() >= end {
                break;
            }
        }
    }
}

/// Waits until every thread has exited and the scheduler let go of it,
/// then drops them (their stacks are freed here).
fn join(threads: Vec<Arc<Thread>>) {
    while threads.iter().any(|t| Arc::strong_count(t) > 1) {
        let _ = sched::sleep_until(time::ticks().saturating_add(1));
    }
    drop(threads);
}

/// The heap's used bytes once they read `baseline`, or after half a second
/// of ticks (another kernel thread may be in the middle of something).
fn settled_used(baseline: usize) -> usize {
    let deadline = time::ticks().saturating_add(time::TICK_HZ / 2);
    loop {
        let used = heap::snapshot().used;
        if used == baseline || time::ticks() >= deadline {
            return used;
        }
        let _ = sched::sleep_until(time::ticks().saturating_add(1));
    }
}

/// Enabling an interrupt sets its priority alone: the reschedule SGI keeps
/// the priority it was given when the stop SGI, which shares its 32-bit
/// priority register, was enabled after it (on every CPU: SGIs are banked,
/// and this reads the bank of the CPU it runs on).
fn the_reschedule_sgi_keeps_its_priority() -> Result<(), String> {
    let got = crate::arch::gic::priority(sched::RESCHED_SGI);
    ensure!(
        got == Some(crate::arch::gic::PRIORITY),
        "reschedule SGI priority {got:?}, enabled at {:#x}",
        crate::arch::gic::PRIORITY
    );
    Ok(())
}
