//! Memory pressure: a kernel thread that checks, every
//! [`PERIOD_TICKS`], how much of the heap budget the sessions use, keeps
//! the level ([`kcore::pressure`] decides it, with hysteresis) for
//! `/proc/meminfo` and the SSH server, and prints one console line each
//! time the level changes.
//!
//! - **Usage** is the bytes charged to session and process accounts
//!   (`SessionBytes`), the **budget** the heap's (`HeapBudget`), both from
//!   [`heap::snapshot`]; the shares are the boot parameters
//!   `pressure_warn=` and `pressure_critical=`.
//! - At `critical`, the SSH server refuses new connections with
//!   [`refusal`]'s reason; sessions already there carry on.
//! - **A check allocates nothing.** The thread, its stack and the room on
//!   its wait queue are taken once, at [`start`], and charged to the
//!   kernel; the timer tick ([`on_tick`]) wakes it, so it never sleeps on
//!   the scheduler's shared tick queue (whose room comes and goes). The
//!   heap's figures therefore read the same between two checks.

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

use kcore::pressure::{Change, Level, Levels, Refusal, Thresholds};
use quota::Limit;
use spin::Once;

use crate::sched::{self, WaitQueue};
use crate::{heap, kprintln, time};

/// Ticks between two checks: 100 ms.
pub const PERIOD_TICKS: u64 = time::TICK_HZ / 10;

/// The checking thread's stack.
const STACK: usize = 16 << 10;

static LEVELS: Once<Levels> = Once::new();
static LEVEL: AtomicU8 = AtomicU8::new(0);
/// The tick at which the thread is due (`u64::MAX`: not waiting).
static DUE: AtomicU64 = AtomicU64::new(u64::MAX);
static CHECK: WaitQueue = WaitQueue::new();

fn encode(level: Level) -> u8 {
    match level {
        Level::Normal => 0,
        Level::Warning => 1,
        Level::Critical => 2,
    }
}

fn decode(raw: u8) -> Level {
    match raw {
        0 => Level::Normal,
        1 => Level::Warning,
        _ => Level::Critical,
    }
}

/// Starts checking with `levels` (the boot parameters); says why not if it
/// cannot (the level then stays `normal`).
pub fn start(levels: Levels) {
    LEVELS.call_once(|| levels);
    let scope = quota::Scope {
        account: heap::kernel_account().id(),
        fallible: false,
    };
    CHECK.reserve(1);
    let started = heap::as_kernel(|| sched::spawn("pressure", STACK, scope, |_| run()));
    if let Err(e) = started {
        kprintln!("pressure: cannot start the check: {e:?}");
    }
}

/// The timer tick: wakes the checking thread when it is due.
pub fn on_tick() {
    let due = DUE.load(Relaxed);
    // Cleared only if unchanged: the checking thread, on another CPU, may
    // have got past its wait on its own (it reads the ticks this CPU just
    // advanced) and stored its next deadline since the load; overwriting
    // that with "never" would stop the checks for good.
    if time::ticks() >= due
        && DUE
            .compare_exchange(due, u64::MAX, Relaxed, Relaxed)
            .is_ok()
    {
        CHECK.wake_all();
    }
}

/// The level in force (as of the last check).
pub fn level() -> Level {
    decode(LEVEL.load(Relaxed))
}

/// The thresholds of the heap's budget, if it has one.
fn thresholds(budget: Limit) -> Option<Thresholds> {
    let levels = LEVELS.get().copied().unwrap_or(Levels::DEFAULT);
    budget.bytes().map(|b| levels.thresholds(b))
}

/// The thresholds in bytes (`max` without a budget) and the level, for
/// `/proc/meminfo`.
pub fn view() -> procfs::PressureView {
    let t = thresholds(heap::snapshot().table.heap_budget);
    procfs::PressureView {
        warn: t.map_or(Limit::Unlimited, |t| Limit::Bytes(t.warn())),
        critical: t.map_or(Limit::Unlimited, |t| Limit::Bytes(t.critical())),
        level: level(),
    }
}

/// Why a new session must be refused now: the level is critical.
pub fn refusal() -> Option<Refusal> {
    if level() != Level::Critical {
        return None;
    }
    let table = heap::snapshot().table;
    let t = thresholds(table.heap_budget)?;
    Some(Refusal {
        usage: table.user_bytes,
        budget: t.budget(),
        critical: t.levels().critical(),
    })
}

/// The checking thread: a check, then sleep until due again.
fn run() {
    loop {
        check();
        let next = time::ticks().saturating_add(PERIOD_TICKS);
        DUE.store(next, Relaxed);
        // A kernel thread is never signalled: this returns when due.
        let _ = CHECK.wait_until(|| time::ticks() >= next);
    }
}

/// Updates the level from the heap's figures; one line if it changed.
fn check() {
    let table = heap::snapshot().table;
    let Some(t) = thresholds(table.heap_budget) else {
        return;
    };
    let from = level();
    let to = t.next(from, table.user_bytes);
    if to != from {
        LEVEL.store(encode(to), Relaxed);
        kprintln!(
            "{}",
            Change {
                from,
                to,
                usage: table.user_bytes,
                budget: t.budget(),
            }
        );
    }
}
