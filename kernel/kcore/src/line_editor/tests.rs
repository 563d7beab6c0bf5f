//! The line editor's specification: every key, the escape-sequence rules,
//! history, the length limit, and the echo checked against a small model
//! of a VT100 terminal row.

use super::*;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

const PROMPT: &str = "$ ";

/// A terminal as the editor uses it: the current row, its cursor, the rows
/// finished by `\n`, and the bells. Anything else the editor might write
/// fails the test.
#[derive(Default)]
struct Screen {
    rows: Vec<Vec<u8>>,
    row: Vec<u8>,
    col: usize,
    bells: usize,
    raw: Vec<u8>,
    csi: Option<Vec<u8>>,
}

impl Echo for Screen {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.put(b);
        }
    }
}

impl Screen {
    fn put(&mut self, b: u8) {
        self.raw.push(b);
        if let Some(seq) = &mut self.csi {
            seq.push(b);
            if seq.len() == 1 {
                assert_eq!(b, b'[', "only CSI sequences are written");
            } else if (0x40..=0x7e).contains(&b) {
                let seq = self.csi.take().unwrap();
                self.sequence(&seq[1..]);
            }
            return;
        }
        match b {
            0x07 => self.bells += 1,
            0x08 => {
                assert!(self.col > 0, "BS at column 0");
                self.col -= 1;
            }
            b'\n' => {
                self.rows.push(core::mem::take(&mut self.row));
                self.col = 0;
            }
            0x1b => self.csi = Some(Vec::new()),
            0x20..=0x7e => {
                if self.col < self.row.len() {
                    self.row[self.col] = b;
                } else {
                    assert_eq!(self.col, self.row.len());
                    self.row.push(b);
                }
                self.col += 1;
            }
            _ => panic!("unexpected byte {b:#04x} in the echo"),
        }
    }

    fn sequence(&mut self, seq: &[u8]) {
        let (&last, params) = seq.split_last().unwrap();
        let params = core::str::from_utf8(params).unwrap();
        match (last, params) {
            (b'D', n) => {
                let n: usize = n.parse().unwrap();
                assert!(n >= 2, "ESC[{n}D where BS would do");
                assert!(n <= self.col, "ESC[{n}D at column {}", self.col);
                self.col -= n;
            }
            (b'H', "") => self.col = 0,
            (b'J', "2") => {
                self.rows.clear();
                self.row.clear();
            }
            _ => panic!("unexpected sequence ESC[{params}{}", char::from(last)),
        }
    }

    /// The current row shows `prompt` and `line`, then only spaces, and the
    /// cursor is at `cursor` in the line.
    fn assert_shows(&self, prompt: &str, line: &str, cursor: usize) {
        let (prompt, line) = (prompt.as_bytes(), line.as_bytes());
        let end = prompt.len() + line.len();
        let shown = self.row.len() >= end
            && self.row[..prompt.len()] == *prompt
            && self.row[prompt.len()..end] == *line
            && self.row[end..].iter().all(|&b| b == b' ');
        assert!(
            shown,
            "screen row {:?}, want {:?}{:?}",
            alloc::string::String::from_utf8_lossy(&self.row),
            alloc::string::String::from_utf8_lossy(prompt),
            alloc::string::String::from_utf8_lossy(line),
        );
        assert_eq!(self.col, prompt.len() + cursor, "terminal cursor");
    }

    fn take_raw(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.raw)
    }
}

/// An editor started with [`PROMPT`] on a fresh [`Screen`].
fn editor() -> (LineEditor, Screen) {
    let mut ed = LineEditor::new();
    let mut screen = Screen::default();
    ed.start(PROMPT, &mut screen);
    (ed, screen)
}

/// Feeds `bytes`, starting a new line after each outcome; returns the
/// outcomes.
fn feed(ed: &mut LineEditor, screen: &mut Screen, bytes: &[u8]) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for &b in bytes {
        if let Some(outcome) = ed.feed(b, screen) {
            outcomes.push(outcome);
            ed.start(PROMPT, screen);
        }
        assert!(ed.line().len() <= MAX_LINE);
        assert!(ed.cursor() <= ed.line().len());
        assert!(ed.line().bytes().all(|b| (0x20..=0x7e).contains(&b)));
        screen.assert_shows(PROMPT, ed.line(), ed.cursor());
    }
    outcomes
}

