//! What the host provides (clock, randomness, memory headroom, a pty's
//! interrupts) and the
//! settings it starts connections with.

use crate::auth::Credentials;
use crate::channel::ChannelId;
use crate::kex::HostKey;
use crate::window::{Headroom, WindowPolicy};

/// A monotonic clock.
pub trait Clock {
    /// Milliseconds since any fixed point.
    fn now_ms(&self) -> u64;
}

/// A cryptographically secure random source.
pub trait Random {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// Interrupts from a pty, as a terminal's line discipline raises them.
pub trait Interrupts {
    /// The client typed the interrupt character ([`INTR`], Ctrl-C) on the
    /// pty of `channel`: interrupt the command's foreground job. Returns
    /// whether there was one to interrupt; if not, the byte stays in stdin
    /// (a line editor that reads it abandons its line).
    fn interrupt(&mut self, channel: ChannelId) -> bool;
}

/// The interrupt character of a pty (`VINTR`; its `pty-req` mode is not
/// honoured: always Ctrl-C).
pub const INTR: u8 = 0x03;

/// Everything a connection needs from its host.
pub trait Host: Clock + Random + Headroom + Interrupts {}
impl<T: Clock + Random + Headroom + Interrupts + ?Sized> Host for T {}

/// Server settings shared by connections.
#[derive(Debug, Clone)]
pub struct Config {
    /// The host key.
    pub host_key: HostKey,
    /// Who may log in.
    pub credentials: Credentials,
    /// Our version line, without CR LF.
    pub version: &'static str,
    /// Refused attempts before disconnecting (OpenSSH `MaxAuthTries`).
    pub max_auth_tries: u32,
    /// Time to authenticate (OpenSSH `LoginGraceTime`).
    pub login_grace_ms: u64,
    /// Bytes (both ways) after which we start a re-exchange.
    pub rekey_bytes: u64,
    /// Time after which we start a re-exchange.
    pub rekey_ms: u64,
    /// Inbound window sizing.
    pub window: WindowPolicy,
    /// Session channels open at once (OpenSSH `MaxSessions`).
    pub max_channels: usize,
    /// Capacity of each output buffer (stdout, stderr) of a channel.
    pub output_buffer: usize,
    /// Encoded bytes waiting to be sent above which no more channel data
    /// is encoded.
    pub send_queue: usize,
    /// The maximum packet size we advertise for channel data.
    pub max_packet: u32,
}

impl Config {
    /// Defaults modelled on OpenSSH: 6 tries, 120 s grace, re-exchange
    /// every 1 GiB or hour, 10 channels, 32 KiB packets; 64 KiB output
    /// buffers and send queue.
    pub fn new(host_key: HostKey, credentials: Credentials) -> Self {
        Self {
            host_key,
            credentials,
            version: "SSH-2.0-quota_sshd_0.1",
            max_auth_tries: 6,
            login_grace_ms: 120_000,
            rekey_bytes: 1 << 30,
            rekey_ms: 3_600_000,
            window: WindowPolicy::default(),
            max_channels: 10,
            output_buffer: 64 * 1024,
            send_queue: 64 * 1024,
            max_packet: 32 * 1024,
        }
    }
}
