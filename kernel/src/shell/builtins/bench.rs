//! `bench alloc [--threads N] [--shared|--separate] [--seconds S]`:
//! alloc+free pairs per second through the real global allocator, measured
//! inside the guest.
//!
//! Contract:
//! - Arguments are parsed (`kcore::bench`) before anything is made; a bad
//!   one is reported with the usage line and changes nothing.
//! - N kernel threads each allocate and free a [`BLOCK_BYTES`]-byte block
//!   (`try_reserve_exact`, in a fallible scope: a refusal stops that
//!   worker and is reported, never forced nor killed for) until the run's
//!   time is up. They charge accounts made for the run under the calling
//!   process's account (and tagged like it, so its session sees them):
//!   one for all (`--shared`, the default) or one each (`--separate`).
//!   Their stacks are charged to the process, like anything it allocates.
//! - The command sleeps meanwhile (a safe point): Ctrl-C or `kill` stops
//!   the run. However it ends, the workers are told to stop, are joined
//!   (their stacks freed) and the run's accounts dropped before the
//!   command returns, so the caller's accounts read as before.
//! - Workers never wait on each other: each checks the run's stop flag and
//!   its own safe point ([`sched::check_current`]) every [`BATCH`] pairs,
//!   and on one CPU the tick preempts them in turn.
//! - It prints pairs per second in total and per thread, the CPUs online
//!   ([`crate::cpu::online`]) and the CPUs each thread was seen on
//!   (sampled every [`SAMPLE_EVERY`] pairs).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hint::black_box;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use kcore::bench::{Accounts, CpuSet, Options};
use quota::{Account, AccountFlags, NewAccount, Scope};

use crate::heap::ACCOUNTS;
use crate::sched::{self, Slots, Thread};
use crate::shell::ctx::{Abort, Ctx};
use crate::time::{self, TICK_HZ};
use crate::{outln, proc};

/// Bytes of each block allocated and freed.
pub const BLOCK_BYTES: usize = 64;
/// Pairs between two looks at the stop flag and the safe point.
pub const BATCH: u64 = 4096;
/// Pairs between two samples of the CPU a worker runs on (divides
/// [`BATCH`]).
pub const SAMPLE_EVERY: u64 = 256;
/// Each worker's stack.
const STACK_BYTES: usize = 16 << 10;

pub(super) fn bench(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    let words: Vec<&str> = ctx
        .args
        .iter()
        .skip(1)
        .map(alloc::string::String::as_str)
        .collect();
    let options = match kcore::bench::parse(&words) {
        Ok(options) => options,
        Err(e) => {
            ctx.error(format_args!("{e}"));
            return Ok(super::usage(ctx));
        }
    };
    drop(words);
    let mut run = match Run::start(ctx.process, options) {
        Ok(run) => run,
        Err(why) => {
            ctx.error(format_args!("cannot start the workers: {why}"));
            return Ok(1);
        }
    };
    let ticks = (options.millis.saturating_mul(TICK_HZ) / 1000).max(1);
    let slept = ctx.sleep(ticks);
    let report = run.stop();
    drop(run);
    slept?;
    print(ctx, options, &report)
}

fn print(ctx: &mut Ctx<'_>, options: Options, report: &Report) -> Result<i32, Abort> {
    let millis = report.millis.max(1);
    outln!(
        ctx,
        "bench alloc: {} thread(s), {} account(s), {BLOCK_BYTES}-byte blocks, {}.{:03} s, {} CPU(s) online",
        options.threads,
        options.accounts.describe(),
        millis / 1000,
        millis % 1000,
        crate::cpu::online()
    )?;
    let mut all = CpuSet::default();
    for (i, worker) in report.workers.iter().enumerate() {
        all = all.union(worker.cpus);
        outln!(
            ctx,
            "  thread {i}: {} pairs/s on CPU(s) {}",
            kcore::bench::per_second(worker.pairs, millis),
            worker.cpus
        )?;
    }
    let pairs = report.workers.iter().map(|w| w.pairs).sum();
    outln!(
        ctx,
        "  total: {} pairs/s on CPU(s) {all}",
        kcore::bench::per_second(pairs, millis)
    )?;
    let refused = report.workers.iter().filter(|w| w.refused).count();
    if refused > 0 {
        ctx.error(format_args!(
            "{refused} worker(s) stopped early: a {BLOCK_BYTES}-byte block was refused (the account or heap is full)"
        ));
        return Ok(1);
    }
    Ok(0)
}

/// What one worker publishes; aligned to its own cache line so the
/// workers' counters do not share one.
#[repr(align(64))]
#[derive(Default)]
struct Stats {
    pairs: AtomicU64,
    cpus: AtomicU32,
    refused: AtomicBool,
}

/// What the run's threads share.
struct Shared {
    stop: AtomicBool,
    workers: Vec<Stats>,
}

/// One worker's figures at the end.
struct WorkerReport {
    pairs: u64,
    cpus: CpuSet,
    refused: bool,
}

