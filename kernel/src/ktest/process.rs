//! Processes: kill at a safe point, and nothing left behind.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use quota::Limit;

use super::Test;
use crate::ensure;
use crate::heap::{self, ACCOUNTS};
use crate::proc::{self, Body, ExitStatus, ProcState, Spawn};

pub const TESTS: &[Test] = crate::tests![
    exit_releases_account_and_heap,
    over_limit_is_killed_at_a_safe_point,
    beyond_the_overdraft_is_unwound_running_every_destructor,
    a_failure_during_an_unwind_ends_on_the_spot_and_the_next_unwinds,
    kill_stops_a_child_at_its_next_safe_point,
    another_sessions_process_cannot_be_killed,
    a_stack_overflow_ends_only_its_process,
    a_session_stops_at_its_pids_max,
];

/// Runs `body` as the leader of a new session limited to `max`, waits for
/// it, and returns its status and its account's id.
pub(super) fn run_session(
    max: Limit,
    body: Body,
) -> Result<(ExitStatus, quota::AccountId), String> {
    let spawn = Spawn {
        name: "ktest".into(),
        parent: None,
        root_session: false,
        session_max: max,
        pids_max: None,
        operator: false,
        foreground: None,
        notify: None,
    };
    let process = proc::spawn(spawn, body).map_err(|e| alloc::format!("spawn: {e}"))?;
    let account = process.account_id();
    proc::wait_exit(&process);
    let ProcState::Exited(status) = process.state() else {
        return Err("not exited".into());
    };
    drop(process);
    // Let the exited thread be switched away from and freed.
    let _ = crate::sched::sleep_until(crate::time::ticks() + 2);
    Ok((status, account))
}

/// The heap's charged bytes are back where they were.
fn same_heap(before: &quota::HeapSnapshot, after: &quota::HeapSnapshot) -> Result<(), String> {
    ensure!(
        after.used == before.used,
        "heap used {} after, {} before",
        after.used,
        before.used
    );
    Ok(())
}

fn exit_releases_account_and_heap() -> Result<(), String> {
    // Warm up: the first process grows kernel tables once.
    run_session(Limit::Unlimited, Box::new(|_| Ok(0)))?;
    let before = heap::snapshot();
    let (status, account) = run_session(
        Limit::Unlimited,
        Box::new(|_| {
            let v: Vec<u8> = Vec::with_capacity(100_000);
            drop(v);
            Ok(7)
        }),
    )?;
    ensure!(matches!(status, ExitStatus::Code(7)), "status {status}");
    ensure!(
        ACCOUNTS.snapshot(account).is_none(),
        "the session account was not released"
    );
    let after = heap::snapshot();
    same_heap(&before, &after)?;
    ensure!(
        after.table.live == before.table.live,
        "accounts {} after, {} before",
        after.table.live,
        before.table.live
    );
    Ok(())
}

fn over_limit_is_killed_at_a_safe_point() -> Result<(), String> {
    let before = heap::snapshot();
    let (status, account) = run_session(
        Limit::Bytes(1 << 20),
        Box::new(|_| {
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            loop {
                // Ordinary, infallible growth: forced over the limit, then
                // the next safe point reports it.
                chunks.push(alloc::vec![0u8; 16 << 10]);
                crate::sched::check_current()?;
                if chunks.len() > 1000 {
                    // Never stopped: the status says so.
                    return Ok(1);
                }
            }
        }),
    )?;
    let ExitStatus::OutOfMemory(report) = status else {
        return Err(alloc::format!("status {status}"));
    };
    ensure!(
        report.limit == Limit::Bytes(1 << 20),
        "limit {}",
        report.limit
    );
    ensure!(
        report.peak > 1 << 20 && report.peak <= (1 << 20) + quota::DEFAULT_OVERDRAFT,
        "peak {}",
        report.peak
    );
    ensure!(
        report.events.oom_kill == 1 && report.events.forced == 1,
        "events {:?}",
        report.events
    );
    ensure!(
        ACCOUNTS.snapshot(account).is_none(),
        "the session account was not released"
    );
    // The report itself (its copy of the name) is kernel memory: free it first.
    drop(report);
    let after = heap::snapshot();
    same_heap(&before, &after)?;
    Ok(())
}

/// Set by [`Guard`]'s drop.
static GUARD_DROPPED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// A destructor that must run when its frame is unwound.
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        GUARD_DROPPED.store(true, core::sync::atomic::Ordering::Relaxed);
    }
}

/// Holds a `Vec` in each of `depth` frames, then allocates, infallibly,
/// far beyond the session's limit and its overdraft.
#[inline(never)]
fn hold_then_overdraw(depth: usize) -> usize {
    let held: Vec<u8> = alloc::vec![1; 32 << 10];
    if depth == 0 {
        let huge: Vec<u8> = alloc::vec![2; 4 << 20];
        return huge.len() + held.len();
    }
    core::hint::black_box(hold_then_overdraw(depth - 1)) + held.len()
}

