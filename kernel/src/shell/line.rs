//! Reading a command line from the console, with editing: backspace,
//! Ctrl-U (erase the line), Ctrl-C (abandon it); escape sequences (arrow
//! keys) are ignored. Each keystroke is echoed as it is typed.

use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::console;
use crate::proc::Errno;

const BACKSPACE: u8 = 0x08;
const DELETE: u8 = 0x7f;
const CTRL_U: u8 = 0x15;
const ESCAPE: u8 = 0x1b;

/// The last line ended with `\r`: a `\n` right after it is the same Enter.
static AFTER_CR: AtomicBool = AtomicBool::new(false);

/// Longest line accepted; typing past it rings no bell but is dropped.
pub const MAX_LINE: usize = 1024;

/// What reading a line produced.
pub enum Line {
    /// A line (without its newline).
    Text(String),
    /// Ctrl-C: the line was abandoned.
    Cancelled,
}

/// Reads one line, echoing it.
///
/// # Errors
/// A fatal [`Errno`] if the shell is killed while waiting.
pub fn read_line() -> Result<Line, Errno> {
    let mut line = String::new();
    let mut escape = 0u8;
    let mut buf = [0u8; 64];
    loop {
        let n = console::read(&mut buf)?;
        for &b in &buf[..n] {
            if AFTER_CR.swap(false, Relaxed) && b == b'\n' {
                continue;
            }
            if escape > 0 {
                // ESC [ X: skip the rest of a short CSI sequence.
                escape = if escape == 1 && b == b'[' { 2 } else { 0 };
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    AFTER_CR.store(b == b'\r', Relaxed);
                    console::write_bytes(b"\n");
                    return Ok(Line::Text(line));
                }
                console::CTRL_C => {
                    console::write_bytes(b"^C\n");
                    return Ok(Line::Cancelled);
                }
                BACKSPACE | DELETE if line.pop().is_some() => console::write_bytes(b"\x08 \x08"),
                CTRL_U => {
                    for _ in 0..line.chars().count() {
                        console::write_bytes(b"\x08 \x08");
                    }
                    line.clear();
                }
                ESCAPE => escape = 1,
                b if (0x20..0x7f).contains(&b) && line.len() < MAX_LINE => {
                    line.push(char::from(b));
                    console::write_bytes(&[b]);
                }
                _ => {}
            }
        }
    }
}
