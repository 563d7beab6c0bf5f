//! Reading a command line from a terminal. An interactive terminal gets
//! [`kcore::line_editor`] (host-tested): keystrokes are taken one at a
//! time, so what was typed ahead stays there for the next read, and the
//! echo goes back to the terminal. Other terminals (an SSH session without
//! a pty, fed by a pipe) are read a line at a time, with no prompt or echo.
//!
//! The editor runs in a `fallible` scope: a keystroke its session cannot
//! afford is refused with a bell, never forced over the limit.

use alloc::string::String;

use kcore::line_editor::{Echo, LineEditor, MAX_LINE, Outcome};

use crate::heap;
use crate::sched::Stop;
use crate::tty::Terminal;

/// A terminal as the editor's echo. A write that has to stop is dropped
/// here: the next read is a safe point and reports it.
struct TermEcho<'t>(&'t dyn Terminal);

impl Echo for TermEcho<'_> {
    fn write(&mut self, bytes: &[u8]) {
        let _ = self.0.write(bytes);
    }
}

/// Prints `prompt` and reads one line with `editor` from an interactive
/// terminal; the end of the input is [`Outcome::Eof`].
///
/// # Errors
/// The [`Stop`] if the shell must stop while waiting.
pub fn read_line(
    editor: &mut LineEditor,
    prompt: &str,
    term: &dyn Terminal,
) -> Result<Outcome, Stop> {
    heap::fallible(|| editor.start(prompt, &mut TermEcho(term)));
    let mut byte = [0u8; 1];
    loop {
        if term.read(&mut byte)? == 0 {
            return Ok(Outcome::Eof);
        }
        if let Some(outcome) = heap::fallible(|| editor.feed(byte[0], &mut TermEcho(term))) {
            return Ok(outcome);
        }
    }
}

/// Reads one line (without its `\n`, and a `\r` before it) from a
/// terminal nobody types at: `None` at the end of the input; a line longer
/// than [`MAX_LINE`] is [`Outcome::TooLong`], one the session cannot
/// afford [`Outcome::OutOfMemory`].
///
/// # Errors
/// The [`Stop`] if the shell must stop while waiting.
pub fn read_plain(term: &dyn Terminal) -> Result<Option<Outcome>, Stop> {
    let mut line = String::new();
    let mut refused = None;
    let mut byte = [0u8; 1];
    loop {
        if term.read(&mut byte)? == 0 {
            return Ok((!line.is_empty() || refused.is_some())
                .then(|| refused.unwrap_or(Outcome::Line(line))));
        }
        match byte[0] {
            b'\n' => {
                if line.ends_with('\r') {
                    line.pop();
                }
                return Ok(Some(refused.unwrap_or(Outcome::Line(line))));
            }
            _ if refused.is_some() => {}
            _ if line.len() >= MAX_LINE => refused = Some(Outcome::TooLong),
            b => {
                if heap::fallible(|| line.try_reserve(1)).is_err() {
                    refused = Some(Outcome::OutOfMemory);
                } else {
                    line.push(char::from(b));
                }
            }
        }
    }
}
