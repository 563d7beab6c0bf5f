//! The connection state machine: one SSH connection from the version line
//! to the last channel, driven by the host without any IO of its own.
//!
//! # Contract
//! - Bytes from the peer go to [`Connection::input`], which consumes what
//!   it can and returns how many it took. It takes fewer (even 0) when the
//!   bytes waiting to be sent or the undelivered events are over their
//!   bounds: keep the rest, send the output, handle the events, and offer
//!   the rest again. This is the only back-pressure on the peer besides the
//!   channel windows, and the windows keep a compliant peer well inside it.
//! - Replies to requests that arrive after we started a key re-exchange
//!   and before the peer's KEXINIT are held until the exchange ends (RFC
//!   4253 §7.1). They are bounded (64 KiB) by disconnecting, not by reading
//!   less: the peer's KEXINIT is behind those requests, so not reading them
//!   would hang the connection for good.
//! - Bytes to send are [`Connection::output`]; after sending `n` of them
//!   call [`Connection::consume_output`]. The output never holds more than
//!   the configured send queue of channel data; control messages (kex, EOF,
//!   CLOSE, window adjusts, request replies) bypass that bound, so they never
//!   wait behind data.
//! - [`Connection::event`] yields what the host must act on: start a
//!   command, stdin is readable, output has room again, a signal, a window
//!   change, a channel closed.
//! - A command's stdin is pulled with [`Connection::read_stdin`]; credit is
//!   granted back to the client only as it is pulled. Its output is pushed
//!   with [`Connection::write`], which takes what fits in the channel's
//!   bounded buffer (0 means wait for [`Event::Writable`]). Its end is
//!   reported with [`Connection::exit`]; exit-status, EOF and CLOSE follow
//!   once its output is sent.
//! - [`Connection::poll`] runs the timers (login grace time, time-based
//!   re-exchange); call it now and then, e.g. once a second.
//! - Any `Err(Disconnect)` is final: a DISCONNECT message is queued (unless
//!   the peer ended it), send what [`Connection::output`] holds and close:
//!   half-close and discard input for a moment, so the peer reads the
//!   DISCONNECT rather than a reset.

mod channels;
mod event;
mod host;
#[cfg(test)]
mod tests;

pub use event::{Disconnect, Event, Gone, StdinRead, StdinStats, reason};
pub use host::{Clock, Config, Host, INTR, Interrupts, Random};

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use sunset::sshnames::SSH_SERVICE_USERAUTH;

use crate::auth::{self, Outcome};
use crate::channel::{Channel, ChannelId, Exit, Phase, Stream};
use crate::kex::{self, KexRun, msg as kmsg};
use crate::wire::codec::{Reader, put_string, put_u32};
use crate::wire::framing::{Decoder, Encoder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Version,
    FirstKex,
    Service,
    Auth,
    Connected,
}

const MAX_VERSION_LINE: usize = 255;
const MAX_PRE_VERSION: usize = 8 * 1024;
const MAX_EVENTS: usize = 256;
/// Replies held during a key exchange; more ends the connection.
const MAX_DEFERRED: usize = 64 * 1024;
const MAX_ENV: usize = 64;

mod m {
    pub const DISCONNECT: u8 = 1;
    pub const IGNORE: u8 = 2;
    pub const UNIMPLEMENTED: u8 = 3;
    pub const DEBUG: u8 = 4;
    pub const SERVICE_REQUEST: u8 = 5;
    pub const SERVICE_ACCEPT: u8 = 6;
    pub const GLOBAL_REQUEST: u8 = 80;
    pub const REQUEST_FAILURE: u8 = 82;
    pub const CHANNEL_OPEN: u8 = 90;
    pub const OPEN_CONFIRMATION: u8 = 91;
    pub const OPEN_FAILURE: u8 = 92;
    pub const WINDOW_ADJUST: u8 = 93;
    pub const DATA: u8 = 94;
    pub const EXTENDED_DATA: u8 = 95;
    pub const EOF: u8 = 96;
    pub const CLOSE: u8 = 97;
    pub const REQUEST: u8 = 98;
    pub const SUCCESS: u8 = 99;
    pub const FAILURE: u8 = 100;
}

/// One SSH connection.
#[derive(Debug)]
pub struct Connection {
    cfg: Arc<Config>,
    stage: Stage,
    started_ms: u64,
    pre_version: usize,
    line: Vec<u8>,
    v_c: Vec<u8>,
    dec: Decoder,
    enc: Encoder,
    scratch: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    deferred: VecDeque<Vec<u8>>,
    deferred_bytes: usize,
    kex: Option<KexRun>,
    session_id: Option<[u8; 32]>,
    strict: bool,
    bytes_since_kex: u64,
    kex_at_ms: u64,
    auth_failures: u32,
    user: Option<String>,
    channels: Vec<Channel>,
    next_id: u32,
    events: VecDeque<Event>,
    closed: Option<Disconnect>,
}

