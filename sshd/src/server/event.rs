//! What a connection tells its host: events to act on, results of the
//! stdin and output calls, and why it ended.

use alloc::string::String;

use crate::channel::{ChannelId, Command};

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// The RFC 4253 §11.1 reason code.
    pub code: u32,
    /// What happened.
    pub reason: String,
    /// The peer ended it (DISCONNECT received or input closed).
    pub by_peer: bool,
}

/// RFC 4253 §11.1 reason codes used here.
pub mod reason {
    /// `SSH_DISCONNECT_PROTOCOL_ERROR`
    pub const PROTOCOL_ERROR: u32 = 2;
    /// `SSH_DISCONNECT_KEY_EXCHANGE_FAILED`
    pub const KEY_EXCHANGE_FAILED: u32 = 3;
    /// `SSH_DISCONNECT_MAC_ERROR`
    pub const MAC_ERROR: u32 = 5;
    /// `SSH_DISCONNECT_PROTOCOL_VERSION_NOT_SUPPORTED`
    pub const VERSION_NOT_SUPPORTED: u32 = 9;
    /// `SSH_DISCONNECT_BY_APPLICATION`
    pub const BY_APPLICATION: u32 = 11;
    /// `SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE`
    pub const NO_MORE_AUTH_METHODS: u32 = 14;
}

/// What the host must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The user logged in.
    Authenticated {
        /// The user name given (every session is an ordinary session).
        user: String,
    },
    /// Start this command for the channel.
    Start {
        /// The channel.
        channel: ChannelId,
        /// What to run.
        command: Command,
    },
    /// Stdin has data for the channel's command.
    StdinReady(ChannelId),
    /// The client sent EOF: once the buffered stdin is read, stdin ends.
    Eof(ChannelId),
    /// The channel's output buffer has room again.
    Writable(ChannelId),
    /// The terminal size changed.
    WindowChange {
        /// The channel.
        channel: ChannelId,
        /// Columns.
        cols: u32,
        /// Rows.
        rows: u32,
    },
    /// The client sent a signal (e.g. `INT`).
    Signal {
        /// The channel.
        channel: ChannelId,
        /// Signal name without `SIG`.
        name: String,
    },
    /// The channel is gone: stop its command if it still runs.
    Closed(ChannelId),
}

/// The result of [`Connection::read_stdin`](super::Connection::read_stdin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinRead {
    /// This many bytes were read.
    Data(usize),
    /// Nothing buffered yet: wait for [`Event::StdinReady`] or [`Event::Eof`].
    WouldBlock,
    /// End of stdin.
    Eof,
    /// No such channel (closed).
    Gone,
}

/// The channel is closed; the command should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// Statistics of one channel's stdin side, for tests and `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdinStats {
    /// Buffered, unread.
    pub buffered: usize,
    /// Outstanding window.
    pub window: usize,
    /// Reserved for the buffer.
    pub reserved: usize,
    /// Largest `buffered + window` so far.
    pub high_water: usize,
}
