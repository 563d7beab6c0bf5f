//! One session channel (RFC 4254 §6): its stdin buffer and the window
//! backed by it, its output buffers, and where it is in its life.
//!
//! Invariants (checked in debug builds, relied on by the window policy):
//! - `stdin.len() + window <= stdin.capacity()`: every byte the client may
//!   still send has room already reserved for it, so receiving data never
//!   allocates and never drops anything.
//! - The stdin capacity only grows through a fallible reservation
//!   ([`Ring::resize`]): in the kernel that is a charge to the session's
//!   account that succeeded.
//! - Output buffers never exceed their capacity, reserved (fallibly) at the
//!   first write; a full buffer makes the producer wait.

use alloc::string::String;
use alloc::vec::Vec;

use crate::ring::Ring;

/// A channel as the host names it (our channel number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u32);

/// Which output stream of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output: `CHANNEL_DATA`.
    Stdout,
    /// Standard error: `CHANNEL_EXTENDED_DATA` with code 1.
    Stderr,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status (`exit-status`).
    Status(u32),
    /// It was killed by this signal, named without the `SIG` prefix (e.g.
    /// `KILL` for a process killed for memory), with a message
    /// (`exit-signal`).
    Signal {
        /// Signal name, e.g. `"KILL"`.
        name: String,
        /// A human-readable reason.
        message: String,
    },
}

/// A pseudo-terminal request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pty {
    /// `TERM`.
    pub term: String,
    /// Columns.
    pub cols: u32,
    /// Rows.
    pub rows: u32,
}

/// What to run for a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The `exec` text, or `None` for an interactive `shell`.
    pub exec: Option<String>,
    /// The pty, if one was requested.
    pub pty: Option<Pty>,
    /// `env` requests received before the command started.
    pub env: Vec<(String, String)>,
}

/// Where the command of a channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Open, waiting for `shell`/`exec`.
    Opened,
    /// The host has been told to start the command.
    Running,
    /// The host reported the exit; the status is queued to be sent once
    /// the output buffers have drained.
    Exited,
}

/// One session channel.
// The flags are independent protocol facts (EOF and CLOSE each way, a
// waiting producer), not a state machine in disguise.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug)]
pub struct Channel {
    /// Our number.
    pub id: ChannelId,
    /// The client's number.
    pub peer: u32,
    /// The command's state.
    pub phase: Phase,
    /// Requests gathered before the command starts.
    pub pty: Option<Pty>,
    /// `env` requests gathered before the command starts.
    pub env: Vec<(String, String)>,

    /// Received, not yet read by the command.
    pub stdin: Ring,
    /// Credit the client still has.
    pub window: usize,
    /// The client sent EOF.
    pub stdin_eof: bool,
    /// The largest `stdin.len() + window` seen.
    pub high_water: usize,
    /// Slow start: the most this channel's target may be now (0 until the
    /// first credit sets it to the policy's `initial`); doubles each time
    /// the client has sent half of it, up to the policy's `max`. A command
    /// that never reads its stdin so holds a small reservation, not a
    /// share of the session's headroom.
    pub ramp: usize,
    /// Bytes received since `ramp` last grew.
    pub received: usize,

    /// The client's window for our output.
    pub peer_window: usize,
    /// The client's maximum packet size.
    pub peer_max_packet: usize,
    /// Output not yet sent.
    pub stdout: Ring,
    /// Standard error not yet sent.
    pub stderr: Ring,
    /// The client takes no more output.
    pub output_closed: bool,
    /// A producer was told to wait; tell it when there is room again.
    pub writer_blocked: bool,
    /// How the command ended, until sent.
    pub exit: Option<Exit>,
    /// EOF sent.
    pub eof_sent: bool,
    /// CLOSE sent.
    pub close_sent: bool,
    /// CLOSE received.
    pub close_received: bool,
}

