//! The shell's line editor: a state machine fed one input byte at a time,
//! writing its echo to an [`Echo`] sink and returning an [`Outcome`] when a
//! line ends. It knows nothing of where bytes come from (the console, an
//! SSH channel) or where the echo goes.
//!
//! # Keys
//! | key | bytes | effect |
//! |---|---|---|
//! | printable ASCII | `0x20..=0x7e` | insert at the cursor |
//! | Backspace | `0x08`, `0x7f` | delete before the cursor |
//! | Delete | `CSI 3 ~`; Ctrl-D on a non-empty line | delete under the cursor |
//! | Left / Right | `CSI D` / `CSI C`, `SS3 D` / `SS3 C`, Ctrl-B / Ctrl-F | move |
//! | Home / End | `CSI H` / `CSI F`, `SS3 H` / `SS3 F`, `CSI 1 ~` `CSI 7 ~` / `CSI 4 ~` `CSI 8 ~`, Ctrl-A / Ctrl-E | move to the start / end |
//! | Up / Down | `CSI A` / `CSI B`, `SS3 A` / `SS3 B`, Ctrl-P / Ctrl-N | history |
//! | Ctrl-U / Ctrl-K | `0x15` / `0x0b` | erase from the start / to the end of the line |
//! | Ctrl-W | `0x17` | erase the word before the cursor (spaces, then non-spaces) |
//! | Ctrl-L | `0x0c` | clear the screen, redraw prompt and line |
//! | Ctrl-C | `0x03` | echo `^C`, [`Outcome::Cancelled`] |
//! | Ctrl-D | `0x04` on an empty line | [`Outcome::Eof`] |
//! | Enter | CR or LF; CR LF is one Enter | [`Outcome::Line`] |
//!
//! Other control bytes, bytes `0x80..`, and escape sequences for other
//! keys or with private markers or intermediates (`CSI 5 ~`, `CSI ? 1 h`)
//! are ignored. Modifier parameters are
//! ignored (`CSI 1 ; 5 D`, Ctrl-Left, is Left). Lines are ASCII.
//!
//! # Escape sequences
//! `ESC [` starts a CSI sequence: parameter bytes `0x30..=0x3f`,
//! intermediate bytes `0x20..=0x2f`, up to a final byte `0x40..=0x7e`.
//! `ESC O` starts an SS3 sequence of one more byte. A sequence never
//! swallows a line end: a byte outside `0x20..=0x7e` inside a sequence
//! (CR, LF, Ctrl-C, ESC, ...) abandons it and is then handled as if no
//! sequence had started. After a lone ESC, any byte other than `[` and `O`
//! ends the escape and is handled normally.
//!
//! # Echo
//! The echo assumes a VT100-like terminal and a line that fits on one
//! terminal row (no wrap handling). It uses printable bytes, BS (`0x08`)
//! and `ESC [ n D` to move left, rewrites characters to move right, spaces
//! to erase, BEL (`0x07`) for a refused keystroke, `ESC [ H ESC [ 2 J` for
//! Ctrl-L, and `\n` for a new line: a sink writing to a raw terminal must
//! turn `\n` into `\r\n` (the kernel console does).
//!
//! # Memory
//! The editor runs in the kernel, charged to the user's session, which may
//! be at its limit. Every allocation it makes is fallible (`try_reserve`):
//! - a keystroke that would grow the line is refused with a bell if the
//!   memory cannot be had; the line is then marked and Enter gives
//!   [`Outcome::OutOfMemory`] rather than running a line that lost a byte;
//! - recalling a history entry that cannot be copied rings the bell and
//!   leaves the line as it was;
//! - a history entry that cannot be stored is not stored (history is left
//!   unchanged);
//! - the prompt is copied for Ctrl-L; if that copy fails, Ctrl-L redraws the
//!   line without it.
//!
//! These refusals happen only if the global allocator returns an error to
//! `try_reserve`: under `quota`'s `TrackingAlloc`, the caller runs
//! [`LineEditor::feed`] and [`LineEditor::start`] inside a `fallible` scope
//! (outside it an over-limit charge is forced instead, and its owner
//! killed). The editor never panics and never aborts. It holds at most
//! one line of [`MAX_LINE`] bytes being edited, one saved draft, the prompt
//! and [`HISTORY_LEN`] history entries in [`HISTORY_BYTES`] reserved once.
//! Between lines only the prompt and the history are held. [`Outcome::Line`] hands the line's
//! buffer to the caller.
//!
//! # Length
//! A line holds at most [`MAX_LINE`] bytes. Bytes beyond are refused with a
//! bell and mark the line overlong: Enter then gives [`Outcome::TooLong`]
//! and nothing should run (a truncated paste must not run). The mark lasts
//! until the line ends, whatever editing follows.