fn beyond_the_overdraft_is_unwound_running_every_destructor() -> Result<(), String> {
    let before = heap::snapshot();
    GUARD_DROPPED.store(false, core::sync::atomic::Ordering::Relaxed);
    let (status, account) = run_session(
        Limit::Bytes(1 << 20),
        Box::new(|_| {
            let _guard = Guard;
            let names: Vec<String> = (0..8).map(|i| alloc::format!("block {i}")).collect();
            let n = hold_then_overdraw(6);
            // Never reached: the allocation above cannot be had.
            Ok(i32::try_from(n + names.len()).unwrap_or(1))
        }),
    )?;
    ensure!(
        GUARD_DROPPED.load(core::sync::atomic::Ordering::Relaxed),
        "the guard's destructor did not run"
    );
    let ExitStatus::OutOfMemory(report) = status else {
        return Err(alloc::format!("status {status}"));
    };
    ensure!(report.events.oom_kill == 1, "events {:?}", report.events);
    ensure!(
        ACCOUNTS.snapshot(account).is_none(),
        "the session account was not released"
    );
    drop(report);
    let after = heap::snapshot();
    same_heap(&before, &after)?;
    ensure!(
        after.allocations == before.allocations,
        "allocations {} after, {} before",
        after.allocations,
        before.allocations
    );
    Ok(())
}

/// A destructor that itself allocates beyond the overdraft.
struct Greedy;

impl Drop for Greedy {
    fn drop(&mut self) {
        let more: Vec<u8> = alloc::vec![3; 4 << 20];
        core::hint::black_box(more);
    }
}

fn a_failure_during_an_unwind_ends_on_the_spot_and_the_next_unwinds() -> Result<(), String> {
    // The destructor run by the unwind fails again: that process cannot be
    // unwound twice and is ended on the spot (what it held stays charged).
    let (status, _) = run_session(
        Limit::Bytes(1 << 20),
        Box::new(|_| {
            let _greedy = Greedy;
            Ok(i32::try_from(hold_then_overdraw(2)).unwrap_or(1))
        }),
    )?;
    ensure!(
        matches!(status, ExitStatus::Terminated { .. }),
        "status {status}"
    );
    // The abandoned unwind does not stop the next one.
    let before = heap::snapshot();
    GUARD_DROPPED.store(false, core::sync::atomic::Ordering::Relaxed);
    let (status, _) = run_session(
        Limit::Bytes(1 << 20),
        Box::new(|_| {
            let _guard = Guard;
            Ok(i32::try_from(hold_then_overdraw(2)).unwrap_or(1))
        }),
    )?;
    ensure!(
        matches!(status, ExitStatus::OutOfMemory(_)),
        "status {status}"
    );
    ensure!(
        GUARD_DROPPED.load(core::sync::atomic::Ordering::Relaxed),
        "the guard's destructor did not run"
    );
    drop(status);
    same_heap(&before, &heap::snapshot())?;
    Ok(())
}

/// Runs `check` inside a new session's leader and returns what it found.
pub(super) fn in_session(
    max: Limit,
    check: fn(&alloc::sync::Arc<crate::proc::Process>) -> Result<(), String>,
) -> Result<(), String> {
    use crate::sync::IrqMutex;
    use alloc::sync::Arc;
    let result: Arc<IrqMutex<Option<Result<(), String>>>> = Arc::new(IrqMutex::new(None));
    let slot = result.clone();
    let body = Box::new(move |process: &Arc<crate::proc::Process>| {
        let outcome = check(process);
        heap::as_kernel(|| *slot.lock() = Some(outcome));
        Ok(0)
    });
    run_session(max, body)?;
    let outcome = result.lock().take();
    outcome.unwrap_or_else(|| Err("the process did not report".into()))
}

fn sleeper(seconds: u64) -> Body {
    Box::new(move |_| {
        crate::sched::sleep_until(crate::time::ticks() + seconds * crate::time::TICK_HZ)?;
        Ok(0)
    })
}

fn kill_and_wait(me: &alloc::sync::Arc<crate::proc::Process>) -> Result<(), String> {
    let spawn = Spawn {
        name: "sleeper".into(),
        parent: Some(me.clone()),
        root_session: false,
        session_max: Limit::Unlimited,
        pids_max: None,
        operator: false,
        foreground: None,
        notify: None,
    };
    let child = proc::spawn(spawn, sleeper(60)).map_err(|e| alloc::format!("spawn: {e}"))?;
    let pid = child.pid;
    ensure!(proc::try_wait(me, pid).is_none(), "a sleeping child exited");
    ensure!(
        proc::kill(me, 999_999) == Err(proc::ProcError::NotFound),
        "killed a pid that does not exist"
    );
    proc::kill(me, pid).map_err(|e| alloc::format!("kill: {e}"))?;
    let status = proc::wait(child).map_err(|e| alloc::format!("wait: {e}"))?;
    ensure!(
        matches!(status, ExitStatus::Killed) && status.code() == 137,
        "status {status} ({})",
        status.code()
    );
    ensure!(proc::find(pid).is_none(), "the child was not collected");
    Ok(())
}