fn line(text: &str) -> Outcome {
    Outcome::Line(text.to_string())
}

/// Feeds `bytes` to a new editor and returns the outcomes.
fn run(bytes: &[u8]) -> Vec<Outcome> {
    let (mut ed, mut screen) = editor();
    feed(&mut ed, &mut screen, bytes)
}

// ----- typing and Enter -----

#[test]
fn typing_echoes_and_enter_submits() {
    let (mut ed, mut screen) = editor();
    assert_eq!(screen.take_raw(), b"$ ");
    assert_eq!(feed(&mut ed, &mut screen, b"ls -l"), vec![]);
    assert_eq!(screen.take_raw(), b"ls -l");
    assert_eq!(feed(&mut ed, &mut screen, b"\r"), vec![line("ls -l")]);
    assert_eq!(screen.take_raw(), b"\n$ ");
    assert_eq!(screen.rows, vec![b"$ ls -l".to_vec()]);
}

#[test]
fn cr_or_lf_is_enter() {
    assert_eq!(run(b"a\rb\n"), vec![line("a"), line("b")]);
    assert_eq!(run(b"\r"), vec![line("")]);
}

#[test]
fn crlf_is_one_enter_across_lines() {
    let (mut ed, mut screen) = editor();
    assert_eq!(feed(&mut ed, &mut screen, b"one\r"), vec![line("one")]);
    // The LF arrives after the next line was started: still the same Enter.
    assert_eq!(feed(&mut ed, &mut screen, b"\n"), vec![]);
    assert_eq!(feed(&mut ed, &mut screen, b"two\r\n"), vec![line("two")]);
    assert_eq!(run(b"\r\n\r\n"), vec![line(""), line("")]);
    // Only an LF right after the CR is its partner.
    assert_eq!(run(b"\rx\n"), vec![line(""), line("x")]);
    assert_eq!(run(b"\n\r"), vec![line(""), line("")]);
    assert_eq!(run(b"\n\n"), vec![line(""), line("")]);
}

#[test]
fn crlf_state_survives_start() {
    let (mut ed, mut screen) = editor();
    assert_eq!(feed(&mut ed, &mut screen, b"a\r"), vec![line("a")]);
    ed.start("# ", &mut screen);
    assert_eq!(ed.feed(b'\n', &mut screen), None);
    assert_eq!(ed.feed(b'\n', &mut screen), Some(line("")));
}

#[test]
fn other_bytes_are_ignored() {
    assert_eq!(run(b"a\tb\x00\x80\xffc\x1d\r"), vec![line("abc")]);
}

// ----- deleting -----

#[test]
fn backspace_and_del_delete_before_the_cursor() {
    let (mut ed, mut screen) = editor();
    feed(&mut ed, &mut screen, b"abcd");
    screen.take_raw();
    feed(&mut ed, &mut screen, b"\x08");
    assert_eq!(screen.take_raw(), b"\x08 \x08");
    feed(&mut ed, &mut screen, b"\x7f");
    assert_eq!(ed.line(), "ab");
    // In the middle: the tail moves left.
    feed(&mut ed, &mut screen, b"\x1b[D\x7f");
    assert_eq!((ed.line(), ed.cursor()), ("b", 0));
    // At the start: nothing, not even echo.
    screen.take_raw();
    feed(&mut ed, &mut screen, b"\x08\x7f");
    assert_eq!(screen.take_raw(), b"");
    assert_eq!(feed(&mut ed, &mut screen, b"\r"), vec![line("b")]);
}