impl Connection {
    /// A new connection; our version line and KEXINIT are queued at once.
    pub fn new(cfg: Arc<Config>, host: &mut (impl Host + ?Sized)) -> Self {
        let now = host.now_ms();
        let mut c = Self {
            cfg,
            stage: Stage::Version,
            started_ms: now,
            pre_version: 0,
            line: Vec::new(),
            v_c: Vec::new(),
            dec: Decoder::default(),
            enc: Encoder::default(),
            scratch: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            deferred: VecDeque::new(),
            deferred_bytes: 0,
            kex: None,
            session_id: None,
            strict: false,
            bytes_since_kex: 0,
            kex_at_ms: now,
            auth_failures: 0,
            user: None,
            channels: Vec::new(),
            next_id: 0,
            events: VecDeque::new(),
            closed: None,
        };
        c.out.extend_from_slice(c.cfg.version.as_bytes());
        c.out.extend_from_slice(b"\r\n");
        c.start_kex(host);
        c
    }

    /// The user name, once authenticated.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// How far the peer has got towards logging in, for choosing which
    /// waiting connection to drop: 0 before its KEXINIT, 1 once its KEXINIT
    /// arrived, 2 once the first key exchange is done (and from then on).
    pub fn progress(&self) -> u8 {
        match self.stage {
            Stage::Version => 0,
            Stage::FirstKex => u8::from(self.kex.as_ref().is_some_and(|k| k.theirs.is_some())),
            Stage::Service | Stage::Auth | Stage::Connected => 2,
        }
    }

    /// Why the connection ended, if it did.
    pub fn closed(&self) -> Option<&Disconnect> {
        self.closed.as_ref()
    }

    /// Bytes to send.
    pub fn output(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Marks `n` bytes of [`Self::output`] as sent.
    pub fn consume_output(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            if self.out.capacity() > 2 * self.cfg.send_queue + 64 * 1024 {
                self.out.shrink_to(self.cfg.send_queue);
            }
        } else if self.out_pos > self.out.len() / 2 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        self.flush();
    }