/// The run's figures: `millis` from the start to the stop.
struct Report {
    millis: u64,
    workers: Vec<WorkerReport>,
}

/// A running benchmark. Dropping it stops and joins the workers, then
/// drops the accounts (in field order: threads before accounts).
struct Run {
    shared: Arc<Shared>,
    threads: Vec<Arc<Thread>>,
    accounts: Vec<Account<'static>>,
    started_ms: u64,
}

impl Run {
    /// Makes the accounts and starts the workers.
    fn start(process: &Arc<proc::Process>, options: Options) -> Result<Self, &'static str> {
        let tag = process.account_snapshot().map_or(0, |a| a.tag);
        let new = NewAccount {
            flags: AccountFlags::empty(),
            tag,
        };
        let account_count = match options.accounts {
            Accounts::Shared => 1,
            Accounts::Separate => options.threads,
        };
        let mut accounts = Vec::with_capacity(account_count);
        for _ in 0..account_count {
            let account = ACCOUNTS
                .create(Some(process.account()), new)
                .map_err(|_| "the account table is full")?;
            accounts.push(account);
        }
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            workers: (0..options.threads).map(|_| Stats::default()).collect(),
        });
        let mut run = Run {
            shared,
            threads: Vec::with_capacity(options.threads),
            accounts,
            started_ms: 0,
        };
        let mut created = Vec::with_capacity(options.threads);
        let mut failed = None;
        for i in 0..options.threads {
            let account = &run.accounts[i % run.accounts.len()];
            let scope = Scope {
                account: account.id(),
                fallible: true,
            };
            let shared = run.shared.clone();
            let made = sched::create("bench", STACK_BYTES, scope, Slots::Ordinary, None, {
                move |_| work(&shared.workers[i], &shared.stop)
            });
            match made {
                Ok(thread) => created.push(thread),
                Err(sched::SpawnError::TooMany) => {
                    failed = Some("too many threads are running");
                    break;
                }
                Err(sched::SpawnError::NoMemory(_)) => {
                    failed = Some("no memory for their stacks");
                    break;
                }
            }
        }
        if failed.is_some() {
            // Every created thread must be started; these see the stop
            // flag at their first batch and end.
            run.shared.stop.store(true, Relaxed);
        }
        run.started_ms = time::millis_since_power_on();
        for thread in created {
            sched::start(&thread);
            run.threads.push(thread);
        }
        match failed {
            Some(why) => Err(why),
            None => Ok(run),
        }
    }

    /// Stops the workers, joins them and returns the figures.
    fn stop(&mut self) -> Report {
        self.shared.stop.store(true, Relaxed);
        let millis = time::millis_since_power_on().saturating_sub(self.started_ms);
        join(&mut self.threads);
        let workers = self
            .shared
            .workers
            .iter()
            .map(|s| WorkerReport {
                pairs: s.pairs.load(Relaxed),
                cpus: CpuSet(s.cpus.load(Relaxed)),
                refused: s.refused.load(Relaxed),
            })
            .collect();
        Report { millis, workers }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        join(&mut self.threads);
    }
}

/// Waits until every thread in `threads` has exited and the scheduler has
/// let go of it (so its stack is freed with our reference), then drops
/// them. Sleeps a tick between looks; once the caller was told to stop
/// (sleeping then returns at once) it yields instead, which on one CPU
/// still lets the workers run to their next stop check.
fn join(threads: &mut Vec<Arc<Thread>>) {
    while threads.iter().any(|t| Arc::strong_count(t) > 1) {
        if sched::sleep_until(time::ticks().saturating_add(1)).is_err() {
            sched::yield_now();
        }
    }
    threads.clear();
}

/// One worker: pairs until told to stop, its safe point says stop, or a
/// block is refused. Its count and CPUs are published every
/// [`SAMPLE_EVERY`] pairs, so the figures are that fine.
fn work(stats: &Stats, stop: &AtomicBool) {
    let mut cpus = CpuSet::default();
    loop {
        for _ in 0..BATCH / SAMPLE_EVERY {
            cpus = cpus.with(crate::arch::cpu::index());
            stats.cpus.store(cpus.0, Relaxed);
            for done in 0..SAMPLE_EVERY {
                if pair().is_err() {
                    stats.pairs.fetch_add(done, Relaxed);
                    stats.refused.store(true, Relaxed);
                    return;
                }
            }
            stats.pairs.fetch_add(SAMPLE_EVERY, Relaxed);
        }
        if stop.load(Relaxed) || sched::check_current().is_err() {
            return;
        }
    }
}

/// One allocation and its free, through the global allocator.
fn pair() -> Result<(), alloc::collections::TryReserveError> {
    let mut block: Vec<u8> = Vec::new();
    block.try_reserve_exact(BLOCK_BYTES)?;
    // Keep the allocation observable, so it is not optimised away.
    black_box(&mut block);
    drop(block);
    Ok(())
}
