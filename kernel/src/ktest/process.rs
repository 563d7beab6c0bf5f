//! Processes: kill at a safe point, and nothing left behind.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use quota::Limit;

use super::Test;
use crate::ensure;
use crate::heap::{self, ACCOUNTS};
use crate::proc::{self, Body, Errno, ExitStatus, ProcState, Spawn};

pub const TESTS: &[Test] = &[
    Test {
        name: "process::exit_releases_account_and_heap",
        run: exit_releases_account_and_heap,
    },
    Test {
        name: "process::over_limit_is_killed_at_a_safe_point",
        run: over_limit_is_killed_at_a_safe_point,
    },
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
        foreground: false,
    };
    let process = proc::spawn(spawn, body).map_err(|e| alloc::format!("spawn: {e}"))?;
    let account = process.account_id();
    proc::wait_exit(&process);
    let ProcState::Exited(status) = process.state() else {
        return Err("not exited".into());
    };
    drop(process);
    // Let the exited thread be switched away from and freed.
    let _ = crate::sched::sleep_until(crate::irq::ticks() + 2);
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
        Box::new(|process| {
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            loop {
                // Ordinary, infallible growth: forced over the limit, then
                // the next safe point reports it.
                chunks.push(alloc::vec![0u8; 16 << 10]);
                process.check_alive()?;
                if chunks.len() > 1000 {
                    return Err(Errno::Invalid);
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
