//! Soaks: many cycles of greedy commands and a mixed workload with
//! injected allocation failures, after which every account and the heap
//! must be exactly at their baseline.
//!
//! `cargo test` runs short versions. `scripts/soak.sh` runs the long ones
//! (10,000 cycles; 10 minutes), which are `#[ignore]`d here and sized by
//! `SOAK_CYCLES` and `SOAK_SECONDS`.

use std::time::{Duration, Instant};

use system_tests::{BANNER, BASELINE_KEYS, Guest, PROMPT, assert_same, field};

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A guest deadline for a soak of about `seconds`, with room to spare.
fn long_enough(seconds: u64) -> Duration {
    Duration::from_secs(seconds * 2).max(system_tests::GUEST_DEADLINE)
}

/// Starts a fresh console session (the old one exits, killing its jobs)
/// and reads `/proc/meminfo` from it.
fn fresh_session_meminfo(g: &mut Guest) -> String {
    g.send(b"exit\r");
    g.expect(BANNER);
    g.expect(PROMPT);
    g.sync();
    g.run("sleep 0.3");
    meminfo(g)
}

/// Removes the soak's files, again while an injected failure refuses it.
fn remove_soak_files(g: &mut Guest) {
    for _ in 0..20 {
        g.run("rm /tmp/soak_a /tmp/soak_b");
        g.sync();
        let ls = g.run("ls /tmp");
        g.sync();
        if !ls.contains("soak_") && !ls.contains("cannot") && !ls.contains("killed") {
            return;
        }
    }
    panic!("the soak's files could not be removed 20 times running")
}

/// `/proc/meminfo`, read again while an injected failure refuses it.
fn meminfo(g: &mut Guest) -> String {
    for _ in 0..20 {
        let out = g.run("cat /proc/meminfo");
        g.sync();
        if out.contains("HeapUsed") {
            return out;
        }
    }
    panic!("/proc/meminfo could not be read 20 times running")
}

fn hog_cycles(cycles: u64) {
    let mut g = Guest::boot_for("session_max=4M", long_enough(cycles / 20));
    let before = fresh_session_meminfo(&mut g);
    let kinds = [
        "hog 8M",
        "hog 8M --infallible",
        "hog 16M --infallible --step 1M",
        "hog 1M",
    ];
    let started = Instant::now();
    for i in 0..cycles {
        let line = kinds[usize::try_from(i).unwrap_or(0) % kinds.len()];
        let out = g.run(line);
        assert!(!out.contains("KERNEL"), "cycle {i}: {line}:\n{out}");
    }
    eprintln!("{cycles} hog cycles in {:?}", started.elapsed());
    let after = fresh_session_meminfo(&mut g);
    assert_same(&before, &after, BASELINE_KEYS);
    assert_eq!(field(&after, "AccountingErrors"), 0);
}

#[test]
fn hog_cycles_leave_nothing_behind() {
    hog_cycles(env_or("SOAK_SHORT_CYCLES", 40));
}

#[test]
#[ignore = "long: scripts/soak.sh"]
fn hog_cycles_soak() {
    hog_cycles(env_or("SOAK_CYCLES", 10_000));
}

fn mixed(seconds: u64) {
    // 1% of the sessions' charges fail.
    let mut g = Guest::boot_for(
        "session_max=8M failslab=random:10000:7",
        long_enough(seconds),
    );
    let before = fresh_session_meminfo(&mut g);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut rounds = 0u64;
    // Each step is followed by a sync: an injected failure may end the
    // shell at any moment, and then the next session's prompt must not be
    // mistaken for the answer to a later line.
    let retried = std::cell::Cell::new(0u32);
    let step = |g: &mut Guest, line: &str| -> String {
        let out = g.run(line);
        retried.set(retried.get() + g.sync());
        out
    };
    while Instant::now() < deadline {
        step(&mut g, "hog 256K & sleep 0.2 & echo one > /tmp/soak_a");
        step(&mut g, "yes > /tmp/soak_b");
        // Ctrl-C a running job (the sync presses it). An injected failure
        // may refuse the line or the job, kill it, or end the shell.
        g.send(b"yes\r");
        let _ = g.expect_within("y\r\n", Duration::from_secs(10));
        retried.set(retried.get() + g.sync());
        step(&mut g, "sleep 30 &");
        let ps = step(&mut g, "ps");
        for pid in ps
            .lines()
            .filter(|l| l.ends_with(" sleep"))
            .filter_map(|l| l.split_whitespace().next())
        {
            step(&mut g, &format!("kill {pid}"));
        }
        step(&mut g, "rm /tmp/soak_a /tmp/soak_b");
        step(&mut g, "hog 4M --infallible");
        // The console answers (with a prompt, within the step timeout),
        // whatever was injected; an injected failure may have ended the
        // shell itself, and then a new session answers.
        let alive = step(&mut g, "echo alive");
        assert!(!alive.contains("KERNEL"), "{alive}");
        rounds += 1;
    }
    let unanswered = retried.get();
    eprintln!("{rounds} mixed rounds in {seconds} s");
    // A Ctrl-C or a line that the console never answered.
    assert_eq!(unanswered, 0, "syncs went unanswered");
    let info = meminfo(&mut g);
    assert!(
        field(&info, "FaultsInjected") > 0,
        "nothing was injected:\n{info}"
    );
    remove_soak_files(&mut g);
    let after = fresh_session_meminfo(&mut g);
    assert_same(&before, &after, BASELINE_KEYS);
}

#[test]
fn a_mixed_workload_with_injected_failures_leaves_nothing_behind() {
    mixed(env_or("SOAK_SHORT_SECONDS", 20));
}

#[test]
#[ignore = "long: scripts/soak.sh"]
fn mixed_workload_soak() {
    mixed(env_or("SOAK_SECONDS", 600));
}