mod history;

use alloc::string::String;

pub use history::HISTORY_BYTES;
use history::History;

/// Longest line accepted, in bytes (= characters: lines are ASCII).
pub const MAX_LINE: usize = 1024;

/// History entries kept; the oldest is dropped for a new one.
pub const HISTORY_LEN: usize = 32;

/// Where the editor's echo goes.
pub trait Echo {
    /// Writes `bytes` to the terminal. `\n` means "new line": a sink for a
    /// raw terminal writes it as `\r\n`.
    fn write(&mut self, bytes: &[u8]);
}

impl<E: Echo + ?Sized> Echo for &mut E {
    fn write(&mut self, bytes: &[u8]) {
        (**self).write(bytes);
    }
}

/// How a line ended. After any of these the editor is ready for the next
/// line (call [`LineEditor::start`] to print the prompt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Enter: the line, without its line end.
    Line(String),
    /// Ctrl-C: the line was abandoned (`^C` was echoed).
    Cancelled,
    /// Enter on a line that was refused bytes beyond [`MAX_LINE`]: nothing
    /// should run. The kernel prints e.g. `sh: line too long (1024
    /// characters at most); nothing run`.
    TooLong,
    /// Enter on a line that was refused a byte for lack of memory: nothing
    /// should run.
    OutOfMemory,
    /// Ctrl-D on an empty line: end of input (a new line was echoed).
    Eof,
}

const BELL: u8 = 0x07;
const BACKSPACE: u8 = 0x08;
const ESCAPE: u8 = 0x1b;
const DELETE: u8 = 0x7f;
const fn ctrl(letter: u8) -> u8 {
    letter & 0x1f
}

/// An editing action, decoded from one byte or one escape sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Insert(u8),
    Backspace,
    Delete,
    /// Ctrl-D: end of input on an empty line, else Delete.
    EndOfInput,
    Left,
    Right,
    Home,
    End,
    Up,
    Down,
    KillToStart,
    KillToEnd,
    KillWord,
    ClearScreen,
    /// CR or LF (which one, for CR LF).
    Enter(u8),
    Interrupt,
}

/// Where an escape sequence stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    /// No sequence.
    Ground,
    /// After ESC.
    Esc,
    /// Inside `ESC [`.
    Csi {
        /// The first numeric parameter (saturating), 0 if none.
        first: u16,
        /// A `;` or `:` ended the first parameter.
        first_done: bool,
        /// A private marker or intermediate byte: a sequence this editor
        /// does not interpret.
        foreign: bool,
    },
    /// After `ESC O`.
    Ss3,
}

/// Why the line being edited will not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    TooLong,
    OutOfMemory,
}

/// The line editor. See the [module documentation](self) for the keys, the
/// echo and the memory contract.
#[derive(Debug)]
pub struct LineEditor {
    /// The line being edited: printable ASCII, at most [`MAX_LINE`] bytes.
    line: String,
    /// Cursor position in `line` (a byte index, and a column).
    cursor: usize,
    /// Set when a byte was refused; the line will not run.
    refused: Option<Refusal>,
    escape: Escape,
    /// The last byte was a CR that ended a line: an LF now is its partner.
    after_cr: bool,
    /// The prompt, for Ctrl-L (empty if it could not be copied).
    prompt: String,
    /// Past lines, oldest first, at most [`HISTORY_LEN`].
    history: History,
    /// The history entry shown, or `None` when editing the draft.
    browsing: Option<usize>,
    /// The line being typed before history was browsed.
    draft: String,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    /// An editor with an empty line and no history. Allocates nothing.
    pub const fn new() -> Self {
        LineEditor {
            line: String::new(),
            cursor: 0,
            refused: None,
            escape: Escape::Ground,
            after_cr: false,
            prompt: String::new(),
            history: History::new(),
            browsing: None,
            draft: String::new(),
        }
    }