#[test]
fn delete_key_deletes_under_the_cursor() {
    assert_eq!(run(b"abc\x1b[D\x1b[D\x1b[3~\r"), vec![line("ac")]);
    // At the end of the line: nothing.
    assert_eq!(run(b"abc\x1b[3~\r"), vec![line("abc")]);
    // A modifier parameter does not change the key.
    assert_eq!(run(b"abc\x01\x1b[3;5~\r"), vec![line("bc")]);
}

#[test]
fn ctrl_u_erases_to_the_start_of_the_line() {
    assert_eq!(run(b"hello world\x15\r"), vec![line("")]);
    assert_eq!(run(b"hello world\x1b[D\x1b[D\x15\r"), vec![line("ld")]);
    assert_eq!(run(b"abc\x01\x15\r"), vec![line("abc")]);
}

#[test]
fn ctrl_k_erases_to_the_end_of_the_line() {
    assert_eq!(run(b"hello world\x01\x1b[C\x0b\r"), vec![line("h")]);
    assert_eq!(run(b"abc\x0b\r"), vec![line("abc")]);
}

#[test]
fn ctrl_w_erases_the_word_before_the_cursor() {
    assert_eq!(run(b"echo one two\x17\r"), vec![line("echo one ")]);
    // Spaces before the cursor go with the word before them.
    assert_eq!(run(b"foo bar   \x17\r"), vec![line("foo ")]);
    assert_eq!(run(b"foo bar   \x17\x17\r"), vec![line("")]);
    assert_eq!(run(b"   \x17\r"), vec![line("")]);
    // Only before the cursor: the rest stays.
    assert_eq!(run(b"foo  bar\x1b[D\x1b[D\x1b[D\x17\r"), vec![line("bar")]);
    assert_eq!(run(b"foo bar\x1b[D\x17\r"), vec![line("foo r")]);
    assert_eq!(run(b"\x17\r"), vec![line("")]);
}

// ----- moving -----

#[test]
fn insert_in_the_middle_redraws_the_tail() {
    let (mut ed, mut screen) = editor();
    feed(&mut ed, &mut screen, b"ac\x1b[D");
    screen.take_raw();
    feed(&mut ed, &mut screen, b"b");
    assert_eq!(screen.take_raw(), b"bc\x08");
    feed(&mut ed, &mut screen, b"\x01>");
    assert_eq!(screen.take_raw(), b"\x1b[2D>abc\x1b[3D");
    assert_eq!(feed(&mut ed, &mut screen, b"\r"), vec![line(">abc")]);
}

#[test]
fn arrow_keys_in_every_encoding() {
    for (left, right) in [
        (&b"\x1b[D"[..], &b"\x1b[C"[..]),
        (b"\x1bOD", b"\x1bOC"),
        (b"\x02", b"\x06"),
        (b"\x1b[1;5D", b"\x1b[1;5C"),
    ] {
        let mut bytes = b"ad".to_vec();
        bytes.extend_from_slice(left);
        bytes.extend_from_slice(left);
        bytes.extend_from_slice(left); // stops at the start
        bytes.extend_from_slice(right);
        bytes.extend_from_slice(b"bc");
        bytes.extend_from_slice(right);
        bytes.extend_from_slice(right); // stops at the end
        bytes.extend_from_slice(b"e\r");
        assert_eq!(run(&bytes), vec![line("abcde")], "{left:?} {right:?}");
    }
}

#[test]
fn home_and_end_in_every_encoding() {
    for (home, end) in [
        (&b"\x1b[H"[..], &b"\x1b[F"[..]),
        (b"\x1bOH", b"\x1bOF"),
        (b"\x1b[1~", b"\x1b[4~"),
        (b"\x1b[7~", b"\x1b[8~"),
        (b"\x01", b"\x05"),
    ] {
        let mut bytes = b"middle".to_vec();
        bytes.extend_from_slice(home);
        bytes.push(b'<');
        bytes.extend_from_slice(end);
        bytes.push(b'>');
        bytes.push(b'\r');
        assert_eq!(run(&bytes), vec![line("<middle>")], "{home:?} {end:?}");
    }
}

