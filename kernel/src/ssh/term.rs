//! A channel of an SSH session as a [`Terminal`]: its command reads the
//! channel's stdin and writes its stdout and stderr through the `sshd`
//! crate, waiting (at safe points) while the client has not sent more or
//! cannot take more. With a pty the shell edits lines with echo, and `\n`
//! goes out as `\r\n`.

use alloc::sync::{Arc, Weak};

use sshd::{ChannelId, StdinRead, Stream};

use super::conn::Shared;
use crate::sched::{Signal, Stop, Thread, ThreadState};
use crate::sync::IrqMutex;
use crate::tty::Terminal;

/// One channel's terminal.
pub struct ChannelTerminal {
    shared: Arc<Shared>,
    channel: ChannelId,
    pty: bool,
    foreground: IrqMutex<Option<Weak<Thread>>>,
}

impl ChannelTerminal {
    pub(super) fn new(shared: Arc<Shared>, channel: ChannelId, pty: bool) -> Self {
        Self {
            shared,
            channel,
            pty,
            foreground: IrqMutex::new(None),
        }
    }

    /// An SSH `signal INT`, or Ctrl-C on the pty: interrupts the
    /// foreground job. False if there is none alive.
    pub(super) fn interrupt(&self) -> bool {
        let job = self.foreground.lock().as_ref().and_then(Weak::upgrade);
        match job.filter(|t| t.state() != ThreadState::Dead) {
            Some(thread) => {
                thread.signal(Signal::Interrupt);
                true
            }
            None => false,
        }
    }

    fn send(&self, stream: Stream, mut bytes: &[u8]) -> Result<(), Stop> {
        while !bytes.is_empty() {
            crate::sched::check_current()?;
            // Seen first: an end after it is a change that wakes the wait.
            let seen = self.shared.changes();
            if self.shared.ended() {
                return Err(Stop::Killed);
            }
            let written = self
                .shared
                .with(|c, _| c.write(self.channel, stream, bytes))?;
            match written {
                // The channel is gone: its command has no one to talk to.
                Err(_) => return Err(Stop::Killed),
                Ok(0) => self.shared.wait_change(seen)?,
                Ok(n) => {
                    bytes = &bytes[n..];
                    self.shared.bump();
                }
            }
        }
        Ok(())
    }

    fn send_lines(&self, stream: Stream, bytes: &[u8]) -> Result<(), Stop> {
        if !self.pty {
            return self.send(stream, bytes);
        }
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                self.send(stream, b"\r\n")?;
            }
            self.send(stream, line)?;
        }
        Ok(())
    }
}

impl Terminal for ChannelTerminal {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Stop> {
        loop {
            crate::sched::check_current()?;
            // Seen first: an end after it is a change that wakes the wait.
            let seen = self.shared.changes();
            // The connection is gone: its command has no one to talk to.
            if self.shared.ended() {
                return Err(Stop::Killed);
            }
            let read = self
                .shared
                .with(|c, host| c.read_stdin(self.channel, buf, host))?;
            match read {
                StdinRead::Data(n) => {
                    // Window credit may be due: let the connection send it.
                    self.shared.bump();
                    return Ok(n);
                }
                StdinRead::Eof | StdinRead::Gone => return Ok(0),
                StdinRead::WouldBlock => self.shared.wait_change(seen)?,
            }
        }
    }

    fn write(&self, bytes: &[u8]) -> Result<(), Stop> {
        self.send_lines(Stream::Stdout, bytes)
    }

    fn write_err(&self, bytes: &[u8]) -> Result<(), Stop> {
        self.send_lines(Stream::Stderr, bytes)
    }

    fn interactive(&self) -> bool {
        self.pty
    }

    fn set_foreground(&self, thread: Option<&Arc<Thread>>) {
        let weak = thread.map(Arc::downgrade);
        let old = core::mem::replace(&mut *self.foreground.lock(), weak);
        drop(old);
    }

    fn clear_foreground_if(&self, thread: &Thread) {
        let mut foreground = self.foreground.lock();
        if foreground
            .as_ref()
            .is_some_and(|w| core::ptr::eq(w.as_ptr(), thread))
        {
            let old = foreground.take();
            drop(foreground);
            drop(old);
        }
    }
}
