//! `bench alloc` at the console: it runs on the CPU count asked for,
//! reports its figures, refuses bad arguments, stops on Ctrl-C, and leaves
//! the heap and the accounts exactly as it found them.

use system_tests::{BASELINE_KEYS, Guest, PROMPT, assert_same};

/// The `pairs/s` figure of the line starting with `label` (after spaces).
fn rate(out: &str, label: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no '{label}' line:\n{out}"));
    let after = line.split_once(": ").map_or("", |(_, r)| r);
    after
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rate in '{line}'"))
}

#[test]
fn bench_alloc_reports_rates_and_leaves_nothing_behind() {
    let mut g = Guest::boot_with_cpus("", 1);
    // Warm up once, so lazily grown kernel structures are at their size.
    g.run("bench alloc --threads 2 --seconds 0.2");
    let before = g.meminfo_quiet();
    let session = g.run("memquota 1");

    let out = g.run("bench alloc --threads 2 --separate --seconds 0.5");
    eprintln!("{out}");
    assert!(
        out.contains("2 thread(s), separate account(s), 64-byte blocks"),
        "{out}"
    );
    assert!(out.contains("1 CPU(s) online"), "{out}");
    for label in ["thread 0:", "thread 1:", "total:"] {
        assert!(rate(&out, label) > 0, "{label}:\n{out}");
    }
    assert!(out.contains("on CPU(s) 0"), "one CPU, CPU 0:\n{out}");
    assert_eq!(g.run("echo $?"), "0\n");

    // Bad arguments: the usage line, status 2.
    for bad in [
        "bench",
        "bench free",
        "bench alloc --threads 0",
        "bench alloc --threads 99",
        "bench alloc --seconds 0",
        "bench alloc --shared --separate",
        "bench alloc --fast",
    ] {
        let out = g.run(bad);
        assert!(out.contains("usage: bench alloc"), "{bad}:\n{out}");
        assert_eq!(g.run("echo $?"), "2\n", "{bad}");
    }

    // Ctrl-C stops a long run at once.
    g.send(b"bench alloc --threads 3 --shared --seconds 60\r");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let sent = std::time::Instant::now();
    g.send(b"\x03");
    g.expect(PROMPT);
    assert!(
        sent.elapsed() < std::time::Duration::from_secs(10),
        "Ctrl-C took {:?}",
        sent.elapsed()
    );
    assert_eq!(g.run("echo ok"), "ok\n");

    let after = g.meminfo_settled(&before, BASELINE_KEYS);
    assert_same(&before, &after, BASELINE_KEYS);
    let session_after = g.run("memquota 1");
    assert_eq!(
        system_tests::field(&session_after, "current"),
        system_tests::field(&session, "current"),
        "{session}\n{session_after}"
    );
}