#[test]
fn moving_right_rewrites_the_characters_passed() {
    let (mut ed, mut screen) = editor();
    feed(&mut ed, &mut screen, b"abc\x01");
    screen.take_raw();
    feed(&mut ed, &mut screen, b"\x1b[C");
    assert_eq!(screen.take_raw(), b"a");
    feed(&mut ed, &mut screen, b"\x05");
    assert_eq!(screen.take_raw(), b"bc");
}

// ----- escape sequences -----

#[test]
fn an_unfinished_csi_does_not_swallow_enter() {
    let (mut ed, mut screen) = editor();
    assert_eq!(feed(&mut ed, &mut screen, b"ls\x1b[12;"), vec![]);
    assert_eq!(feed(&mut ed, &mut screen, b"\r"), vec![line("ls")]);
    // Nor the byte after it.
    assert_eq!(feed(&mut ed, &mut screen, b"x\r"), vec![line("x")]);
}

#[test]
fn a_lone_escape_does_not_swallow_enter() {
    assert_eq!(run(b"ls\x1b\r"), vec![line("ls")]);
    assert_eq!(run(b"ls\x1b\n"), vec![line("ls")]);
    assert_eq!(run(b"ls\x1bO\r"), vec![line("ls")]);
    assert_eq!(run(b"ls\x1b[\r"), vec![line("ls")]);
}

#[test]
fn control_bytes_abort_a_sequence_and_act() {
    assert_eq!(run(b"ls\x1b[1\x03"), vec![Outcome::Cancelled]);
    assert_eq!(run(b"ls\x1bO\x03"), vec![Outcome::Cancelled]);
    assert_eq!(run(b"ls\x1b[\x15x\r"), vec![line("x")]);
    assert_eq!(run(b"\x1b[\x04"), vec![Outcome::Eof]);
    // ESC inside a sequence starts a new one.
    assert_eq!(run(b"ab\x1b[1\x1b[Dc\r"), vec![line("acb")]);
    assert_eq!(run(b"ab\x1b\x1b[Dc\r"), vec![line("acb")]);
}

#[test]
fn after_a_lone_escape_a_byte_is_itself() {
    // Alt-x sends ESC x: the x is typed.
    assert_eq!(run(b"a\x1bx\r"), vec![line("ax")]);
    assert_eq!(run(b"ab\x1b\x7f\r"), vec![line("a")]);
}

#[test]
fn unknown_and_foreign_sequences_are_ignored() {
    for seq in [
        &b"\x1b[5~"[..],
        b"\x1b[2~",
        b"\x1b[~",
        b"\x1b[?1h",
        b"\x1b[?25l",
        b"\x1b[>c",
        b"\x1b[ q",
        b"\x1b[Z",
        b"\x1b[200~",
        b"\x1b[99999999999~",
        b"\x1bOP",
        b"\x1bO~",
    ] {
        let mut bytes = b"ab".to_vec();
        bytes.extend_from_slice(seq);
        bytes.extend_from_slice(b"c\r");
        assert_eq!(run(&bytes), vec![line("abc")], "{seq:?}");
    }
}

// ----- line ends -----

#[test]
fn ctrl_c_cancels_the_line() {
    let (mut ed, mut screen) = editor();
    feed(&mut ed, &mut screen, b"abc");
    screen.take_raw();
    assert_eq!(
        feed(&mut ed, &mut screen, b"\x03"),
        vec![Outcome::Cancelled]
    );
    assert_eq!(screen.take_raw(), b"^C\n$ ");
    assert_eq!(ed.history().count(), 0);
    assert_eq!(feed(&mut ed, &mut screen, b"d\r"), vec![line("d")]);
}

#[test]
fn ctrl_d_on_an_empty_line_is_end_of_input() {
    let (mut ed, mut screen) = editor();
    screen.take_raw();
    assert_eq!(feed(&mut ed, &mut screen, b"\x04"), vec![Outcome::Eof]);
    assert_eq!(screen.take_raw(), b"\n$ ");
    // On a non-empty line it deletes under the cursor, or does nothing.
    assert_eq!(run(b"abc\x04\r"), vec![line("abc")]);
    assert_eq!(run(b"abc\x01\x04\r"), vec![line("bc")]);
    assert_eq!(run(b"a\x08\x04"), vec![Outcome::Eof]);
}

