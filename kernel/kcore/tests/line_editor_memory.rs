//! The line editor's memory contract, under an allocator that refuses on
//! demand: a refused allocation costs a keystroke (with a bell), a history
//! entry or the prompt's copy, never a panic or an abort.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use kcore::line_editor::{Echo, LineEditor, Outcome};

/// `System`, except that it returns null while this thread's `REFUSE` is
/// set (each test runs on its own thread, so tests do not disturb each
/// other).
struct RefusingAlloc;

thread_local! {
    static REFUSE: Cell<bool> = const { Cell::new(false) };
}

fn refusing() -> bool {
    REFUSE.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every method forwards to `System` with the caller's arguments, or
// returns null, which `GlobalAlloc` allows for any allocation.
unsafe impl GlobalAlloc for RefusingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if refusing() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` (this allocator only forwards).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if refusing() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract for `realloc` is `System.realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: RefusingAlloc = RefusingAlloc;

/// Runs `f` with every allocation on this thread refused.
fn refused<T>(f: impl FnOnce() -> T) -> T {
    REFUSE.with(|r| r.set(true));
    let result = f();
    REFUSE.with(|r| r.set(false));
    result
}

/// An echo sink that never allocates after it is made.
struct Sink {
    buf: Vec<u8>,
}

impl Sink {
    fn new() -> Self {
        Sink {
            buf: Vec::with_capacity(1 << 16),
        }
    }

    fn take(&mut self) -> Vec<u8> {
        let out = self.buf.clone();
        self.buf.clear();
        out
    }
}

impl Echo for Sink {
    fn write(&mut self, bytes: &[u8]) {
        assert!(self.buf.len() + bytes.len() <= self.buf.capacity());
        self.buf.extend_from_slice(bytes);
    }
}

fn feed(ed: &mut LineEditor, out: &mut Sink, bytes: &[u8]) -> Option<Outcome> {
    let mut outcome = None;
    for &b in bytes {
        if let Some(o) = ed.feed(b, out) {
            assert!(outcome.is_none(), "two outcomes");
            outcome = Some(o);
        }
    }
    outcome
}

#[test]
fn a_keystroke_that_cannot_grow_the_line_is_refused_and_the_line_not_run() {
    let mut ed = LineEditor::new();
    let mut out = Sink::new();
    ed.start("$ ", &mut out);
    feed(&mut ed, &mut out, b"a");
    // Type until the line's buffer is full and a byte is refused.
    let (refused_at, outcome) = refused(|| {
        let mut refused_at = None;
        for _ in 0..4096 {
            let before = ed.line().len();
            feed(&mut ed, &mut out, b"b");
            if ed.line().len() == before {
                refused_at = Some(before);
                break;
            }
        }
        // Editing that needs no memory still works.
        let outcome = feed(&mut ed, &mut out, b"\x01\x1b[3~\x1b[C");
        (refused_at, outcome)
    });
    let refused_at = refused_at.expect("a byte was refused");
    assert_eq!(outcome, None);
    let echo = out.take();
    let bells = echo.split(|&b| b == 0x07).count() - 1;
    assert_eq!(bells, 1, "one bell, for the refused byte");
    assert_eq!(
        echo.last(),
        Some(&b'b'),
        "the cursor moved right over a 'b'"
    );
    assert_eq!(ed.line(), "b".repeat(refused_at - 1));
    // The line lost a byte: Enter does not run it.
    assert_eq!(feed(&mut ed, &mut out, b"\r"), Some(Outcome::OutOfMemory));
    assert_eq!(ed.history().count(), 0);
    // With memory back, the next line is normal.
    assert_eq!(
        feed(&mut ed, &mut out, b"ok\r"),
        Some(Outcome::Line("ok".into()))
    );
}

#[test]
fn a_history_that_cannot_be_had_stores_nothing_and_then_never_grows() {
    let mut ed = LineEditor::new();
    let mut out = Sink::new();
    feed(&mut ed, &mut out, b"one");
    // Submitting hands the line's own buffer over: no allocation needed,
    // but the history's buffer cannot be had, so nothing is stored.
    let outcome = refused(|| feed(&mut ed, &mut out, b"\r"));
    assert_eq!(outcome, Some(Outcome::Line("one".into())));
    assert_eq!(ed.history().count(), 0);
    assert_eq!(
        feed(&mut ed, &mut out, b"two\r"),
        Some(Outcome::Line("two".into()))
    );
    // Once reserved, the history takes no more memory for new lines.
    feed(&mut ed, &mut out, b"three");
    let outcome = refused(|| feed(&mut ed, &mut out, b"\r"));
    assert_eq!(outcome, Some(Outcome::Line("three".into())));
    assert_eq!(ed.history().collect::<Vec<_>>(), ["two", "three"]);
}

#[test]
fn a_history_entry_that_cannot_be_recalled_rings_the_bell() {
    let mut ed = LineEditor::new();
    let mut out = Sink::new();
    feed(&mut ed, &mut out, b"one\rdraft");
    out.take();
    refused(|| feed(&mut ed, &mut out, b"\x1b[A"));
    assert_eq!(out.take(), b"\x07");
    assert_eq!(ed.line(), "draft");
    // And with memory, it is recalled.
    feed(&mut ed, &mut out, b"\x1b[A");
    assert_eq!(ed.line(), "one");
}

#[test]
fn a_prompt_that_cannot_be_copied_is_still_printed() {
    let mut ed = LineEditor::new();
    let mut out = Sink::new();
    refused(|| ed.start("memquota# ", &mut out));
    assert_eq!(out.take(), b"memquota# ");
    feed(&mut ed, &mut out, b"ab");
    out.take();
    // Ctrl-L redraws the line without the prompt it could not keep.
    feed(&mut ed, &mut out, b"\x0c");
    assert_eq!(out.take(), b"\x1b[H\x1b[2Jab");
}
