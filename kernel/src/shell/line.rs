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

/// Longest line accepted; a longer one is refused with a message.
pub const MAX_LINE: usize = 1024;

/// What reading a line produced.
pub enum Line {
    /// A line (without its newline).
    Text(String),
    /// Ctrl-C: the line was abandoned.
    Cancelled,
}

/// Where a terminal escape sequence stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Started,
    /// Inside `ESC [ ...`, until a final byte (`@` to `~`).
    Csi,
}

/// Reads one line, echoing it. Bytes are taken one at a time, so what was
/// typed ahead (the next lines) stays in the console for the next read.
///
/// # Errors
/// A fatal [`Errno`] if the shell is killed while waiting.
pub fn read_line() -> Result<Line, Errno> {
    let mut line = String::new();
    let mut overlong = false;
    let mut escape = Escape::None;
    let mut byte = [0u8; 1];
    loop {
        console::read(&mut byte)?;
        let b = byte[0];
        if AFTER_CR.swap(false, Relaxed) && b == b'\n' {
            continue;
        }
        match escape {
            Escape::Started => {
                escape = if b == b'[' { Escape::Csi } else { Escape::None };
                continue;
            }
            Escape::Csi => {
                if (0x40..=0x7e).contains(&b) {
                    escape = Escape::None;
                }
                continue;
            }
            Escape::None => {}
        }
        match b {
            b'\r' | b'\n' => {
                AFTER_CR.store(b == b'\r', Relaxed);
                console::write_bytes(b"\n");
                if overlong {
                    crate::kprintln!(
                        "sh: line too long ({MAX_LINE} characters at most); nothing run"
                    );
                    return Ok(Line::Cancelled);
                }
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
            ESCAPE => escape = Escape::Started,
            b if (0x20..0x7f).contains(&b) && line.len() < MAX_LINE => {
                line.push(char::from(b));
                console::write_bytes(&[b]);
            }
            b if (0x20..0x7f).contains(&b) => overlong = true,
            _ => {}
        }
    }
}