#[test]
fn ctrl_l_clears_the_screen_and_redraws() {
    let (mut ed, mut screen) = editor();
    feed(&mut ed, &mut screen, b"one\r");
    feed(&mut ed, &mut screen, b"abc\x1b[D");
    screen.take_raw();
    feed(&mut ed, &mut screen, b"\x0c");
    assert_eq!(screen.take_raw(), b"\x1b[H\x1b[2J$ abc\x08");
    assert!(screen.rows.is_empty());
    assert_eq!(feed(&mut ed, &mut screen, b"d\r"), vec![line("abdc")]);
}

#[test]
fn start_discards_a_partial_line_and_redraw_repeats_it() {
    let (mut ed, mut screen) = editor();
    feed(&mut ed, &mut screen, b"one\rtw");
    ed.start("# ", &mut screen);
    assert_eq!((ed.line(), ed.cursor()), ("", 0));
    assert_eq!(ed.history().collect::<Vec<_>>(), ["one"]);
    ed.feed(b'x', &mut screen);
    ed.feed(0x02, &mut screen);
    screen.take_raw();
    ed.redraw(&mut screen);
    assert_eq!(screen.take_raw(), b"# x\x08");
}

// ----- history -----

#[test]
fn up_and_down_walk_the_history_and_keep_the_draft() {
    let (mut ed, mut screen) = editor();
    feed(&mut ed, &mut screen, b"first\rsecond\rdra");
    feed(&mut ed, &mut screen, b"\x1b[A");
    assert_eq!(ed.line(), "second");
    feed(&mut ed, &mut screen, b"\x1bOA");
    assert_eq!(ed.line(), "first");
    // At the oldest: stays.
    feed(&mut ed, &mut screen, b"\x10");
    assert_eq!(ed.line(), "first");
    feed(&mut ed, &mut screen, b"\x1b[B");
    assert_eq!(ed.line(), "second");
    // Past the newest: the draft is back, cursor at its end.
    feed(&mut ed, &mut screen, b"\x1bOB");
    assert_eq!((ed.line(), ed.cursor()), ("dra", 3));
    // Down again: nothing.
    feed(&mut ed, &mut screen, b"\x0e");
    assert_eq!(ed.line(), "dra");
    assert_eq!(feed(&mut ed, &mut screen, b"ft\r"), vec![line("draft")]);
    assert_eq!(
        ed.history().collect::<Vec<_>>(),
        ["first", "second", "draft"]
    );
}

#[test]
fn a_recalled_line_can_be_edited_and_run() {
    let (mut ed, mut screen) = editor();
    feed(&mut ed, &mut screen, b"echo hello\r");
    assert_eq!(
        feed(&mut ed, &mut screen, b"\x1b[A\x17bye\r"),
        vec![line("echo bye")]
    );
    assert_eq!(ed.history().collect::<Vec<_>>(), ["echo hello", "echo bye"]);
}

#[test]
fn a_shorter_recalled_line_erases_the_longer_one() {
    let (mut ed, mut screen) = editor();
    feed(&mut ed, &mut screen, b"ab\rlonger line");
    feed(&mut ed, &mut screen, b"\x1b[D\x1b[D\x1b[A");
    assert_eq!((ed.line(), ed.cursor()), ("ab", 2));
    assert_eq!(screen.row, b"$ ab         ");
}

#[test]
fn history_skips_empty_lines_and_repeats() {
    let (mut ed, mut screen) = editor();
    feed(&mut ed, &mut screen, b"a\r\r  \rb\rb\ra\r");
    assert_eq!(ed.history().collect::<Vec<_>>(), ["a", "  ", "b", "a"]);
    // Cancelled, too long and end-of-input lines are not kept.
    feed(&mut ed, &mut screen, b"c\x03");
    assert_eq!(ed.history().len(), 4);
}