fn kill_stops_a_child_at_its_next_safe_point() -> Result<(), String> {
    in_session(Limit::Unlimited, kill_and_wait)
}

/// A new non-root session whose leader sleeps `seconds`, then exits 0.
pub(super) fn start_sleeper_session(
    seconds: u64,
) -> Result<alloc::sync::Arc<crate::proc::Process>, String> {
    let spawn = Spawn {
        name: "other".into(),
        parent: None,
        root_session: false,
        session_max: Limit::Unlimited,
        pids_max: None,
        operator: false,
        foreground: None,
        notify: None,
    };
    proc::spawn(spawn, sleeper(seconds)).map_err(|e| alloc::format!("spawn: {e}"))
}

fn another_sessions_process_cannot_be_killed() -> Result<(), String> {
    static OTHER: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    let other = start_sleeper_session(1)?;
    OTHER.store(other.pid, core::sync::atomic::Ordering::SeqCst);
    let outcome = in_session(Limit::Unlimited, |me| {
        let pid = OTHER.load(core::sync::atomic::Ordering::SeqCst);
        let refused = proc::kill(me, pid);
        ensure!(
            refused == Err(proc::ProcError::Permission),
            "kill of another session's process: {refused:?}"
        );
        Ok(())
    });
    proc::wait_exit(&other);
    let ProcState::Exited(status) = other.state() else {
        return Err("not exited".into());
    };
    ensure!(
        matches!(status, ExitStatus::Code(0)),
        "the other session ended {status}"
    );
    outcome
}

/// Recurses `depth` frames of 512 bytes each.
fn recurse(depth: u32) -> u32 {
    let frame = core::hint::black_box([depth.to_le_bytes()[0]; 512]);
    if depth == 0 {
        return u32::from(frame[0]);
    }
    recurse(depth - 1).wrapping_add(u32::from(core::hint::black_box(frame)[511]))
}

fn a_stack_overflow_ends_only_its_process() -> Result<(), String> {
    // 300 frames of 512 bytes need 150 KiB: far past a 64 KiB stack.
    let (status, _) = run_session(
        Limit::Unlimited,
        Box::new(|_| Ok(i32::try_from(recurse(300)).unwrap_or(0))),
    )?;
    ensure!(
        matches!(status, ExitStatus::Terminated { .. }),
        "status after an overflow: {status}"
    );
    // The kernel carries on: the next process runs normally.
    let (status, _) = run_session(
        Limit::Unlimited,
        Box::new(|_| Ok(i32::try_from(recurse(20) % 7).unwrap_or(0) + 100)),
    )?;
    ensure!(
        matches!(status, ExitStatus::Code(c) if c >= 100),
        "status after: {status}"
    );
    Ok(())
}

fn child(me: &alloc::sync::Arc<crate::proc::Process>, operator: bool) -> Spawn {
    Spawn {
        name: "child".into(),
        parent: Some(me.clone()),
        root_session: false,
        session_max: Limit::Unlimited,
        pids_max: None,
        operator,
        foreground: None,
        notify: None,
    }
}

fn pids(me: &alloc::sync::Arc<crate::proc::Process>) -> Result<(), String> {
    let session = &me.session;
    let two = procfs::PidsMax::new(2).ok_or("2 is a count")?;
    session.set_pids_max(two);
    ensure!(session.pids_max() == two, "pids.max {}", session.pids_max());
    ensure!(
        session.pids_current() == 1,
        "the leader alone: {}",
        session.pids_current()
    );
    let first = proc::spawn(child(me, false), sleeper(60)).map_err(|e| alloc::format!("{e}"))?;
    ensure!(
        session.pids_current() == 2,
        "pids.current {}",
        session.pids_current()
    );
    let refused = proc::spawn(child(me, false), sleeper(60)).map(|p| p.pid);
    ensure!(
        refused == Err(proc::ProcError::PidsMax { max: two }),
        "a third process: {refused:?}"
    );
    // Not root: asking for the operator's reserve changes nothing.
    let refused = proc::spawn(child(me, true), sleeper(60)).map(|p| p.pid);
    ensure!(
        refused.is_err(),
        "a non-root session used the operator's reserve"
    );
    proc::kill(me, first.pid).map_err(|e| alloc::format!("kill: {e}"))?;
    proc::wait(first).map_err(|e| alloc::format!("wait: {e}"))?;
    ensure!(
        session.pids_current() == 1,
        "after the child: {}",
        session.pids_current()
    );
    session.set_pids_max(procfs::PidsMax::UNLIMITED);
    Ok(())
}

fn a_session_stops_at_its_pids_max() -> Result<(), String> {
    in_session(Limit::Unlimited, pids)
}
