//! What one session can do to everyone after it: each test reproduces a
//! way the machine was left damaged or the console dead, and checks it is
//! not any more.

use system_tests::{Guest, PROMPT};

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
    // No session limit: only the heap's floor can stop the hog.
    let mut g = Guest::boot("heap=8M floor=2M session_max=max");
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
