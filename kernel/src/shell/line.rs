//! Reading a command line from the console with [`kcore::line_editor`]
//! (host-tested): keystrokes come one at a time from the console, so what
//! was typed ahead (the next lines) stays there for the next read; the
//! echo goes back to the console.
//!
//! The editor runs in a `fallible` scope: a keystroke its session cannot
//! afford is refused with a bell, never forced over the limit.

use kcore::line_editor::{Echo, LineEditor, Outcome};

use crate::console;
use crate::heap;
use crate::sched::Stop;

/// The console as the editor's echo.
struct ConsoleEcho;

impl Echo for ConsoleEcho {
    fn write(&mut self, bytes: &[u8]) {
        console::write_bytes(bytes);
    }
}

/// Prints `prompt` and reads one line with `editor`.
///
/// # Errors
/// The [`Stop`] if the shell must stop while waiting.
pub fn read_line(editor: &mut LineEditor, prompt: &str) -> Result<Outcome, Stop> {
    heap::fallible(|| editor.start(prompt, &mut ConsoleEcho));
    let mut byte = [0u8; 1];
    loop {
        console::read(&mut byte)?;
        if let Some(outcome) = heap::fallible(|| editor.feed(byte[0], &mut ConsoleEcho)) {
            return Ok(outcome);
        }
    }
}
