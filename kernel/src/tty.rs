//! Terminals: where a session's shell reads its command lines and where its
//! commands read their input and write their output. The serial console is
//! one ([`crate::console::ConsoleTerminal`]); an SSH channel is another.
//!
//! Like a Unix tty, a terminal has a foreground job: the thread that Ctrl-C
//! (or an SSH `signal` request) interrupts. The process layer sets it when
//! it starts a foreground job and clears it when that job ends.
//!
//! Writes may block (an SSH peer that reads slowly): a write is a safe
//! point and returns [`Stop`] if the writer must stop.

use alloc::sync::Arc;
use core::fmt::{self, Write};

use crate::sched::{Stop, Thread};

/// A terminal.
pub trait Terminal: Send + Sync {
    /// Reads at least one byte of input into `buf`, blocking until some
    /// arrives; `Ok(0)` at the end of the input.
    ///
    /// # Errors
    /// The [`Stop`] if the reader must stop while waiting.
    fn read(&self, buf: &mut [u8]) -> Result<usize, Stop>;

    /// Writes all of `bytes` to the output (a `\n` is a new line: the
    /// terminal adds the `\r` its peer needs), blocking while the peer
    /// cannot take more.
    ///
    /// # Errors
    /// The [`Stop`] if the writer must stop while waiting.
    fn write(&self, bytes: &[u8]) -> Result<(), Stop>;

    /// Writes to the error output (stderr), where the terminal has one.
    ///
    /// # Errors
    /// As [`Terminal::write`].
    fn write_err(&self, bytes: &[u8]) -> Result<(), Stop> {
        self.write(bytes)
    }

    /// Whether a person types at it: the shell prompts and edits lines
    /// with echo. Otherwise lines are read as they come, without prompt.
    fn interactive(&self) -> bool;

    /// Makes `thread` the foreground job (`None`: none).
    fn set_foreground(&self, thread: Option<&Arc<Thread>>);

    /// Clears the foreground job if it is `thread`.
    fn clear_foreground_if(&self, thread: &Thread);
}

/// Bytes formatted before they are written: a line up to this long leaves
/// in one write.
const LINE: usize = 256;

/// A stack buffer that writes itself to a terminal when full or flushed.
struct LineBuf<'t> {
    term: &'t dyn Terminal,
    err: bool,
    buf: [u8; LINE],
    len: usize,
    result: Result<(), Stop>,
}

impl LineBuf<'_> {
    fn flush(&mut self) {
        if self.result.is_ok() && self.len > 0 {
            let bytes = &self.buf[..self.len];
            self.result = if self.err {
                self.term.write_err(bytes)
            } else {
                self.term.write(bytes)
            };
        }
        self.len = 0;
    }
}

impl Write for LineBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == LINE {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        if self.result.is_err() {
            return Err(fmt::Error);
        }
        Ok(())
    }
}

/// Formats `args` and writes them to `term`'s output (`err`: its error
/// output), a line at a time, without allocating.
///
/// # Errors
/// The [`Stop`] if a write had to stop.
pub fn print(term: &dyn Terminal, err: bool, args: fmt::Arguments<'_>) -> Result<(), Stop> {
    let mut line = LineBuf {
        term,
        err,
        buf: [0; LINE],
        len: 0,
        result: Ok(()),
    };
    let _ = line.write_fmt(args);
    line.flush();
    line.result
}
