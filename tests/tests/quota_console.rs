//! The kernel's quota features, used from the serial console as a person
//! would: set limits, read procfs, run a greedy command, and check that the
//! kernel and the shell carry on and nothing is leaked.

use system_tests::{BANNER, BASELINE_KEYS, Guest, assert_same, field};

const MIB: u64 = 1 << 20;

#[test]
fn self_memquota_reports_the_commands_own_account_and_session() {
    let mut g = Guest::boot("session_max=8M");
    let out = g.run("cat /proc/self/memquota");
    let pid = field(&out, "pid");
    assert_ne!(pid, 1, "cat runs as its own process, not the shell:\n{out}");
    assert_eq!(field(&out, "sid"), 1);
    assert!(
        field(&out, "current") > 0,
        "cat's stack is charged to it:\n{out}"
    );
    assert_eq!(field(&out, "session.max"), 8 * MIB);
    assert!(field(&out, "session.current") > field(&out, "current"));
    let boot = g.uptime();
    eprintln!("boot to prompt and one command: {boot:?}");
}

#[test]
fn limits_set_by_procfs_writes_and_memquota_read_back() {
    let mut g = Guest::boot("");
    assert_eq!(g.run("echo 4M > /proc/1/memquota"), "");
    assert_eq!(field(&g.run("memquota 1"), "max"), 4 * MIB);
    assert_eq!(g.run("echo high 3M > /proc/1/memquota"), "");
    assert_eq!(field(&g.run("cat /proc/1/memquota"), "high"), 3 * MIB);
    assert_eq!(g.run("memquota set session 6M"), "");
    assert_eq!(field(&g.run("memquota 1"), "max"), 6 * MIB);
    assert_eq!(g.run("memquota high session max"), "");
    // A child process's own limit, while it runs.
    let started = g.run("sleep 30 &");
    let pid: u32 = started
        .trim()
        .trim_start_matches('[')
        .split(']')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(g.run(&format!("memquota set {pid} 512K")), "");
    let child = g.run(&format!("cat /proc/{pid}/memquota"));
    assert_eq!(field(&child, "max"), 512 * 1024);
    assert_eq!(field(&child, "session.max"), 6 * MIB);
    // The killed job is collected before the next prompt.
    assert_eq!(
        g.run(&format!("kill {pid}")),
        format!("sh: sleep[{pid}]: killed\n")
    );
}

#[test]
fn bad_procfs_writes_get_a_clear_error_and_change_nothing() {
    let mut g = Guest::boot("session_max=8M");
    let before = g.run("memquota 1");
    for (input, token) in [
        ("abc", "abc"),
        ("-1", "-1"),
        ("4Q", "4Q"),
        ("99999999999999999999", "99999999999999999999"),
        ("4M 5M", "5M"),
        ("high", "high"),
    ] {
        let out = g.run(&format!("echo {input} > /proc/1/memquota"));
        let line = out.trim();
        assert_eq!(line.lines().count(), 1, "one line for {input:?}: {out}");
        assert!(line.starts_with("echo: /proc/1/memquota: "), "{out}");
        assert!(line.contains(token), "the error names {token:?}: {out}");
    }
    let out = g.run("echo > /proc/1/memquota");
    assert!(out.contains("empty"), "{out}");
    let after = g.run("memquota 1");
    for key in ["max", "high", "session.max"] {
        assert_eq!(
            procfs::find_field(&after, key),
            procfs::find_field(&before, key),
            "{key} changed"
        );
    }
    assert!(g.run("memquota set session 12X").contains("12X"));
    assert!(g.run("memquota set nobody 1M").contains("usage"));
    assert!(
        g.run("echo 1M > /proc/999/memquota")
            .contains("no such file")
    );
    assert!(g.run("frobnicate").contains("command not found"));
    assert!(g.run("hog").contains("usage"));
    assert!(g.run("hog 1M --step 0").contains("usage"));
}

#[test]
fn hog_past_the_limit_is_refused_then_killed_and_the_shell_survives() {
    let mut g = Guest::boot("session_max=4M");
    let out = g.run("hog 8M");
    assert!(out.contains("hog: refused after"), "{out}");
    assert!(
        out.contains("of max 4194304"),
        "the session's limit is named: {out}"
    );
    assert_eq!(g.run("echo $?"), "1\n", "hog's exit status after a refusal");
    let out = g.run("hog 8M --infallible");
    assert!(out.contains("killed: out of memory"), "{out}");
    assert_eq!(g.run("echo $?"), "137\n", "killed for memory");
    assert!(out.contains("limit of 4194304 bytes"), "{out}");
    assert!(out.contains("suggested limit: "), "{out}");
    assert_eq!(g.run("echo still here"), "still here\n");
    let session = g.run("memquota 1");
    assert_eq!(field(&session, "events.oom_kill"), 1, "{session}");
    assert!(field(&session, "events.max") >= 1, "{session}");
    assert!(
        field(&session, "session.peak") <= 4 * MIB + 64 * 1024,
        "within the overdraft: {session}"
    );
}

