//! What one session can do to everyone after it: each test reproduces a
//! way the machine was left damaged or the console dead, and checks it is
//! not any more.

use system_tests::{BANNER, Guest, PROMPT};

#[test]
fn typing_during_boot_does_not_kill_the_console() {
    let mut g = Guest::boot_typing("", b"echo typed early\r");
    g.expect("typed early\r\n");
    g.expect(PROMPT);
    assert_eq!(g.run("echo still answering"), "still answering\n");
}

#[test]
fn escape_sequences_never_swallow_enter() {
    let mut g = Guest::boot("");
    // An unfinished CSI, then Enter: the line runs at once, and the next
    // line is whole.
    g.send(b"echo one\x1b[12;\r");
    g.expect("one\r\n");
    g.expect(PROMPT);
    // A lone ESC, then Enter.
    g.send(b"echo two\x1b\r");
    g.expect("two\r\n");
    g.expect(PROMPT);
    assert_eq!(g.run("echo three"), "three\n");
    // Up recalls the last line; Left moves into it.
    g.send(b"\x1b[A\x1b[D\x1b[D4\r");
    g.expect("thr4ee\r\n");
    g.expect(PROMPT);
}

#[test]
fn a_kill_at_the_heap_floor_names_the_floor_not_a_limit() {
    // No session limit and no operator's reserve: only the heap's floor
    // can stop the hog.
    let mut g = Guest::boot("heap=8M floor=2M session_max=max operator_reserve=0");
    let out = g.run("hog 64M --infallible");
    assert!(out.contains("killed: out of memory"), "{out}");
    assert!(
        out.contains("the heap reached its floor (2097152 bytes kept for the kernel)"),
        "{out}"
    );
    assert!(!out.contains("suggested limit"), "{out}");
    assert_eq!(g.run("echo $?"), "137\n");
    assert_eq!(g.run("echo kernel fine"), "kernel fine\n");
}

/// `sleep 600 &` `count` times, ten to a line; returns what was printed.
fn start_sleepers(g: &mut Guest, count: usize) -> String {
    let mut out = String::new();
    for chunk in 0..count.div_ceil(10) {
        let n = (count - chunk * 10).min(10);
        out += &g.run(&vec!["sleep 600 &"; n].join(" "));
    }
    out
}

#[test]
fn the_operator_can_act_when_the_console_session_is_full() {
    // Default limits: the console's own jobs fill its session (pids.max,
    // or its memory max); the commands to look and clean up still start.
    let mut g = Guest::boot("");
    let out = start_sleepers(&mut g, 120);
    assert!(
        out.contains("cannot start"),
        "the session never filled:\n{out}"
    );
    for command in ["ps", "memquota", "free", "ls /proc"] {
        let out = g.run(command);
        assert!(!out.contains("cannot start"), "{command}: {out}");
    }
    let ps = g.run("ps");
    assert!(ps.matches(" sleep").count() >= 60, "{ps}");
    let victim = ps
        .lines()
        .find(|l| l.ends_with(" sleep"))
        .and_then(|l| l.split_whitespace().next())
        .expect("a sleeper in ps")
        .to_string();
    assert_eq!(
        g.run(&format!("kill {victim}")),
        format!("sh: sleep[{victim}]: killed\n")
    );
}

#[test]
fn the_operator_can_act_when_the_thread_table_is_full() {
    // No per-session limits: the jobs fill the machine's thread table.
    let mut g = Guest::boot("session_max=max pids_max=max");
    let out = start_sleepers(&mut g, 260);
    assert!(
        out.contains("too many threads"),
        "the table never filled:\n{out}"
    );
    let ps = g.run("ps");
    assert!(!ps.contains("cannot start"), "{ps}");
    let victim = ps
        .lines()
        .find(|l| l.ends_with(" sleep"))
        .and_then(|l| l.split_whitespace().next())
        .expect("a sleeper in ps")
        .to_string();
    assert_eq!(
        g.run(&format!("kill {victim}")),
        format!("sh: sleep[{victim}]: killed\n")
    );
    assert!(!g.run("memquota").contains("cannot start"));
}

