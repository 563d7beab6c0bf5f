//! The SSH server of the quota kernel: a sans-IO SSH-2 server whose
//! channel windows are backed by memory it has actually reserved.
//!
//! `sunset` 0.6 is used only as protocol vocabulary (message types and
//! their wire encoding, algorithm names, the ed25519 re-export); the binary
//! packet protocol, key exchange, authentication and the connection state
//! machine are this crate's own:
//!
//! | module | what |
//! |---|---|
//! | [`wire`] | packet framing (length, padding, 256 KiB cap), `chacha20-poly1305@openssh.com`, hand-written SSH data types |
//! | [`kex`] | `curve25519-sha256`, the `ssh-ed25519` host key, strict kex, key derivation |
//! | [`auth`] | `publickey` (ed25519, `authorized_keys` lines, query form) and optional `password` |
//! | [`channel`] | one session channel: its stdin buffer, window and output buffers |
//! | [`window`] | the window policy: targets from the session's memory headroom |
//! | [`ring`] | the byte ring buffer whose capacity only changes fallibly |
//! | [`server`] | [`Connection`], the state machine the host drives |
//!
//! # Driving a connection
//! The host owns the socket, the clock, the randomness and the commands
//! ([`Host`] = [`Clock`] + [`Random`] + [`Headroom`]). It feeds received
//! bytes to [`Connection::input`], sends [`Connection::output`] and
//! acknowledges it with [`Connection::consume_output`], handles each
//! [`Event`] (start a command, stdin ready, output room, signal, window
//! change, closed), moves stdin with [`Connection::read_stdin`] and output
//! with [`Connection::write`], reports a command's end with
//! [`Connection::exit`], and calls [`Connection::poll`] now and then for the
//! timers. The [`server`] module states the full contract.
//!
//! # Memory
//! Everything a connection holds is bounded: the packet being received
//! (at most 256 KiB), the encoded output (a configured send queue of channel
//! data plus control messages), replies held during a key exchange (64 KiB,
//! beyond which the peer is disconnected), undelivered events (256, after
//! which input is no longer consumed),
//! each channel's output buffers (configured, reserved fallibly), and each
//! channel's stdin buffer, which is exactly as large as the window granted
//! for it, reserved fallibly before the credit is sent.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod auth;
pub mod channel;
pub mod kex;
pub mod ring;
pub mod server;
pub mod window;
pub mod wire;

pub use auth::{AuthorizedKey, Credentials};
pub use channel::{ChannelId, Command, Exit, Pty, Stream};
pub use kex::HostKey;
pub use server::{
    Clock, Config, Connection, Disconnect, Event, Gone, Host, INTR, Interrupts, Random, StdinRead,
    StdinStats,
};
pub use window::{Headroom, WindowPolicy};
