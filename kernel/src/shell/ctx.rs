//! What a running command sees: its process, arguments and output, and the
//! calls that are its safe points.
//!
//! A command returns its exit code, or an [`Abort`]: either a [`Stop`] from
//! a safe point (the process must end; only the process's run loop turns
//! it into a status), or [`Abort::Output`] when its output can no longer be
//! written (already reported; the command ends with status 1, as a Unix
//! command does when its output fails).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use crate::fs::{self, Buffer};
use crate::heap;
use crate::proc::Process;
use crate::sched::{self, Stop};
use crate::tty::{self, Terminal};

/// Where a command's output goes.
pub enum Output {
    /// Its terminal.
    Terminal,
    /// A file (`>`): each write is one write to the file.
    File(String),
}

/// Why a command ends before it returns a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abort {
    /// Its process must stop.
    Stop(Stop),
    /// Its output failed; the error was reported. Exit status 1.
    Output,
}

impl From<Stop> for Abort {
    fn from(stop: Stop) -> Self {
        Abort::Stop(stop)
    }
}

/// Exit status of a command whose output failed.
const OUTPUT_FAILED: i32 = 1;

/// A command's outcome as its process's run loop takes it.
pub fn finish(result: Result<i32, Abort>) -> Result<i32, Stop> {
    match result {
        Ok(code) => Ok(code),
        Err(Abort::Output) => Ok(OUTPUT_FAILED),
        Err(Abort::Stop(stop)) => Err(stop),
    }
}

/// A running command's context.
pub struct Ctx<'p> {
    /// Its process.
    pub process: &'p Arc<Process>,
    /// Its arguments, the command name first.
    pub args: Vec<String>,
    /// Its output.
    pub out: Output,
    /// Its terminal: its input, its error output, and its output unless
    /// that goes to a file.
    pub term: Arc<dyn Terminal>,
}

impl Ctx<'_> {
    /// A safe point: fails if the process must stop.
    ///
    /// # Errors
    /// The [`Stop`].
    pub fn check(&self) -> Result<(), Stop> {
        debug_assert!(
            sched::with_current(|t| crate::proc::of_thread(t)
                .is_some_and(|p| alloc::sync::Arc::ptr_eq(p, self.process))),
            "a command's safe point runs on its own process's thread"
        );
        sched::check_current()
    }

    /// Writes `bytes` to the output (a safe point).
    ///
    /// # Errors
    /// [`Abort::Stop`], or [`Abort::Output`] after reporting a file error.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Abort> {
        self.check()?;
        match &self.out {
            Output::Terminal => Ok(self.term.write(bytes)?),
            Output::File(path) => fs::write(self.process, path, bytes).map_err(|e| {
                self.error(format_args!("{path}: {e}"));
                Abort::Output
            }),
        }
    }

    /// Writes formatted text (a safe point).
    ///
    /// # Errors
    /// As [`Ctx::write`]; formatting into a file's buffer that the account
    /// refuses is reported as an output failure.
    pub fn print(&mut self, args: fmt::Arguments<'_>) -> Result<(), Abort> {
        match &self.out {
            Output::Terminal => {
                self.check()?;
                Ok(tty::print(&*self.term, false, args)?)
            }
            Output::File(path) => {
                let mut buf = Buffer(Vec::new());
                if buf.write_fmt(args).is_err() {
                    self.error(format_args!(
                        "{path}: {}",
                        fs::FsError::NoMemory(heap::NoMemory::last())
                    ));
                    return Err(Abort::Output);
                }
                self.write(&buf.0)
            }
        }
    }

    /// Reads at least one byte of its input (a safe point); `Ok(0)` at the
    /// end of the input.
    ///
    /// # Errors
    /// The [`Stop`].
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Stop> {
        self.check()?;
        self.term.read(buf)
    }

    /// Reports an error on its terminal's error output, prefixed with the
    /// command. (If that write has to stop, the next safe point says so.)
    pub fn error(&self, args: fmt::Arguments<'_>) {
        let name = &self.process.name;
        let _ = tty::print(&*self.term, true, format_args!("{name}: {args}\n"));
    }

    /// Sleeps `ticks` timer ticks (a safe point).
    ///
    /// # Errors
    /// The [`Stop`].
    pub fn sleep(&self, ticks: u64) -> Result<(), Stop> {
        sched::sleep_until(crate::time::ticks().saturating_add(ticks))?;
        self.check()
    }

    /// Gives up the CPU (a safe point).
    ///
    /// # Errors
    /// The [`Stop`].
    pub fn yield_now(&self) -> Result<(), Stop> {
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