#[test]
fn files_of_ended_sessions_can_be_listed_and_removed() {
    let mut g = Guest::boot("");
    g.run("echo warm > /tmp/warm; rm /tmp/warm");
    let before = g.run("cat /proc/meminfo");
    let line = "x".repeat(1000);
    for session in 0..4 {
        for j in 0..12 {
            g.run(&format!("yes {line} > /tmp/s{session}_{j}"));
        }
        g.send(b"exit\r");
        g.expect(BANNER);
        g.expect(PROMPT);
    }
    // The machine is still usable: commands start, and /tmp stayed within
    // its size, so the files cannot have taken the sessions' memory.
    let free = g.run("free");
    assert!(!free.contains("cannot start"), "{free}");
    let listing = g.run("ls -l /tmp");
    assert!(listing.contains("ended"), "{listing}");
    assert!(listing.contains("s0_0"), "{listing}");
    assert_eq!(g.run("echo still fine"), "still fine\n");
    // Root removes them all; the ended sessions' accounts go with them.
    let names: Vec<String> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|n| format!("/tmp/{n}"))
        .collect();
    for chunk in names.chunks(8) {
        assert_eq!(g.run(&format!("rm {}", chunk.join(" "))), "");
    }
    assert_eq!(g.run("ls /tmp"), "");
    let after = g.run("cat /proc/meminfo");
    system_tests::assert_same(
        &before,
        &after,
        &["KernelBytes", "AccountsLive", "AccountsOrphaned"],
    );
}

#[test]
fn a_session_has_a_process_limit_set_like_the_memory_limits() {
    let mut g = Guest::boot("pids_max=50");
    let info = g.run("cat /proc/meminfo");
    assert_eq!(system_tests::field(&info, "PidsMax"), 50);
    assert!(system_tests::field(&info, "TmpSize") > 0, "{info}");
    assert!(system_tests::field(&info, "OperatorReserve") > 0, "{info}");
    let quota = g.run("cat /proc/1/memquota");
    assert_eq!(system_tests::field(&quota, "pids.max"), 50);
    // The shell and `cat` itself.
    assert_eq!(system_tests::field(&quota, "pids.current"), 2);
    // Bad input is refused and changes nothing.
    for bad in ["pids session 4M", "pids session -1", "pids session"] {
        let out = g.run(&format!("memquota {bad}"));
        assert!(!out.is_empty(), "memquota {bad} was silent");
    }
    assert!(g.run("echo pids 4M > /proc/1/memquota").contains("4M"));
    assert_eq!(
        system_tests::field(&g.run("cat /proc/1/memquota"), "pids.max"),
        50
    );
    assert_eq!(g.run("memquota pids session 3"), "");
    let out = g.run("sleep 600 & sleep 600 & sleep 600 &");
    assert!(out.contains("pids.max 3"), "{out}");
    // `echo` cannot start now; `memquota`, an operator's command, can.
    assert!(
        g.run("echo pids max > /proc/1/memquota")
            .contains("pids.max 3")
    );
    assert_eq!(g.run("memquota pids session max"), "");
    assert!(!g.run("sleep 600 &").contains("cannot start"));
}

#[test]
fn odd_names_and_accounts_are_named_for_what_they_are() {
    let mut g = Guest::boot("");
    let long = "e".repeat(200);
    let out = g.run(&format!("echo x > /tmp/{long}"));
    assert!(
        out.contains("file name too long (64 bytes at most)"),
        "{out}"
    );
    let table = g.run("memquota");
    assert!(
        table.lines().any(|l| l.trim_end().ends_with(" operator")),
        "the operator's account is labelled:\n{table}"
    );
}

#[test]
fn a_kill_at_the_sessions_share_names_the_share() {
    // No session limit, the default operator's reserve: the sessions'
    // share of the heap stops the hog before the floor.
    let mut g = Guest::boot("heap=8M floor=2M session_max=max");
    let out = g.run("hog 64M --infallible");
    assert!(
        out.contains("all sessions together reached their share of the heap"),
        "{out}"
    );
    assert!(!out.contains("suggested limit"), "{out}");
    assert_eq!(g.run("echo kernel fine"), "kernel fine\n");
}