#[test]
fn history_keeps_the_newest_entries() {
    let (mut ed, mut screen) = editor();
    for i in 0..HISTORY_LEN + 5 {
        feed(&mut ed, &mut screen, alloc::format!("cmd{i}\r").as_bytes());
    }
    let history: Vec<_> = ed.history().collect();
    assert_eq!(history.len(), HISTORY_LEN);
    assert_eq!(history[0], "cmd5");
    assert_eq!(
        *history.last().unwrap(),
        alloc::format!("cmd{}", HISTORY_LEN + 4)
    );
}

#[test]
fn up_with_no_history_does_nothing() {
    let (mut ed, mut screen) = editor();
    screen.take_raw();
    feed(&mut ed, &mut screen, b"ab\x1b[A\x1b[B");
    assert_eq!(screen.take_raw(), b"ab");
}

// ----- length -----

#[test]
fn a_line_of_max_length_is_accepted() {
    let mut bytes = vec![b'x'; MAX_LINE];
    bytes.push(b'\r');
    assert_eq!(run(&bytes), vec![line(&"x".repeat(MAX_LINE))]);
}

#[test]
fn bytes_beyond_the_limit_ring_the_bell_and_refuse_the_line() {
    let (mut ed, mut screen) = editor();
    feed(&mut ed, &mut screen, &[b'x'; MAX_LINE + 3]);
    assert_eq!(screen.bells, 3);
    assert_eq!(ed.line().len(), MAX_LINE);
    // Editing does not lift the refusal: what was typed is lost.
    feed(&mut ed, &mut screen, b"\x15");
    assert_eq!(feed(&mut ed, &mut screen, b"\r"), vec![Outcome::TooLong]);
    assert_eq!(ed.history().count(), 0);
    // The next line is fine.
    assert_eq!(feed(&mut ed, &mut screen, b"ok\r"), vec![line("ok")]);
    // Ctrl-C ends an overlong line too.
    feed(&mut ed, &mut screen, &[b'y'; MAX_LINE + 1]);
    assert_eq!(
        feed(&mut ed, &mut screen, b"\x03"),
        vec![Outcome::Cancelled]
    );
    assert_eq!(feed(&mut ed, &mut screen, b"ok\r"), vec![line("ok")]);
}

// ----- properties -----

/// An editing action for the model test.
#[derive(Clone, Copy, Debug)]
enum Op {
    Type(u8),
    Left,
    Right,
    Home,
    End,
    Backspace,
    Delete,
    KillToStart,
    KillWord,
}