    /// Starts a new, empty line: remembers `prompt` (for Ctrl-L) and writes
    /// it. A partly typed line is discarded; history and the CR LF state
    /// are kept (the LF of the previous line's CR LF may still come).
    pub fn start(&mut self, prompt: &str, out: &mut impl Echo) {
        self.end_line();
        self.prompt.clear();
        if self.prompt.try_reserve(prompt.len()).is_ok() {
            self.prompt.push_str(prompt);
        }
        out.write(prompt.as_bytes());
    }

    /// Writes the prompt and the line again and puts the cursor back where
    /// it was, for when other output has moved the terminal's cursor to the
    /// start of a fresh line.
    pub fn redraw(&self, out: &mut impl Echo) {
        out.write(self.prompt.as_bytes());
        out.write(self.line.as_bytes());
        left(out, self.tail_len());
    }

    /// The line as edited so far.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The cursor position in [`line`](Self::line).
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The history, oldest first.
    pub fn history(&self) -> impl ExactSizeIterator<Item = &str> {
        (0..self.history.len()).map(|i| self.history.get(i).unwrap_or(""))
    }

    /// Takes one input byte, echoes its effect and returns the outcome if
    /// it ended the line.
    pub fn feed(&mut self, byte: u8, out: &mut impl Echo) -> Option<Outcome> {
        if core::mem::take(&mut self.after_cr) && byte == b'\n' {
            return None;
        }
        let key = match self.escape {
            Escape::Ground => self.decode(byte),
            Escape::Esc => match byte {
                b'[' => {
                    self.escape = Escape::Csi {
                        first: 0,
                        first_done: false,
                        foreign: false,
                    };
                    None
                }
                b'O' => {
                    self.escape = Escape::Ss3;
                    None
                }
                _ => {
                    self.escape = Escape::Ground;
                    self.decode(byte)
                }
            },
            Escape::Csi {
                first,
                first_done,
                foreign,
            } => match byte {
                b'0'..=b'9' if !first_done => {
                    let first = first
                        .saturating_mul(10)
                        .saturating_add(u16::from(byte & 0x0f));
                    self.escape = Escape::Csi {
                        first,
                        first_done,
                        foreign,
                    };
                    None
                }
                b'0'..=b'9' => None,
                b';' | b':' => {
                    self.escape = Escape::Csi {
                        first,
                        first_done: true,
                        foreign,
                    };
                    None
                }
                // Private markers `<=>?` and intermediates.
                0x20..=0x2f | 0x3c..=0x3f => {
                    self.escape = Escape::Csi {
                        first,
                        first_done,
                        foreign: true,
                    };
                    None
                }
                0x40..=0x7e => {
                    self.escape = Escape::Ground;
                    if foreign { None } else { csi_key(first, byte) }
                }
                _ => {
                    self.escape = Escape::Ground;
                    self.decode(byte)
                }
            },
            Escape::Ss3 => {
                self.escape = Escape::Ground;
                if (0x20..=0x7e).contains(&byte) {
                    ss3_key(byte)
                } else {
                    self.decode(byte)
                }
            }
        };
        key.and_then(|key| self.apply(key, out))
    }

    /// Decodes a byte outside any escape sequence.
    fn decode(&mut self, byte: u8) -> Option<Key> {
        Some(match byte {
            0x20..=0x7e => Key::Insert(byte),
            BACKSPACE | DELETE => Key::Backspace,
            b'\r' | b'\n' => Key::Enter(byte),
            ESCAPE => {
                self.escape = Escape::Esc;
                return None;
            }
            b if b == ctrl(b'A') => Key::Home,
            b if b == ctrl(b'B') => Key::Left,
            b if b == ctrl(b'C') => Key::Interrupt,
            b if b == ctrl(b'D') => Key::EndOfInput,
            b if b == ctrl(b'E') => Key::End,
            b if b == ctrl(b'F') => Key::Right,
            b if b == ctrl(b'K') => Key::KillToEnd,
            b if b == ctrl(b'L') => Key::ClearScreen,
            b if b == ctrl(b'N') => Key::Down,
            b if b == ctrl(b'P') => Key::Up,
            b if b == ctrl(b'U') => Key::KillToStart,
            b if b == ctrl(b'W') => Key::KillWord,
            _ => return None,
        })
    }

