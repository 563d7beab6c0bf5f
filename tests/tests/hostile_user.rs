//! Defects a hostile user found at the console (an adversarial review),
//! each reproduced here: concurrent failures beyond the overdraft, a zero
//! limit on the operator's own session, fault injection that must keep
//! reaching new sessions, and `/tmp` that must hold nothing once empty.

use system_tests::{BANNER, Guest, PROMPT, assert_same};

const BASELINE: &[&str] = &[
    "HeapUsed",
    "KernelBytes",
    "SessionBytes",
    "AccountsLive",
    "AccountsOrphaned",
];

fn fresh_session(g: &mut Guest) {
    g.send(b"exit\r");
    g.expect(BANNER);
    g.expect(PROMPT);
}

/// Eight infallible hogs failing beyond the overdraft at the same time:
/// only one gets the (single, static) exception object; the others are
/// terminated on the spot and leak what they held, charged to orphaned
/// accounts for good.
#[test]
fn concurrent_failures_beyond_the_overdraft_leave_nothing_behind() {
    let mut g = Guest::boot("");
    fresh_session(&mut g);
    let before = g.run("cat /proc/meminfo");
    let out = g.run(
        "hog 8M --infallible --step 1M &; hog 8M --infallible --step 1M &; \
         hog 8M --infallible --step 1M &; hog 8M --infallible --step 1M &; \
         hog 8M --infallible --step 1M &; hog 8M --infallible --step 1M &; \
         hog 8M --infallible --step 1M &; hog 8M --infallible --step 1M &; sleep 1.5",
    );
    let out = out + &g.run("echo sync");
    fresh_session(&mut g);
    let after = g.run("cat /proc/meminfo");
    assert!(
        !out.contains("terminated on the spot"),
        "a failure beyond the overdraft was not unwound:\n{out}"
    );
    assert_same(&before, &after, BASELINE);
}

/// `memquota set session 0` (or 1) on the console's own session: every
/// keystroke is then refused, so the operator cannot type `memquota set
/// session max` (nor `exit`) to undo it.
#[test]
fn the_operator_can_undo_a_zero_limit_on_its_own_session() {
    let mut g = Guest::boot("");
    g.run("memquota set session 0");
    let out = g.run("memquota set session max");
    assert!(
        !out.contains("keystroke was refused"),
        "the console refuses the operator's keystrokes:\n{out}"
    );
    assert_eq!(g.run("echo still answering"), "still answering\n");
}

/// With `failslab=every:3`, the console's session shell is killed by an
/// injected failure as it starts, and the console then starts the session
/// "in the operator's reserve", under the operator's account, outside
/// `users`, where nothing is injected: `hog` then makes 128 charges and
/// all of them succeed, and the fault injection tests nothing any more.
#[test]
fn failslab_every_nth_keeps_reaching_a_new_sessions_processes() {
    let mut g = Guest::boot("failslab=every:3");
    g.send(b"exit\r");
    g.expect(BANNER);
    g.expect(PROMPT);
    let out = g.run("hog 2M");
    let info = g.run("cat /proc/meminfo");
    assert!(
        !out.contains("allocated 2097152 bytes in 128 steps"),
        "no injected failure in 128 charges with every:3:\n{out}\n{info}"
    );
}

/// Creating and removing a /tmp file leaves 640 kernel bytes (one
/// allocation) behind: the heap does not return to its baseline.
#[test]
fn a_removed_tmp_file_leaves_the_heap_at_baseline() {
    let mut g = Guest::boot("");
    fresh_session(&mut g);
    let before = g.run("cat /proc/meminfo");
    g.run("echo hi > /tmp/a");
    g.run("rm /tmp/a");
    fresh_session(&mut g);
    let after = g.run("cat /proc/meminfo");
    assert_same(&before, &after, &["HeapUsed", "KernelBytes", "Allocations"]);
}