impl Op {
    /// The bytes for this action, in encoding number `which` of those the
    /// editor accepts.
    fn bytes(self, which: usize) -> &'static [u8] {
        fn pick(all: &[&'static [u8]], which: usize) -> &'static [u8] {
            all[which % all.len()]
        }
        match self {
            Op::Type(_) => unreachable!(),
            Op::Left => pick(&[b"\x1b[D", b"\x1bOD", b"\x02", b"\x1b[1;2D"], which),
            Op::Right => pick(&[b"\x1b[C", b"\x1bOC", b"\x06"], which),
            Op::Home => pick(
                &[b"\x1b[H", b"\x1bOH", b"\x1b[1~", b"\x1b[7~", b"\x01"],
                which,
            ),
            Op::End => pick(
                &[b"\x1b[F", b"\x1bOF", b"\x1b[4~", b"\x1b[8~", b"\x05"],
                which,
            ),
            Op::Backspace => pick(&[b"\x08", b"\x7f"], which),
            Op::Delete => b"\x1b[3~",
            Op::KillToStart => b"\x15",
            Op::KillWord => b"\x17",
        }
    }
}

/// The line as a list of characters and a cursor, edited the obvious way.
#[derive(Default)]
struct Model {
    text: Vec<char>,
    cursor: usize,
}

impl Model {
    fn apply(&mut self, op: Op) {
        match op {
            Op::Type(b) => {
                self.text.insert(self.cursor, char::from(b));
                self.cursor += 1;
            }
            Op::Left => self.cursor = self.cursor.saturating_sub(1),
            Op::Right => self.cursor = (self.cursor + 1).min(self.text.len()),
            Op::Home => self.cursor = 0,
            Op::End => self.cursor = self.text.len(),
            Op::Backspace => {
                if self.cursor > 0 {
                    self.cursor -= 1;
                    self.text.remove(self.cursor);
                }
            }
            Op::Delete => {
                if self.cursor < self.text.len() {
                    self.text.remove(self.cursor);
                }
            }
            Op::KillToStart => {
                self.text.drain(..self.cursor);
                self.cursor = 0;
            }
            Op::KillWord => {
                let mut start = self.cursor;
                while start > 0 && self.text[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && self.text[start - 1] != ' ' {
                    start -= 1;
                }
                self.text.drain(start..self.cursor);
                self.cursor = start;
            }
        }
    }

    fn line(&self) -> alloc::string::String {
        self.text.iter().collect()
    }
}

fn op() -> impl Strategy<Value = (Op, usize)> {
    let op = prop_oneof![
        6 => prop_oneof![Just(b' '), Just(b'a'), Just(b'b'), 0x20u8..0x7f].prop_map(Op::Type),
        1 => Just(Op::Left),
        1 => Just(Op::Right),
        1 => Just(Op::Home),
        1 => Just(Op::End),
        1 => Just(Op::Backspace),
        1 => Just(Op::Delete),
        1 => Just(Op::KillToStart),
        1 => Just(Op::KillWord),
    ];
    (op, 0usize..8)
}

/// Bytes weighted towards what makes escape sequences and line ends.
fn byte() -> impl Strategy<Value = u8> {
    const INTERESTING: &[u8] = b"\x1b\x1b\x1b[[OOABCDHF~~13;;?\r\n\x01\x02\x03\x04\x05\x06\x08\
        \x0b\x0c\x0e\x10\x15\x17\x7f  ab";
    prop_oneof![any::<u8>(), prop::sample::select(INTERESTING)]
}

proptest! {
    #[test]
    fn the_editor_edits_like_the_model(ops in prop::collection::vec(op(), 0..80)) {
        let (mut ed, mut screen) = editor();
        let mut model = Model::default();
        for (op, which) in ops {
            let bytes = match op {
                Op::Type(b) => vec![b],
                _ => op.bytes(which).to_vec(),
            };
            prop_assert_eq!(feed(&mut ed, &mut screen, &bytes), vec![]);
            model.apply(op);
            prop_assert_eq!(ed.line(), model.line());
            prop_assert_eq!(ed.cursor(), model.cursor);
        }
        prop_assert_eq!(feed(&mut ed, &mut screen, b"\r"), vec![Outcome::Line(model.line())]);
        prop_assert_eq!(screen.bells, 0);
    }

    #[test]
    fn any_bytes_keep_the_editor_and_screen_consistent(
        bytes in prop::collection::vec(byte(), 0..400),
    ) {
        // `feed` checks the invariants and the screen after every byte.
        let (mut ed, mut screen) = editor();
        feed(&mut ed, &mut screen, &bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let mut ed = LineEditor::new();
        let mut screen = Screen::default();
        for b in bytes {
            if ed.feed(b, &mut screen).is_some() {
                ed.start(PROMPT, &mut screen);
            }
        }
    }

    #[test]
    fn enter_always_ends_the_line_at_once(
        before in prop::collection::vec(byte(), 0..40),
        text in prop::collection::vec(
            byte().prop_filter("no line end", |b| !matches!(b, b'\r' | b'\n' | 0x03 | 0x04)),
            0..200,
        ),
    ) {
        let (mut ed, mut screen) = editor();
        // Any state first, ending with a CR so that the LF logic is armed.
        feed(&mut ed, &mut screen, &before);
        feed(&mut ed, &mut screen, b"\r");
        for &b in &text {
            prop_assert_eq!(ed.feed(b, &mut screen), None);
        }
        prop_assert!(ed.feed(b'\r', &mut screen).is_some());
    }
}