#[test]
fn ctrl_c_interrupts_the_foreground_job() {
    let mut g = Guest::boot("");
    g.send(b"yes\r");
    g.expect("y\r\ny\r\n");
    g.send(b"\x03");
    g.expect(system_tests::PROMPT);
    assert_eq!(g.run("echo ok"), "ok\n");
}

#[test]
fn two_hundred_background_hogs_leave_accounts_and_heap_at_baseline() {
    let mut g = Guest::boot("session_max=16M");
    // Warm up once, so lazily grown kernel structures are at their size.
    g.run("hog 64K & hog 64K");
    g.run("sleep 0.2");
    let base_info = g.run("cat /proc/meminfo");
    let base_session = g.run("memquota 1");
    let mut transcript = String::new();
    for _ in 0..20 {
        transcript += &g.run(&["hog 256K &"; 10].join(" "));
    }
    // Let every job finish, then let the shell collect them.
    transcript += &g.run("sleep 2");
    transcript += &g.run("echo collected");
    // Every job really ran to completion: 200 reports from hog itself and
    // 200 from the shell collecting it.
    assert_eq!(
        transcript.matches("hog: allocated 262144 bytes").count(),
        200,
        "{transcript}"
    );
    assert_eq!(
        transcript.matches("done: hog (exit 0)").count(),
        200,
        "{transcript}"
    );
    let info = g.run("cat /proc/meminfo");
    let session = g.run("memquota 1");
    assert_same(
        &base_info,
        &info,
        &[
            "HeapUsed",
            "KernelBytes",
            "SessionBytes",
            "Allocations",
            "AccountsLive",
            "AccountsOrphaned",
            "AccountingErrors",
        ],
    );
    assert_eq!(field(&session, "current"), field(&base_session, "current"));
    assert!(field(&session, "session.peak") >= 256 * 1024);
}

#[test]
fn a_session_that_ends_releases_its_accounts() {
    let mut g = Guest::boot("session_max=8M");
    let before = g.run("cat /proc/meminfo");
    g.run("hog 1M & sleep 0.5");
    // The console shell exits; the kernel starts a new session.
    g.send(b"exit\r");
    g.expect(BANNER);
    g.expect(system_tests::PROMPT);
    let after = g.run("cat /proc/meminfo");
    assert_same(
        &before,
        &after,
        &[
            "HeapUsed",
            "KernelBytes",
            "SessionBytes",
            "AccountsLive",
            "AccountsOrphaned",
        ],
    );
    let table = g.run("memquota");
    assert!(
        !table
            .lines()
            .any(|l| l.split_whitespace().nth(3) == Some("1")),
        "session 1 is gone:\n{table}"
    );
}

/// Runs `line`, which allocates infallibly beyond the overdraft, and checks
/// it was killed for memory (the OOM report, `$?` 137) and not terminated
/// on the spot; returns its report.
fn run_killed_for_memory(g: &mut Guest, line: &str) -> String {
    let out = g.run(line);
    assert!(out.contains("killed: out of memory"), "{out}");
    assert!(!out.contains("on the spot"), "{out}");
    assert!(!out.contains("leaked"), "{out}");
    assert_eq!(g.run("echo $?"), "137\n");
    out
}

#[test]
fn an_allocation_beyond_the_overdraft_terminates_only_that_process() {
    let mut g = Guest::boot("session_max=4M");
    // No warm-up: measured, no kernel structure grows lazily on this path
    // (the first kill already comes back byte for byte), so the baseline is
    // the freshly booted kernel's.
    let base = g.run("cat /proc/meminfo");
    let out = run_killed_for_memory(&mut g, "hog 16M --infallible --step 1M");
    // The session refused the step: the report names its limit.
    assert!(
        out.contains("over the session's limit of 4194304 bytes"),
        "{out}"
    );
    assert_eq!(g.run("echo kernel fine"), "kernel fine\n");
    let after = g.run("cat /proc/meminfo");
    assert_same(&base, &after, BASELINE_KEYS);
    assert_eq!(field(&after, "AccountingErrors"), 0);
}

#[test]
fn an_unlimited_session_beyond_the_heap_unwinds_without_a_leak() {
    let mut g = Guest::boot("");
    assert_eq!(g.run("memquota set session max"), "");
    // No warm-up, as above. The hog runs into the heap floor, not a limit.
    let base = g.run("cat /proc/meminfo");
    let _ = run_killed_for_memory(&mut g, "hog 64M --infallible --step 1M");
    let after = g.run("cat /proc/meminfo");
    assert_same(&base, &after, BASELINE_KEYS);
    assert_eq!(g.run("echo kernel fine"), "kernel fine\n");
}

