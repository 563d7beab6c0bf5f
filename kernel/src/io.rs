//! What a running command sees: its process, arguments and output, and the
//! blocking calls that are its safe points.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use crate::proc::{Errno, Process};
use crate::{console, sched, vfs};

/// Where a command's output goes.
pub enum Output {
    /// The serial console.
    Console,
    /// A file (`>`): each write is one write to the file.
    File(String),
}

/// A running command's context.
pub struct Ctx<'p> {
    /// Its process.
    pub process: &'p Arc<Process>,
    /// Its arguments, the command name first.
    pub args: Vec<String>,
    /// Its output.
    pub out: Output,
}

impl Ctx<'_> {
    /// A safe point: fails if the process must stop.
    ///
    /// # Errors
    /// Killed, interrupted or out of memory.
    pub fn check(&self) -> Result<(), Errno> {
        self.process.check_alive()
    }

    /// Writes `bytes` to the output (a safe point).
    ///
    /// # Errors
    /// A fatal [`Errno`], or [`Errno::Invalid`] after reporting a file error.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Errno> {
        self.check()?;
        match &self.out {
            Output::Console => {
                console::write_bytes(bytes);
                Ok(())
            }
            Output::File(path) => vfs::write(self.process, path, bytes).map_err(|e| {
                crate::kprintln!("{}: {path}: {e}", self.process.name);
                Errno::Invalid
            }),
        }
    }

    /// Writes formatted text (a safe point).
    ///
    /// # Errors
    /// As [`Ctx::write`].
    pub fn print(&mut self, args: fmt::Arguments<'_>) -> Result<(), Errno> {
        match &self.out {
            Output::Console => {
                self.check()?;
                console::print(args);
                Ok(())
            }
            Output::File(_) => {
                let mut buf = vfs::Buffer(Vec::new());
                buf.write_fmt(args).map_err(|_| Errno::NoMemory)?;
                self.write(&buf.0)
            }
        }
    }

    /// Reports an error on the console (stderr), prefixed with the command.
    pub fn error(&self, args: fmt::Arguments<'_>) {
        crate::kprintln!("{}: {args}", self.process.name);
    }

    /// Sleeps `ticks` timer ticks (a safe point).
    ///
    /// # Errors
    /// A fatal [`Errno`].
    pub fn sleep(&self, ticks: u64) -> Result<(), Errno> {
        sched::sleep_until(crate::irq::ticks().saturating_add(ticks))?;
        self.check()
    }

    /// Gives up the CPU (a safe point).
    ///
    /// # Errors
    /// A fatal [`Errno`].
    pub fn yield_now(&self) -> Result<(), Errno> {
        self.check()?;
        sched::yield_now();
        self.check()
    }
}

/// Prints to a command's output: `out!(ctx, "...", args)?`.
#[macro_export]
macro_rules! out {
    ($ctx:expr, $($arg:tt)*) => { $ctx.print(format_args!($($arg)*)) };
}

/// Prints a line to a command's output, in one write (a write to a
/// `memquota` file is one request, so the newline must not come apart).
#[macro_export]
macro_rules! outln {
    ($ctx:expr) => { $ctx.write(b"\n") };
    ($ctx:expr, $($arg:tt)*) => {
        $ctx.print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