    /// The next thing the host must act on.
    pub fn event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes this connection holds in channel buffers (stdin reservations
    /// and output buffers).
    pub fn reserved_bytes(&self) -> usize {
        self.channels.iter().map(Channel::reserved).sum()
    }

    /// The stdin side of a channel.
    pub fn stdin_stats(&self, ch: ChannelId) -> Option<StdinStats> {
        self.chan(ch).map(|c| StdinStats {
            buffered: c.stdin.len(),
            window: c.window,
            reserved: c.stdin.capacity(),
            high_water: c.high_water,
        })
    }

    /// Open channels.
    pub fn channels(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.channels.iter().map(|c| c.id)
    }

    /// Ends the connection with a DISCONNECT the client will show (e.g.
    /// refusing a new session when memory is short). Send what
    /// [`Self::output`] holds, then close.
    pub fn disconnect(&mut self, why: &str) -> Disconnect {
        self.fail(reason::BY_APPLICATION, why)
    }

    /// The peer closed its side of the transport.
    pub fn close_input(&mut self) {
        if self.closed.is_none() {
            self.closed = Some(Disconnect {
                code: 0,
                reason: "connection closed".into(),
                by_peer: true,
            });
        }
    }

    /// Runs the timers.
    ///
    /// # Errors
    /// [`Disconnect`] when the login grace time has passed.
    pub fn poll(&mut self, host: &mut (impl Host + ?Sized)) -> Result<(), Disconnect> {
        if let Some(d) = &self.closed {
            return Err(d.clone());
        }
        let now = host.now_ms();
        if self.user.is_none() && now.saturating_sub(self.started_ms) >= self.cfg.login_grace_ms {
            return Err(self.fail(reason::BY_APPLICATION, "login grace time exceeded"));
        }
        if self.stage == Stage::Connected
            && self.kex.is_none()
            && (self.bytes_since_kex >= self.cfg.rekey_bytes
                || now.saturating_sub(self.kex_at_ms) >= self.cfg.rekey_ms)
        {
            self.start_kex(host);
        }
        Ok(())
    }

    /// Feeds received bytes; returns how many were consumed.
    ///
    /// # Errors
    /// [`Disconnect`] when the peer broke the protocol, failed to
    /// authenticate, or ended the connection.
    pub fn input(
        &mut self,
        bytes: &[u8],
        host: &mut (impl Host + ?Sized),
    ) -> Result<usize, Disconnect> {
        self.poll(host)?;
        let mut used = 0;
        while used < bytes.len() && !self.backlogged() {
            if self.stage == Stage::Version {
                used += self.version_input(&bytes[used..])?;
                continue;
            }
            let n = match self.dec.feed(&bytes[used..]) {
                Ok(n) => n,
                Err(e) => {
                    let code = if e == crate::wire::framing::FrameError::BadMac {
                        reason::MAC_ERROR
                    } else {
                        reason::PROTOCOL_ERROR
                    };
                    return Err(self.fail(code, e.reason()));
                }
            };
            used += n;
            self.bytes_since_kex += n as u64;
            let Some(payload) = self.dec.payload() else {
                continue;
            };
            let mut p = core::mem::take(&mut self.scratch);
            p.clear();
            p.extend_from_slice(payload);
            let seq = self.dec.seq();
            self.dec.next();
            let r = self.handle(&p, seq, host);
            self.scratch = p;
            r?;
            if self.deferred_bytes > MAX_DEFERRED {
                return Err(self.fail(
                    reason::BY_APPLICATION,
                    "too many requests during key exchange",
                ));
            }
        }
        self.recredit(host);
        self.flush();
        Ok(used)
    }

    /// Reads stdin of `ch` into `buf`; credit goes back to the client as
    /// stdin is read.
    pub fn read_stdin(
        &mut self,
        ch: ChannelId,
        buf: &mut [u8],
        host: &mut (impl Host + ?Sized),
    ) -> StdinRead {
        let Some(c) = self.chan_mut(ch) else {
            return StdinRead::Gone;
        };
        let n = c.read_stdin(buf);
        let eof = c.stdin_eof || c.close_received;
        if n == 0 {
            return if eof {
                StdinRead::Eof
            } else {
                StdinRead::WouldBlock
            };
        }
        self.recredit(host);
        self.flush();
        StdinRead::Data(n)
    }

    /// Pushes command output; returns how much was taken (0: wait for
    /// [`Event::Writable`]).
    ///
    /// # Errors
    /// [`Gone`] when the channel is closed or the client takes no more
    /// output (`eow@openssh.com`): the command should stop, as on a broken
    /// pipe.
    pub fn write(&mut self, ch: ChannelId, stream: Stream, data: &[u8]) -> Result<usize, Gone> {
        let cap = self.cfg.output_buffer;
        let c = self.chan_mut(ch).ok_or(Gone)?;
        if c.close_received || c.output_closed || c.phase != Phase::Running {
            return Err(Gone);
        }
        let n = c.write(stream, data, cap);
        self.flush();
        Ok(n)
    }

    /// Reports the command's end; exit-status (or exit-signal), EOF and
    /// CLOSE follow once its output has been sent. Unknown channels are
    /// ignored (the client may have closed first).
    pub fn exit(&mut self, ch: ChannelId, exit: Exit) {
        if let Some(c) = self.chan_mut(ch)
            && c.phase == Phase::Running
        {
            c.phase = Phase::Exited;
            c.exit = Some(exit);
        }
        self.flush();
    }

    fn chan(&self, ch: ChannelId) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == ch)
    }

    fn chan_mut(&mut self, ch: ChannelId) -> Option<&mut Channel> {
        self.channels.iter_mut().find(|c| c.id == ch)
    }

    fn pending_out(&self) -> usize {
        self.out.len() - self.out_pos
    }

    fn backlogged(&self) -> bool {
        self.pending_out() > self.cfg.send_queue + 64 * 1024 || self.events.len() >= MAX_EVENTS
    }

    fn fail(&mut self, code: u32, why: &str) -> Disconnect {
        if let Some(d) = &self.closed {
            return d.clone();
        }
        // Our version line went out first, so a DISCONNECT packet (in the
        // clear before the first NEWKEYS) is readable at any stage.
        {
            let mut p = alloc::vec![m::DISCONNECT];
            put_u32(&mut p, code);
            put_string(&mut p, why.as_bytes());
            put_string(&mut p, b"");
            self.send_now(&p);
        }
        let d = Disconnect {
            code,
            reason: why.to_string(),
            by_peer: false,
        };
        self.closed = Some(d.clone());
        d
    }

    fn send_now(&mut self, payload: &[u8]) {
        // Room is made from what was already sent before the buffer grows:
        // a stream that never drains to empty (a flood going out) keeps the
        // buffer at the send queue plus a packet, not twice that doubled.
        let packet = payload.len() + 64;
        if self.out_pos > 0 && self.out.len() + packet > self.out.capacity() {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        let before = self.out.len();
        self.enc.encode(payload, &mut self.out);
        self.bytes_since_kex += (self.out.len() - before) as u64;
    }

    /// Sends a non-kex message, holding it while a key exchange runs.
    fn send(&mut self, payload: &[u8]) {
        if self.kex.is_some() {
            self.deferred_bytes += payload.len();
            self.deferred.push_back(payload.to_vec());
        } else {
            self.send_now(payload);
        }
    }

    fn version_input(&mut self, bytes: &[u8]) -> Result<usize, Disconnect> {
        let mut used = 0;
        for &b in bytes {
            used += 1;
            self.pre_version += 1;
            if b == b'\n' {
                let mut line = core::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.starts_with(b"SSH-") {
                    if !line.starts_with(b"SSH-2.0-") && !line.starts_with(b"SSH-1.99-") {
                        return Err(self.fail(
                            reason::VERSION_NOT_SUPPORTED,
                            "protocol version not supported",
                        ));
                    }
                    self.v_c = line;
                    self.stage = Stage::FirstKex;
                    return Ok(used);
                }
            } else if self.line.len() >= MAX_VERSION_LINE {
                return Err(self.fail(reason::PROTOCOL_ERROR, "version line too long"));
            } else {
                self.line.push(b);
            }
            if self.pre_version > MAX_PRE_VERSION {
                return Err(self.fail(reason::PROTOCOL_ERROR, "no version line"));
            }
        }
        Ok(used)
    }

    fn start_kex(&mut self, host: &mut (impl Host + ?Sized)) {
        let mut cookie = [0; 16];
        host.fill(&mut cookie);
        let ours = kex::kexinit(cookie, self.session_id.is_none());
        self.send_now(&ours);
        self.kex = Some(KexRun::new(ours));
    }

    fn handle(
        &mut self,
        p: &[u8],
        seq: u32,
        host: &mut (impl Host + ?Sized),
    ) -> Result<(), Disconnect> {
        let t = p[0];
        if t == m::DISCONNECT {
            let mut r = Reader::new(p);
            let _ = r.u8();
            let code = r.u32().unwrap_or(0);
            let why = r
                .string()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned();
            let d = Disconnect {
                code,
                reason: why,
                by_peer: true,
            };
            self.closed = Some(d.clone());
            return Err(d);
        }
        // The first exchange, and a re-exchange once the peer's KEXINIT
        // arrived, admit only key exchange messages (and, outside strict
        // mode, the transport's generic ones).
        let in_kex =
            self.stage == Stage::FirstKex || self.kex.as_ref().is_some_and(|k| k.theirs.is_some());
        if in_kex {
            let generic = matches!(t, m::IGNORE | m::DEBUG | m::UNIMPLEMENTED);
            let strict_first = self.stage == Stage::FirstKex && self.strict;
            if generic && !strict_first {
                return Ok(());
            }
            if !matches!(t, kmsg::KEXINIT | kmsg::ECDH_INIT | kmsg::NEWKEYS) {
                return Err(self.fail(
                    reason::PROTOCOL_ERROR,
                    "unexpected message during key exchange",
                ));
            }
        }
        match t {
            kmsg::KEXINIT => self.on_kexinit(p, seq, host),
            kmsg::ECDH_INIT => self.on_ecdh(p, host),
            kmsg::NEWKEYS => self.on_newkeys(p, host),
            m::IGNORE | m::DEBUG | m::UNIMPLEMENTED => Ok(()),
            _ => match self.stage {
                Stage::Service if t == m::SERVICE_REQUEST => self.on_service(p),
                Stage::Auth if t == auth::MSG_REQUEST => self.on_auth(p),
                Stage::Connected => self.on_connection(p, host),
                _ => Err(self.fail(
                    reason::PROTOCOL_ERROR,
                    "unexpected message before authentication",
                )),
            },
        }
    }

    fn on_kexinit(
        &mut self,
        p: &[u8],
        seq: u32,
        host: &mut (impl Host + ?Sized),
    ) -> Result<(), Disconnect> {
        if self.kex.as_ref().is_some_and(|k| k.theirs.is_some()) {
            return Err(self.fail(reason::PROTOCOL_ERROR, "KEXINIT during key exchange"));
        }
        let agreed = match kex::negotiate(p) {
            Ok(a) => a,
            Err(kex::NegotiationError::Malformed) => {
                return Err(self.fail(reason::PROTOCOL_ERROR, "malformed KEXINIT"));
            }
            Err(kex::NegotiationError::NoCommon(what)) => {
                let why = alloc::format!("no common {what} algorithm");
                return Err(self.fail(reason::KEY_EXCHANGE_FAILED, &why));
            }
        };
        if self.stage == Stage::FirstKex {
            self.strict = agreed.strict;
            if self.strict && seq != 0 {
                return Err(self.fail(reason::PROTOCOL_ERROR, "strict kex: KEXINIT not first"));
            }
        }
        if self.kex.is_none() {
            self.start_kex(host);
        }
        if let Some(k) = &mut self.kex {
            k.theirs = Some(p.to_vec());
            k.ignore_next = agreed.ignore_guess;
        }
        Ok(())
    }

    fn on_ecdh(&mut self, p: &[u8], host: &mut (impl Host + ?Sized)) -> Result<(), Disconnect> {
        let Some(k) = self
            .kex
            .as_mut()
            .filter(|k| k.theirs.is_some() && !k.newkeys_sent)
        else {
            return Err(self.fail(reason::PROTOCOL_ERROR, "unexpected ECDH_INIT"));
        };
        if k.ignore_next {
            k.ignore_next = false;
            return Ok(());
        }
        let mut secret = [0; 32];
        host.fill(&mut secret);
        let t = kex::Transcript {
            v_c: &self.v_c,
            v_s: self.cfg.version.as_bytes(),
            i_c: k.theirs.as_deref().unwrap_or_default(),
            i_s: &k.ours,
        };
        let Ok(ex) = kex::ecdh(&t, p, secret, &self.cfg.host_key, self.session_id.as_ref()) else {
            return Err(self.fail(reason::KEY_EXCHANGE_FAILED, "bad ECDH_INIT"));
        };
        k.c2s = Some(ex.keys_c2s);
        k.newkeys_sent = true;
        self.session_id.get_or_insert(ex.hash);
        self.send_now(&ex.reply);
        self.send_now(&[kmsg::NEWKEYS]);
        self.enc.set_keys(ex.keys_s2c, self.strict);
        Ok(())
    }

    fn on_newkeys(&mut self, p: &[u8], host: &mut (impl Host + ?Sized)) -> Result<(), Disconnect> {
        let keys = self
            .kex
            .as_mut()
            .filter(|k| k.newkeys_sent && p.len() == 1)
            .and_then(|k| k.c2s.take());
        let Some(keys) = keys else {
            return Err(self.fail(reason::PROTOCOL_ERROR, "unexpected NEWKEYS"));
        };
        self.dec.set_keys(keys, self.strict);
        self.kex = None;
        self.bytes_since_kex = 0;
        self.kex_at_ms = host.now_ms();
        if self.stage == Stage::FirstKex {
            self.stage = Stage::Service;
        }
        while let Some(d) = self.deferred.pop_front() {
            self.send_now(&d);
        }
        self.deferred_bytes = 0;
        self.deferred.shrink_to_fit();
        Ok(())
    }

    fn on_service(&mut self, p: &[u8]) -> Result<(), Disconnect> {
        let mut r = Reader::new(p);
        let _ = r.u8();
        if r.string() != Some(SSH_SERVICE_USERAUTH.as_bytes()) || !r.is_empty() {
            return Err(self.fail(reason::PROTOCOL_ERROR, "service not available"));
        }
        let mut reply = alloc::vec![m::SERVICE_ACCEPT];
        put_string(&mut reply, SSH_SERVICE_USERAUTH.as_bytes());
        self.send(&reply);
        self.stage = Stage::Auth;
        Ok(())
    }

    fn on_auth(&mut self, p: &[u8]) -> Result<(), Disconnect> {
        let sid = self.session_id.unwrap_or_default();
        match self.cfg.credentials.check(p, &sid) {
            Outcome::Success(user) => {
                self.dec.set_max(crate::wire::framing::MAX_PACKET);
                self.send(&[auth::MSG_SUCCESS]);
                self.events
                    .push_back(Event::Authenticated { user: user.clone() });
                self.user = Some(user);
                self.stage = Stage::Connected;
            }
            Outcome::Reply(r) => self.send(&r),
            Outcome::Failure { counts } => {
                if counts {
                    self.auth_failures += 1;
                    if self.auth_failures >= self.cfg.max_auth_tries {
                        return Err(self.fail(
                            reason::NO_MORE_AUTH_METHODS,
                            "too many authentication failures",
                        ));
                    }
                }
                let f = self.cfg.credentials.failure_message();
                self.send(&f);
            }
            Outcome::Malformed => {
                return Err(self.fail(reason::PROTOCOL_ERROR, "malformed USERAUTH_REQUEST"));
            }
        }
        Ok(())
    }
}