#[test]
fn four_sessions_beyond_the_overdraft_leave_the_heap_at_baseline() {
    let mut g = Guest::boot("session_max=4M");
    let base = g.run("cat /proc/meminfo");
    for _ in 0..4 {
        let _ = run_killed_for_memory(&mut g, "hog 16M --infallible --step 1M");
        // The console shell exits; the kernel starts a new session.
        g.send(b"exit\r");
        g.expect(BANNER);
        g.expect(system_tests::PROMPT);
    }
    let after = g.run("cat /proc/meminfo");
    assert_same(&base, &after, BASELINE_KEYS);
    // A later session still has its whole limit: 3.5M of a 4M session
    // (the shell and hog's stacks take the rest) is granted fallibly.
    let out = g.run("hog 3584K");
    assert!(out.contains("hog: allocated 3670016 bytes"), "{out}");
}

#[test]
fn lines_typed_ahead_all_run() {
    let mut g = Guest::boot("");
    g.send(b"echo one\recho two\recho three\r");
    g.expect("one\r\n");
    g.expect("two\r\n");
    g.expect("three\r\n");
    g.expect(system_tests::PROMPT);
    // More than the 1 KiB input ring, typed while a job runs: the kernel
    // keeps running and every byte arrives.
    g.send(b"sleep 0.5\r");
    let lines: Vec<String> = (0..4).map(|i| format!("{i}{}", "x".repeat(400))).collect();
    for line in &lines {
        g.send(format!("echo {line}\r").as_bytes());
    }
    for line in &lines {
        g.expect(&format!("\n{line}\r\n"));
    }
    g.expect(system_tests::PROMPT);
    // A line longer than the editor takes is refused as a whole.
    let out = g.run(&format!("echo {}", "y".repeat(1100)));
    assert!(out.contains("line too long"), "{out}");
    assert_eq!(g.run("echo after"), "after\n");
}

#[test]
fn children_that_outlive_their_shell_are_collected() {
    let mut g = Guest::boot("session_max=8M");
    let before = g.run("cat /proc/meminfo");
    // One child exits before the shell, one is still running when it does.
    g.run("sleep 0.1 &");
    g.run("sleep 0.5");
    g.run("sleep 5 &");
    g.send(b"exit\r");
    g.expect("session 1 ended");
    g.expect(system_tests::PROMPT);
    g.run("sleep 0.3");
    let ps = g.run("ps");
    assert!(!ps.contains("zombie"), "{ps}");
    assert!(
        !ps.lines().any(|l| l.ends_with(" sleep")),
        "no sleep process is left:\n{ps}"
    );
    let after = g.run("cat /proc/meminfo");
    assert_same(
        &before,
        &after,
        &["HeapUsed", "AccountsLive", "AccountsOrphaned"],
    );
}

#[test]
fn tmp_files_are_charged_to_their_session_and_credited_on_removal() {
    let mut g = Guest::boot("session_max=4M");
    let before = field(&g.run("memquota 1"), "current");
    assert_eq!(g.run("echo hello world > /tmp/a"), "");
    assert_eq!(g.run("cat /tmp/a"), "hello world\n");
    assert_eq!(g.run("ls /tmp"), "a\n");
    let with_file = field(&g.run("memquota 1"), "current");
    assert_eq!(
        with_file,
        before + 12 + 8,
        "12 bytes of data and an 8-byte header"
    );
    // Writing past the session's limit fails cleanly; the session survives.
    let out = g.run("yes > /tmp/big");
    assert!(
        out.contains(
            "/tmp/big: cannot allocate memory (over the session's limit of 4194304 bytes)"
        ),
        "{out}"
    );
    assert_eq!(g.run("echo $?"), "1\n");
    // `$?` on one line is the status of the command just before it.
    assert_eq!(g.run("true; echo $?; false; echo $?"), "0\n1\n");
    let full = g.run("memquota 1");
    assert!(
        field(&full, "current") > 1024 * 1024,
        "the file grew toward the limit:\n{full}"
    );
    assert!(field(&full, "current") <= 4 * 1024 * 1024, "{full}");
    assert_eq!(
        field(&full, "events.oom_kill"),
        0,
        "no process was killed:\n{full}"
    );
    assert_eq!(g.run("rm /tmp/big /tmp/a"), "");
    assert_eq!(field(&g.run("memquota 1"), "current"), before);
    assert!(g.run("rm /tmp/a").contains("no such file"));
    assert!(g.run("echo x > /tmp/../etc").contains("no such file"));
    assert!(g.run("rm /proc/meminfo").contains("read-only"));
}