    fn apply(&mut self, key: Key, out: &mut impl Echo) -> Option<Outcome> {
        match key {
            Key::Insert(byte) => self.insert(byte, out),
            Key::Backspace => {
                if let Some(start) = self.cursor.checked_sub(1) {
                    self.erase(start, self.cursor, out);
                }
            }
            Key::EndOfInput if self.line.is_empty() => {
                out.write(b"\n");
                self.end_line();
                return Some(Outcome::Eof);
            }
            Key::Delete | Key::EndOfInput => self.delete(out),
            Key::Left => {
                if let Some(cursor) = self.cursor.checked_sub(1) {
                    self.cursor = cursor;
                    out.write(&[BACKSPACE]);
                }
            }
            Key::Right => {
                if let Some(&b) = self.line.as_bytes().get(self.cursor) {
                    out.write(&[b]);
                    self.cursor = self.cursor.saturating_add(1);
                }
            }
            Key::Home => {
                left(out, self.cursor);
                self.cursor = 0;
            }
            Key::End => {
                out.write(self.tail());
                self.cursor = self.line.len();
            }
            Key::Up => self.history_up(out),
            Key::Down => self.history_down(out),
            Key::KillToStart => self.erase(0, self.cursor, out),
            Key::KillToEnd => self.erase(self.cursor, self.line.len(), out),
            Key::KillWord => self.erase(self.word_start(), self.cursor, out),
            Key::ClearScreen => {
                out.write(b"\x1b[H\x1b[2J");
                self.redraw(out);
            }
            Key::Enter(byte) => {
                self.after_cr = byte == b'\r';
                return Some(self.submit(out));
            }
            Key::Interrupt => {
                out.write(b"^C\n");
                self.end_line();
                return Some(Outcome::Cancelled);
            }
        }
        None
    }

    /// The bytes from the cursor to the end of the line.
    fn tail(&self) -> &[u8] {
        self.line.as_bytes().get(self.cursor..).unwrap_or_default()
    }

    fn tail_len(&self) -> usize {
        self.line.len().saturating_sub(self.cursor)
    }

    fn refuse(&mut self, why: Refusal, out: &mut impl Echo) {
        self.refused.get_or_insert(why);
        out.write(&[BELL]);
    }

    fn insert(&mut self, byte: u8, out: &mut impl Echo) {
        if self.line.len() >= MAX_LINE {
            return self.refuse(Refusal::TooLong, out);
        }
        if self.line.try_reserve(1).is_err() {
            return self.refuse(Refusal::OutOfMemory, out);
        }
        // `cursor <= len` and the line is ASCII: a char boundary.
        self.line.insert(self.cursor, char::from(byte));
        out.write(self.tail());
        self.cursor = self.cursor.saturating_add(1);
        left(out, self.tail_len());
    }

    fn delete(&mut self, out: &mut impl Echo) {
        if self.cursor < self.line.len() {
            self.erase(self.cursor, self.cursor.saturating_add(1), out);
        }
    }

    /// Erases `start..end`, where the cursor is at `start` or `end`, and
    /// leaves the cursor at `start`.
    fn erase(&mut self, start: usize, end: usize, out: &mut impl Echo) {
        if start >= end || end > self.line.len() {
            return;
        }
        left(out, self.cursor.saturating_sub(start));
        self.line.drain(start..end);
        self.cursor = start;
        out.write(self.tail());
        let removed = end.saturating_sub(start);
        spaces(out, removed);
        left(out, self.tail_len().saturating_add(removed));
    }

    /// Where Ctrl-W's erase starts: before the spaces before the cursor and
    /// the word before them.
    fn word_start(&self) -> usize {
        let before = self.line.as_bytes().get(..self.cursor).unwrap_or_default();
        let word_end = before
            .iter()
            .rposition(|&b| b != b' ')
            .map_or(0, |i| i.saturating_add(1));
        before
            .get(..word_end)
            .unwrap_or_default()
            .iter()
            .rposition(|&b| b == b' ')
            .map_or(0, |i| i.saturating_add(1))
    }

    /// Replaces the line shown with `new`, cursor at its end.
    fn show(&mut self, new: String, out: &mut impl Echo) -> String {
        left(out, self.cursor);
        out.write(new.as_bytes());
        let old = core::mem::replace(&mut self.line, new);
        let shorter = old.len().saturating_sub(self.line.len());
        spaces(out, shorter);
        left(out, shorter);
        self.cursor = self.line.len();
        old
    }