impl Channel {
    /// A channel just opened by the client.
    pub fn new(id: ChannelId, peer: u32, peer_window: u32, peer_max_packet: u32) -> Self {
        Self {
            id,
            peer,
            phase: Phase::Opened,
            pty: None,
            env: Vec::new(),
            stdin: Ring::default(),
            window: 0,
            stdin_eof: false,
            high_water: 0,
            ramp: 0,
            received: 0,
            peer_window: usize::try_from(peer_window).unwrap_or(usize::MAX),
            peer_max_packet: usize::try_from(peer_max_packet).unwrap_or(usize::MAX),
            stdout: Ring::default(),
            stderr: Ring::default(),
            output_closed: false,
            writer_blocked: false,
            exit: None,
            eof_sent: false,
            close_sent: false,
            close_received: false,
        }
    }

    /// Accepts received data. The caller checked it is within the window.
    pub fn receive(&mut self, data: &[u8]) {
        debug_assert!(data.len() <= self.window);
        self.window -= data.len();
        self.received = self.received.saturating_add(data.len());
        // Room was reserved when the window was granted: no allocation.
        let n = self.stdin.push(data);
        debug_assert_eq!(n, data.len());
        debug_assert!(self.stdin.len() + self.window <= self.stdin.capacity());
    }

    /// As [`Channel::receive`] for a pty: each interrupt character is
    /// offered to `interrupt` first and kept in stdin only if it declines.
    pub fn receive_pty(&mut self, data: &[u8], intr: u8, mut interrupt: impl FnMut() -> bool) {
        debug_assert!(data.len() <= self.window);
        self.window -= data.len();
        self.received = self.received.saturating_add(data.len());
        for (i, part) in data.split(|&b| b == intr).enumerate() {
            if i > 0 && !interrupt() {
                self.stdin.push(&[intr]);
            }
            self.stdin.push(part);
        }
    }

    /// Moves up to `buf.len()` bytes of stdin to `buf`.
    pub fn read_stdin(&mut self, buf: &mut [u8]) -> usize {
        self.stdin.pop_into(buf)
    }

    /// Grows or shrinks the stdin reservation towards `target` and returns
    /// the credit to grant now (already added to `window`).
    pub fn recredit(&mut self, policy: &crate::window::WindowPolicy, target: usize) -> usize {
        if self.ramp == 0 {
            self.ramp = policy.initial.max(policy.min);
        } else if self.received >= self.ramp / 2 {
            self.ramp = self
                .ramp
                .saturating_mul(2)
                .min(policy.max.max(policy.initial));
            self.received = 0;
        }
        let target = target.min(self.ramp);
        let held = self.stdin.len() + self.window;
        // Shrink: give back what the target no longer covers, once the
        // excess is worth a copy (small swings in headroom must not resize
        // on every read). A failed shrink (the smaller buffer is allocated
        // before the old one is freed) keeps the old one.
        let keep = target.max(held);
        let excess = self.stdin.capacity().saturating_sub(keep);
        if excess > 0 && excess >= (keep / 4).max(policy.min) {
            let _ = self.stdin.resize(keep);
        }
        if self.stdin_eof || self.close_received {
            return 0;
        }
        let mut credit = policy.credit(target, self.stdin.len(), self.window);
        // Credit only what is reserved: reserve first, fallibly, halving on
        // refusal.
        while credit > 0 {
            let need = held + credit;
            if need <= self.stdin.capacity() || self.stdin.resize(need).is_ok() {
                break;
            }
            credit /= 2;
            if credit < policy.min {
                credit = 0;
            }
        }
        // Never more than a u32 outstanding.
        let credit = credit.min((u32::MAX as usize).saturating_sub(self.window));
        self.window += credit;
        self.high_water = self.high_water.max(self.stdin.len() + self.window);
        debug_assert!(self.stdin.len() + self.window <= self.stdin.capacity());
        credit
    }

    /// Queues command output, at most `cap` bytes per stream buffered.
    /// Returns how much was taken (0: the producer must wait).
    pub fn write(&mut self, stream: Stream, data: &[u8], cap: usize) -> usize {
        let buf = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        if buf.capacity() < cap && buf.resize(cap).is_err() {
            self.writer_blocked = true;
            return 0;
        }
        let n = buf.push(data);
        if n < data.len() {
            self.writer_blocked = true;
        }
        n
    }

    /// Bytes this channel holds in reserved buffers.
    pub fn reserved(&self) -> usize {
        self.stdin.capacity() + self.stdout.capacity() + self.stderr.capacity()
    }
}