    fn history_up(&mut self, out: &mut impl Echo) {
        let index = match self.browsing {
            None => self.history.len().checked_sub(1),
            Some(i) => i.checked_sub(1),
        };
        let Some(index) = index else { return };
        let Some(copy) = self.history.get(index).and_then(copy_of) else {
            out.write(&[BELL]);
            return;
        };
        let old = self.show(copy, out);
        if self.browsing.is_none() {
            self.draft = old;
        }
        self.browsing = Some(index);
    }

    fn history_down(&mut self, out: &mut impl Echo) {
        let Some(shown) = self.browsing else { return };
        let next = shown.saturating_add(1);
        if next < self.history.len() {
            let Some(copy) = self.history.get(next).and_then(copy_of) else {
                out.write(&[BELL]);
                return;
            };
            self.show(copy, out);
            self.browsing = Some(next);
        } else {
            let draft = core::mem::take(&mut self.draft);
            self.show(draft, out);
            self.browsing = None;
        }
    }

    /// Enter: the outcome for the line, which is then reset.
    fn submit(&mut self, out: &mut impl Echo) -> Outcome {
        out.write(b"\n");
        let outcome = match self.refused {
            Some(Refusal::TooLong) => Outcome::TooLong,
            Some(Refusal::OutOfMemory) => Outcome::OutOfMemory,
            None => {
                let line = core::mem::take(&mut self.line);
                self.remember(&line);
                Outcome::Line(line)
            }
        };
        self.end_line();
        outcome
    }

    /// Adds `line` to the history if it is not empty and not the newest
    /// entry already, and the memory can be had.
    fn remember(&mut self, line: &str) {
        if line.is_empty() || self.history.last().is_some_and(|last| last == line) {
            return;
        }
        self.history.push(line);
    }

    /// Forgets the line and frees its buffers, ready for the next one:
    /// between lines the editor holds only the prompt and the history.
    fn end_line(&mut self) {
        self.line = String::new();
        self.cursor = 0;
        self.refused = None;
        self.escape = Escape::Ground;
        self.browsing = None;
        self.draft = String::new();
    }
}

/// The key a CSI sequence with this first parameter and final byte is.
fn csi_key(first: u16, final_byte: u8) -> Option<Key> {
    match (final_byte, first) {
        (b'~', 1 | 7) => Some(Key::Home),
        (b'~', 4 | 8) => Some(Key::End),
        (b'~', 3) => Some(Key::Delete),
        (b'~', _) => None,
        (letter, _) => ss3_key(letter),
    }
}

/// The key an SS3 sequence (or a CSI one without `~`) ending in `letter`
/// is.
fn ss3_key(letter: u8) -> Option<Key> {
    Some(match letter {
        b'A' => Key::Up,
        b'B' => Key::Down,
        b'C' => Key::Right,
        b'D' => Key::Left,
        b'H' => Key::Home,
        b'F' => Key::End,
        _ => return None,
    })
}

/// A copy of `text`, or `None` if the memory cannot be had.
fn copy_of(text: &str) -> Option<String> {
    let mut copy = String::new();
    copy.try_reserve_exact(text.len()).ok()?;
    copy.push_str(text);
    Some(copy)
}

/// Moves the terminal's cursor `n` columns left.
fn left(out: &mut impl Echo, n: usize) {
    match n {
        0 => {}
        1 => out.write(&[BACKSPACE]),
        _ => {
            // `ESC [ n D`, n in decimal (at most 20 digits).
            let mut buf = [0u8; 23];
            let mut at = buf.len();
            at = at.saturating_sub(1);
            buf[at] = b'D';
            let mut rest = n;
            loop {
                at = at.saturating_sub(1);
                let digit = u8::try_from(rest % 10).unwrap_or(0);
                buf[at] = b'0' | digit;
                rest /= 10;
                if rest == 0 {
                    break;
                }
            }
            at = at.saturating_sub(2);
            buf[at] = ESCAPE;
            buf[at.saturating_add(1)] = b'[';
            out.write(buf.get(at..).unwrap_or_default());
        }
    }
}

/// Writes `n` spaces.
fn spaces(out: &mut impl Echo, n: usize) {
    const SPACES: [u8; 32] = [b' '; 32];
    let mut left = n;
    while left > 0 {
        let chunk = left.min(SPACES.len());
        out.write(SPACES.get(..chunk).unwrap_or_default());
        left = left.saturating_sub(chunk);
    }
}

#[cfg(test)]
mod tests;
