//! Fuzzing the connection state machine with proptest, through the
//! sans-IO interface the kernel uses (`input`, `output`/`consume_output`,
//! `event`, `read_stdin`, `write`, `exit`, `poll`), against an in-process
//! client that speaks the real protocol (strict kex, chacha20-poly1305,
//! publickey auth), so random messages reach every stage.
//!
//! The connection runs as in the kernel: every call into it is charged to
//! a session account of `quota`'s tracking allocator (this test binary's
//! global allocator) under `fallible`, and the host's headroom is that
//! account's live `budget - current`. So "never allocates unboundedly" is
//! checked on the real heap, not only on the buffers the crate exposes.
//!
//! What is checked after every step:
//! - nothing panics, and the server never stops consuming input while the
//!   client reads its output and the host handles its events;
//! - every message that calls for an answer (`CHANNEL_OPEN`, a request with
//!   `want_reply`, an unknown message type, `SERVICE_REQUEST`,
//!   `USERAUTH_REQUEST`) gets one, or the connection ends with a DISCONNECT
//!   whose reason the client reads; a message that is wrong before
//!   authentication ends it;
//! - the bounds below hold, also while the client reads nothing and the
//!   host takes no events for a while;
//! - after the connection is dropped its account holds 0 bytes.

use std::alloc::System;
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Arc;

use proptest::prelude::*;
use quota::{
    Account, AccountFlags, AccountId, AccountTable, NewAccount, Slot, ThreadLocal, TrackingAlloc,
};

use sshd::kex::{Transcript, derive, exchange_hash};
use sshd::wire::cipher::ChaPoly;
use sshd::wire::codec::{Reader, put_mpint, put_string, put_u32};
use sshd::wire::framing::{Decoder, Encoder, MAX_PACKET};
use sshd::{
    AuthorizedKey, Clock, Config, Connection, Credentials, Disconnect, Exit, Headroom, HostKey,
    Interrupts, Random, StdinRead, Stream,
};

static SLOTS: [Slot; 64] = [const { Slot::new() }; 64];
static TABLE: AccountTable<'static> = AccountTable::new(&SLOTS);
#[global_allocator]
static HEAP: TrackingAlloc<'static, System, ThreadLocal> = TrackingAlloc::new(System, &TABLE);

/// The session's memory budget: the headroom the window policy sees is
/// this minus what the connection's account holds.
const BUDGET: usize = 1 << 20;

/// The bound on unsent output, with the default configuration: the send
/// queue of channel data (64 KiB) plus one data packet, the control
/// messages a backlogged connection may still add before it stops
/// consuming input (64 KiB), and the replies held during a key exchange,
/// released at its end (64 KiB), plus 16 KiB of slack.
const OUTPUT_BOUND: usize = 64 * 1024 + 32 * 1024 + 64 * 1024 + 64 * 1024 + 16 * 1024;

/// The bound on the stdin buffers together. The window policy gives each
/// channel its share of 50 % of (headroom + what stdin buffers hold) at
/// the moment it credits, but a window once granted cannot be taken back:
/// channels opened one after another, while earlier ones hold their
/// windows, can reserve up to 1.46 x the budget in all (10 channels) when
/// nothing refuses the reservations. In the kernel the session's `max`
/// refuses them; here the account has no `max`, so the bound is 1.5 x.
const STDIN_BOUND: usize = BUDGET / 2 * 3;

/// The bound on the connection's whole heap: the stdin buffers above,
/// the output buffers (10 channels x 2 x 64 KiB, reserved
/// fallibly but not sized from the headroom), the output above, one packet
/// being received and its copy (2 x 256 KiB), and 256 KiB for everything
/// else (keys, kex state, channel bookkeeping, requests' strings).
const HEAP_BOUND: usize = BUDGET + 10 * 2 * 64 * 1024 + OUTPUT_BOUND + 2 * MAX_PACKET + 256 * 1024;

/// Answer classes: what a message that needs an answer gets.
const OPEN: usize = 0; // OPEN_CONFIRMATION, OPEN_FAILURE
const GLOBAL: usize = 1; // REQUEST_SUCCESS, REQUEST_FAILURE
const CHANNEL_REQUEST: usize = 2; // CHANNEL_SUCCESS, CHANNEL_FAILURE
const UNIMPLEMENTED: usize = 3; // UNIMPLEMENTED
const SERVICE: usize = 4; // SERVICE_ACCEPT
const AUTH: usize = 5; // USERAUTH_FAILURE, _SUCCESS, _PK_OK
const CLASSES: usize = 6;

fn answer_class(t: u8) -> Option<usize> {
    match t {
        91 | 92 => Some(OPEN),
        81 | 82 => Some(GLOBAL),
        99 | 100 => Some(CHANNEL_REQUEST),
        3 => Some(UNIMPLEMENTED),
        6 => Some(SERVICE),
        51 | 52 | 60 => Some(AUTH),
        _ => None,
    }
}

struct FuzzHost {
    now: Cell<u64>,
    rng: u64,
    account: AccountId,
}

impl Clock for FuzzHost {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
}

impl Random for FuzzHost {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            *b = self.rng.to_le_bytes()[0];
        }
    }
}

impl Headroom for FuzzHost {
    fn headroom(&self) -> Option<usize> {
        let used = TABLE.snapshot(self.account).map_or(0, |s| s.current);
        Some(BUDGET.saturating_sub(used))
    }
}

impl Interrupts for FuzzHost {
    /// Sometimes a job runs in the foreground, sometimes not.
    fn interrupt(&mut self, channel: sshd::ChannelId) -> bool {
        channel.0.is_multiple_of(2)
    }
}

const USER_SEED: [u8; 32] = [42; 32];
const V_C: &[u8] = b"SSH-2.0-fuzzclient";

fn config() -> Config {
    let user = HostKey::from_seed(&USER_SEED);
    let creds = Credentials {
        authorized_keys: AuthorizedKey::parse_file(&user.public_openssh()),
        password: Some("secret".into()),
    };
    Config::new(HostKey::from_seed(&[1; 32]), creds)
}

fn kexinit_c() -> Vec<u8> {
    let mut p = vec![20];
    p.extend_from_slice(&[9; 16]);
    for l in [
        "curve25519-sha256,kex-strict-c-v00@openssh.com",
        "ssh-ed25519",
        "chacha20-poly1305@openssh.com",
        "chacha20-poly1305@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-256",
        "none",
        "none",
        "",
        "",
    ] {
        put_string(&mut p, l.as_bytes());
    }
    p.push(0);
    put_u32(&mut p, 0);
    p
}

/// One client message and what it calls for.
#[derive(Debug, Clone)]
struct Msg {
    payload: Vec<u8>,
    /// Bytes 1..5 name a channel: the n-th the server has open when the
    /// message is sent (if any is), else the number written there.
    channel: Option<usize>,
    /// The answer class it must get (or the connection ends).
    answer: Option<usize>,
    /// It is wrong where it is sent: the connection must end.
    fatal: bool,
}

impl Msg {
    fn quiet(payload: Vec<u8>) -> Self {
        Self {
            payload,
            channel: None,
            answer: None,
            fatal: false,
        }
    }

    /// For a channel message built with [`put_chan`].
    fn on(mut self, chan: Chan) -> Self {
        if let Chan::Open(n) = chan {
            self.channel = Some(n);
        }
        self
    }
}

/// One step of a fuzzed session.
#[derive(Debug, Clone)]
enum Op {
    /// A message, its bytes offered in reads of at most this size.
    Send(Msg, usize),
    /// Random bytes into the encrypted stream.
    Garbage(Vec<u8>),
    /// The host reads stdin of the n-th channel.
    Read(usize),
    /// The host writes this much output to the n-th channel.
    Write(usize, Stream, usize),
    /// The n-th channel's command ends, with a status or killed.
    Exit(usize, Option<u32>),
    /// Time passes (ms) and the timers run.
    Tick(u64),
    /// The client starts a key re-exchange.
    Rekey,
    /// The client stops (true) or resumes (false) reading our output; the
    /// host stops or resumes taking events.
    Stall(bool),
    /// This many `CHANNEL_OPEN`s of an unknown type, pipelined.
    Flood(usize),
}

/// The client side of one connection and the host around it.
struct Peer {
    conn: Option<Connection>,
    host: FuzzHost,
    account: Account<'static>,
    enc: Encoder,
    dec: Decoder,
    raw: Vec<u8>,
    v_s: Option<Vec<u8>>,
    inbox: VecDeque<Vec<u8>>,
    sid: Option<[u8; 32]>,
    /// Client bytes the server has not consumed yet.
    unsent: Vec<u8>,
    stalled: bool,
    end: Option<Disconnect>,
    /// The reason of a DISCONNECT the client received.
    disconnect_read: Option<String>,
    expected: [usize; CLASSES],
    answered: [usize; CLASSES],
    /// Answers are counted (not after garbage desynchronised the stream).
    counting: bool,
    authenticated: bool,
    /// The server's first KEXINIT, until the test starts the exchange.
    first_kexinit: Option<Vec<u8>>,
}

impl Peer {
    fn new() -> Self {
        let account = TABLE
            .create(
                None,
                NewAccount {
                    flags: AccountFlags::empty(),
                    tag: 0,
                },
            )
            .expect("account table full");
        let mut host = FuzzHost {
            now: Cell::new(0),
            rng: 0x9e37_79b9_7f4a_7c15,
            account: account.id(),
        };
        let cfg = Arc::new(config());
        let conn = in_session(&account, || Connection::new(cfg, &mut host));
        Self {
            conn: Some(conn),
            host,
            account,
            enc: Encoder::default(),
            dec: Decoder::default(),
            raw: Vec::new(),
            v_s: None,
            inbox: VecDeque::new(),
            sid: None,
            unsent: Vec::new(),
            stalled: false,
            end: None,
            disconnect_read: None,
            expected: [0; CLASSES],
            answered: [0; CLASSES],
            counting: true,
            authenticated: false,
            first_kexinit: None,
        }
    }

    /// Runs `f` on the connection charged to the session, as the kernel
    /// does (`charge_to` + `fallible`).
    fn call<R>(&mut self, f: impl FnOnce(&mut Connection, &mut FuzzHost) -> R) -> R {
        let conn = self.conn.as_mut().expect("connection dropped");
        let host = &mut self.host;
        in_session(&self.account, || f(conn, host))
    }

    fn ended(&self) -> bool {
        self.end.is_some()
    }

    /// Offers the unsent bytes to the server, at most `chunk` at a time.
    /// Stalled, once; otherwise until all are taken, reading output and
    /// taking events in between, as a host's loop does.
    fn feed(&mut self, chunk: usize) {
        let mut idle = 0;
        while !self.unsent.is_empty() && !self.ended() {
            let bytes = std::mem::take(&mut self.unsent);
            let n = chunk.max(1).min(bytes.len());
            let r = self.call(|c, h| c.input(&bytes[..n], h));
            match r {
                Ok(used) => {
                    self.unsent = bytes[used..].to_vec();
                    idle = if used == 0 { idle + 1 } else { 0 };
                }
                Err(d) => {
                    self.unsent = bytes;
                    self.end = Some(d);
                }
            }
            self.check_bounds();
            if self.stalled {
                return;
            }
            self.drain_events();
            self.pump();
            assert!(idle < 3, "the server stopped consuming input");
        }
        if !self.stalled {
            self.drain_events();
            self.pump();
        }
    }

    fn send(&mut self, payload: &[u8], chunk: usize) {
        let mut framed = Vec::new();
        self.enc.encode(payload, &mut framed);
        self.unsent.extend_from_slice(&framed);
        self.feed(chunk);
    }

    fn drain_events(&mut self) {
        while let Some(e) = self.call(|c, _| c.event()) {
            drop(e);
        }
    }

    /// Moves the server's output into the inbox and handles it: counts
    /// answers, notes a DISCONNECT, answers a KEXINIT with a key exchange.
    fn pump(&mut self) {
        loop {
            let out = self.conn.as_ref().unwrap().output().to_vec();
            self.call(|c, _| c.consume_output(out.len()));
            self.raw.extend_from_slice(&out);
            self.decode();
            let Some(i_s) = self.process_inbox() else {
                return;
            };
            if self.sid.is_none() {
                // The first exchange is driven by the test itself.
                self.first_kexinit = Some(i_s);
                return;
            }
            self.kex(Some(i_s));
        }
    }

    fn decode(&mut self) {
        if self.v_s.is_none() {
            let Some(i) = self.raw.iter().position(|&b| b == b'\n') else {
                return;
            };
            self.v_s = Some(self.raw[..i - 1].to_vec());
            self.raw.drain(..=i);
        }
        let mut used = 0;
        while used < self.raw.len() {
            let n = self
                .dec
                .feed(&self.raw[used..])
                .expect("the server sent a bad packet");
            used += n;
            let Some(p) = self.dec.payload() else { break };
            let newkeys = p[0] == 21;
            self.inbox.push_back(p.to_vec());
            self.dec.next();
            if newkeys {
                // What follows is under keys the client does not have yet.
                break;
            }
        }
        self.raw.drain(..used);
    }

    /// Handles the inbox up to a KEXINIT from the server, which it returns.
    fn process_inbox(&mut self) -> Option<Vec<u8>> {
        while let Some(p) = self.inbox.pop_front() {
            match p[0] {
                1 => {
                    let mut r = Reader::new(&p[1..]);
                    let _code = r.u32();
                    let why = r.string().map(|s| String::from_utf8_lossy(s).into_owned());
                    self.disconnect_read = Some(why.unwrap_or_default());
                }
                20 => return Some(p),
                52 => {
                    self.authenticated = true;
                    self.answered[AUTH] += 1;
                }
                t => {
                    if let Some(class) = answer_class(t) {
                        self.answered[class] += 1;
                    }
                }
            }
        }
        None
    }

    /// A key exchange: the server's KEXINIT is `i_s` if it started one,
    /// else ours goes first.
    fn kex(&mut self, i_s: Option<Vec<u8>>) {
        let i_c = kexinit_c();
        let mut framed = Vec::new();
        self.enc.encode(&i_c, &mut framed);
        self.unsent.extend_from_slice(&framed);
        self.feed_kex();
        let i_s = if let Some(p) = i_s {
            p
        } else {
            let mut tries = 0;
            loop {
                if self.ended() {
                    return;
                }
                if let Some(p) = self.process_inbox() {
                    break p;
                }
                tries += 1;
                assert!(tries < 4, "no KEXINIT in answer to ours");
                self.feed_kex();
            }
        };
        if self.ended() {
            return;
        }
        let c_secret = [7u8; 32];
        let q_c = x25519_dalek::x25519(c_secret, x25519_dalek::X25519_BASEPOINT_BYTES);
        let mut init = vec![30];
        put_string(&mut init, &q_c);
        self.enc.encode(&init, &mut self.unsent);
        self.feed_kex();
        if self.ended() {
            return;
        }
        let reply = self.inbox.pop_front().expect("no ECDH_REPLY");
        assert_eq!(reply[0], 31, "wanted ECDH_REPLY");
        let newkeys = self.inbox.pop_front().expect("no NEWKEYS");
        assert_eq!(newkeys, [21]);
        let mut r = Reader::new(&reply[1..]);
        let k_s = r.string().unwrap().to_vec();
        let q_s: [u8; 32] = r.string().unwrap().try_into().unwrap();
        let mut k = Vec::new();
        put_mpint(&mut k, &x25519_dalek::x25519(c_secret, q_s));
        let v_s = self.v_s.clone().unwrap();
        let t = Transcript {
            v_c: V_C,
            v_s: &v_s,
            i_c: &i_c,
            i_s: &i_s,
        };
        let h = exchange_hash(&t, &k_s, &q_c, &q_s, &k);
        let sid = *self.sid.get_or_insert(h);
        self.dec
            .set_keys(ChaPoly::new(&derive(&k, &h, b'D', &sid)), true);
        self.enc.encode(&[21], &mut self.unsent);
        self.enc
            .set_keys(ChaPoly::new(&derive(&k, &h, b'C', &sid)), true);
        self.feed_kex();
    }

    /// Feeds kex messages: all input, output moved to the inbox but not
    /// handled (the exchange reads it in order).
    fn feed_kex(&mut self) {
        while !self.unsent.is_empty() && !self.ended() {
            let bytes = std::mem::take(&mut self.unsent);
            match self.call(|c, h| c.input(&bytes, h)) {
                Ok(used) => {
                    assert!(used > 0, "the server stopped consuming during kex");
                    self.unsent = bytes[used..].to_vec();
                }
                Err(d) => self.end = Some(d),
            }
            let out = self.conn.as_ref().unwrap().output().to_vec();
            self.call(|c, _| c.consume_output(out.len()));
            self.raw.extend_from_slice(&out);
            self.decode();
        }
        let out = self.conn.as_ref().unwrap().output().to_vec();
        self.call(|c, _| c.consume_output(out.len()));
        self.raw.extend_from_slice(&out);
        self.decode();
    }

    /// Version exchange and the first key exchange.
    fn handshake(&mut self) {
        self.pump();
        let mut v = V_C.to_vec();
        v.extend_from_slice(b"\r\n");
        self.unsent.extend_from_slice(&v);
        self.feed(usize::MAX);
        let i_s = self
            .first_kexinit
            .take()
            .expect("no KEXINIT from the server");
        self.kex(Some(i_s));
        assert!(
            self.sid.is_some() && !self.ended(),
            "first key exchange failed"
        );
    }

    fn login(&mut self) {
        self.handshake();
        let mut p = vec![5];
        put_string(&mut p, b"ssh-userauth");
        self.send(&p, usize::MAX);
        let key = HostKey::from_seed(&USER_SEED);
        let mut p = vec![50];
        put_string(&mut p, b"fuzz");
        put_string(&mut p, b"ssh-connection");
        put_string(&mut p, b"publickey");
        p.push(1);
        put_string(&mut p, b"ssh-ed25519");
        put_string(&mut p, &key.public_blob());
        let mut signed = Vec::new();
        put_string(&mut signed, &self.sid.unwrap());
        signed.extend_from_slice(&p);
        put_string(&mut p, &key.sign_blob(&signed));
        self.send(&p, usize::MAX);
        assert!(self.authenticated, "login failed");
        self.answered = [0; CLASSES];
    }

    /// The n-th open channel, if any.
    fn nth_channel(&self, n: usize) -> Option<sshd::ChannelId> {
        let conn = self.conn.as_ref()?;
        let ids: Vec<_> = conn.channels().collect();
        (!ids.is_empty()).then(|| ids[n % ids.len()])
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Send(m, chunk) => {
                if let Some(class) = m.answer
                    && self.counting
                {
                    self.expected[class] += 1;
                }
                let mut payload = m.payload.clone();
                if let Some(id) = m.channel.and_then(|n| self.nth_channel(n)) {
                    payload[1..5].copy_from_slice(&id.0.to_be_bytes());
                }
                self.send(&payload, *chunk);
                if m.fatal && !self.stalled {
                    assert!(self.ended(), "a wrong message was not refused: {m:?}");
                }
            }
            Op::Garbage(bytes) => {
                self.counting = false;
                self.unsent.extend_from_slice(bytes);
                self.feed(usize::MAX);
            }
            Op::Read(n) => {
                if let Some(id) = self.nth_channel(*n) {
                    let mut buf = [0u8; 8192];
                    while let StdinRead::Data(_) = self.call(|c, h| c.read_stdin(id, &mut buf, h)) {
                    }
                }
            }
            Op::Write(n, stream, len) => {
                if let Some(id) = self.nth_channel(*n) {
                    let data = vec![b'o'; *len];
                    let _ = self.call(|c, _| c.write(id, *stream, &data));
                }
            }
            Op::Exit(n, status) => {
                if let Some(id) = self.nth_channel(*n) {
                    let exit = match status {
                        Some(s) => Exit::Status(*s),
                        None => Exit::Signal {
                            name: "KILL".into(),
                            message: "out of memory".into(),
                        },
                    };
                    self.call(|c, _| c.exit(id, exit));
                }
            }
            Op::Tick(ms) => {
                self.host.now.set(self.host.now.get() + ms);
                if let Err(d) = self.call(Connection::poll) {
                    self.end = Some(d);
                }
            }
            Op::Rekey => {
                if !self.stalled && self.counting {
                    self.pump();
                    self.kex(None);
                }
            }
            Op::Flood(n) => {
                // Refused opens: each answer (OPEN_FAILURE with a reason)
                // is larger than the request.
                let mut o = vec![90];
                put_string(&mut o, b"nonsense");
                for v in [1, 1000, 1000] {
                    put_u32(&mut o, v);
                }
                for _ in 0..*n {
                    self.enc.encode(&o, &mut self.unsent);
                }
                if self.counting {
                    self.expected[OPEN] += n;
                }
                self.feed(usize::MAX);
            }
            Op::Stall(on) => {
                self.stalled = *on;
                if !on {
                    self.feed(usize::MAX);
                }
            }
        }
        self.check_bounds();
        if !self.stalled {
            self.drain_events();
            self.pump();
        }
    }

    /// The memory bounds (see the constants).
    fn check_bounds(&self) {
        let conn = self.conn.as_ref().unwrap();
        let out = conn.output().len();
        assert!(out <= OUTPUT_BOUND, "output {out} > {OUTPUT_BOUND}");
        let heap = TABLE.snapshot(self.account.id()).unwrap().current;
        assert!(heap <= HEAP_BOUND, "heap {heap} > {HEAP_BOUND}");
        let mut stdin = 0;
        for id in conn.channels() {
            let s = conn.stdin_stats(id).unwrap();
            assert!(s.buffered + s.window <= s.reserved, "{s:?}");
            stdin += s.reserved;
        }
        assert!(
            stdin <= STDIN_BOUND,
            "stdin buffers {stdin} > {STDIN_BOUND}"
        );
    }

    /// After a step, with the client reading: every answer came, or the
    /// connection ended with a reason the client read.
    fn check_answers(&mut self) {
        if self.stalled {
            return;
        }
        if let Some(d) = self.end.clone() {
            if !d.by_peer {
                assert!(!d.reason.is_empty(), "{d:?}");
                self.pump();
                assert_eq!(
                    self.disconnect_read.as_deref(),
                    Some(d.reason.as_str()),
                    "the client did not read why"
                );
            }
            return;
        }
        if self.counting {
            assert_eq!(self.expected, self.answered, "a message went unanswered");
        }
    }

    /// Drops the connection; everything it allocated must be freed.
    fn finish(mut self) {
        self.end = None;
        let conn = self.conn.take().unwrap();
        drop(conn);
        let left = TABLE.snapshot(self.account.id()).unwrap();
        assert_eq!(left.current, 0, "the connection leaked: {left:?}");
    }
}

fn in_session<R>(account: &Account<'_>, f: impl FnOnce() -> R) -> R {
    quota::charge_to::<ThreadLocal, _>(account, || quota::fallible::<ThreadLocal, _>(f))
}

// ---- generators ----

fn interesting_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        2u32..70_000,
        Just(1 << 20),
        Just(1 << 31),
        Just(u32::MAX - 1),
        Just(u32::MAX),
        any::<u32>(),
    ]
}

/// Which channel a message is for.
#[derive(Debug, Clone, Copy)]
enum Chan {
    /// The n-th channel the server has open when the message is sent.
    Open(usize),
    /// This number, open or not.
    Raw(u32),
}

/// Mostly an open channel, sometimes any number.
fn chan() -> impl Strategy<Value = Chan> {
    prop_oneof![60 => (0usize..4).prop_map(Chan::Open), 1 => any::<u32>().prop_map(Chan::Raw)]
}

/// Writes the channel number (a placeholder for [`Chan::Open`]).
fn put_chan(p: &mut Vec<u8>, chan: Chan) {
    put_u32(p, if let Chan::Raw(n) = chan { n } else { 0 });
}

/// A length for strings and data: mostly small, sometimes large.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..64, 2 => 0usize..5000, 1 => 30_000usize..70_000, 1 => 100_000usize..200_000]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn channel_request() -> impl Strategy<Value = Msg> {
    let name = prop_oneof![
        Just("exec"),
        Just("shell"),
        Just("pty-req"),
        Just("env"),
        Just("window-change"),
        Just("signal"),
        Just("subsystem"),
        Just("x11-req"),
        Just("eow@openssh.com"),
        Just("exit-status"),
        Just("break"),
        Just("nonsense@example.com"),
    ];
    (
        chan(),
        name,
        any::<bool>(),
        size(),
        any::<bool>(),
        bytes(32),
    )
        .prop_map(|(ch, name, want, len, well_formed, junk)| {
            let mut p = vec![98];
            put_chan(&mut p, ch);
            put_string(&mut p, name.as_bytes());
            p.push(u8::from(want));
            if well_formed {
                let text = vec![b'v'; len];
                match name {
                    "exec" | "subsystem" | "signal" => put_string(&mut p, &text),
                    "env" => {
                        put_string(&mut p, b"NAME");
                        put_string(&mut p, &text);
                    }
                    "pty-req" => {
                        put_string(&mut p, &text[..len.min(4096)]);
                        for v in [80, 24, 640, 480] {
                            put_u32(&mut p, v);
                        }
                        put_string(&mut p, &[0]);
                    }
                    "window-change" => {
                        for v in [100, 40, 0, 0] {
                            put_u32(&mut p, v);
                        }
                    }
                    "exit-status" => put_u32(&mut p, 0),
                    _ => {}
                }
            } else {
                p.extend_from_slice(&junk);
            }
            Msg {
                payload: p,
                channel: None,
                answer: want.then_some(CHANNEL_REQUEST),
                fatal: false,
            }
            .on(ch)
        })
}

/// `CHANNEL_OPEN` for a session with this initial window.
fn session(window: u32) -> Msg {
    let mut p = vec![90];
    put_string(&mut p, b"session");
    put_u32(&mut p, 7);
    put_u32(&mut p, window);
    put_u32(&mut p, 32768);
    Msg {
        payload: p,
        channel: None,
        answer: Some(OPEN),
        fatal: false,
    }
}

fn channel_open() -> impl Strategy<Value = Msg> {
    let ty = prop_oneof![
        4 => Just("session"),
        1 => Just("x11"),
        1 => Just("direct-tcpip"),
        1 => Just("forwarded-tcpip"),
        1 => Just("nonsense"),
    ];
    (
        ty,
        any::<u32>(),
        interesting_u32(),
        interesting_u32(),
        any::<bool>(),
    )
        .prop_map(|(ty, sender, window, max, extra)| {
            let mut p = vec![90];
            put_string(&mut p, ty.as_bytes());
            put_u32(&mut p, sender);
            put_u32(&mut p, window);
            put_u32(&mut p, max);
            if extra && ty != "session" {
                put_string(&mut p, b"localhost");
                put_u32(&mut p, 22);
                put_string(&mut p, b"127.0.0.1");
                put_u32(&mut p, 5555);
            }
            Msg {
                payload: p,
                channel: None,
                answer: Some(OPEN),
                fatal: false,
            }
        })
}

/// A message after authentication.
fn connection_message() -> impl Strategy<Value = Msg> {
    let amount = prop_oneof![20 => 0u32..70_000, 1 => interesting_u32()];
    let adjust = (chan(), amount).prop_map(|(ch, n)| {
        let mut p = vec![93];
        put_chan(&mut p, ch);
        put_u32(&mut p, n);
        Msg::quiet(p).on(ch)
    });
    // Mostly within the 32 KiB packet the server advertises.
    let len = prop_oneof![10 => 0usize..64, 6 => 0usize..5000, 3 => 5000usize..32_768, 1 => 32_769usize..70_000];
    let data = (chan(), len, any::<bool>()).prop_map(|(ch, len, ext)| {
        let mut p = vec![if ext { 95 } else { 94 }];
        put_chan(&mut p, ch);
        if ext {
            put_u32(&mut p, 1);
        }
        put_string(&mut p, &vec![b'i'; len]);
        Msg::quiet(p).on(ch)
    });
    let eof_close = (chan(), prop::bool::weighted(0.3)).prop_map(|(ch, close)| {
        let mut p = vec![if close { 97 } else { 96 }];
        put_chan(&mut p, ch);
        Msg::quiet(p).on(ch)
    });
    let global = (
        prop_oneof![
            Just("tcpip-forward"),
            Just("keepalive@openssh.com"),
            Just("no-more-sessions@openssh.com")
        ],
        any::<bool>(),
        bytes(16),
    )
        .prop_map(|(name, want, tail)| {
            let mut p = vec![80];
            put_string(&mut p, name.as_bytes());
            p.push(u8::from(want));
            p.extend_from_slice(&tail);
            Msg {
                payload: p,
                channel: None,
                answer: want.then_some(GLOBAL),
                fatal: false,
            }
        });
    let generic = (2u8..=4, bytes(40)).prop_map(|(t, tail)| {
        let mut p = vec![t];
        p.extend_from_slice(&tail);
        Msg::quiet(p)
    });
    // Types with no meaning after authentication get UNIMPLEMENTED; the
    // ones the connection layer knows are built above.
    let unknown = (any::<u8>(), bytes(40))
        .prop_filter(
            "handled types are built above",
            |(t, _)| !matches!(t, 1..=4 | 20 | 21 | 30 | 50 | 80 | 90 | 93..=100),
        )
        .prop_map(|(t, tail)| {
            let mut p = vec![t];
            p.extend_from_slice(&tail);
            Msg {
                payload: p,
                channel: None,
                answer: Some(UNIMPLEMENTED),
                fatal: false,
            }
        });
    // Key exchange messages out of place, and a peer's DISCONNECT.
    let transport = (
        prop_oneof![Just(1u8), Just(21), Just(30), Just(20)],
        bytes(40),
    )
        .prop_map(|(t, tail)| {
            let mut p = vec![t];
            p.extend_from_slice(&tail);
            Msg {
                payload: p,
                channel: None,
                answer: None,
                // A DISCONNECT ends it too, by the peer.
                fatal: true,
            }
        });
    prop_oneof![
        8 => channel_open(),
        12 => channel_request(),
        6 => adjust,
        12 => data,
        4 => eof_close,
        4 => global,
        2 => generic,
        4 => unknown,
        1 => transport,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let chunk = prop_oneof![4 => Just(usize::MAX), 1 => 1usize..16, 1 => 16usize..2000];
    prop_oneof![
        60 => (connection_message(), chunk).prop_map(|(m, c)| Op::Send(m, c)),
        1 => bytes(64).prop_map(Op::Garbage),
        12 => (0usize..4).prop_map(Op::Read),
        12 => (0usize..4, any::<bool>(), size())
            .prop_map(|(n, err, len)| Op::Write(n, if err { Stream::Stderr } else { Stream::Stdout }, len)),
        4 => (0usize..4, prop::option::of(0u32..4)).prop_map(|(n, s)| Op::Exit(n, s)),
        3 => prop_oneof![Just(1000u64), Just(3_600_000)].prop_map(Op::Tick),
        3 => Just(Op::Rekey),
        6 => any::<bool>().prop_map(Op::Stall),
        3 => (1usize..3000).prop_map(Op::Flood),
    ]
}

/// A message before authentication, in the `ssh-userauth` stage.
fn auth_message() -> impl Strategy<Value = Msg> {
    let request = (
        prop_oneof![
            Just("none"),
            Just("password"),
            Just("publickey"),
            Just("keyboard-interactive")
        ],
        prop_oneof![Just("ssh-connection"), Just("nonsense")],
        any::<bool>(),
        prop_oneof![Just(&b"secret"[..]), Just(&b"wrong"[..])],
        0u8..4,
    )
        .prop_map(|(method, service, flag, password, key)| {
            let mut p = vec![50];
            put_string(&mut p, b"fuzz");
            put_string(&mut p, service.as_bytes());
            put_string(&mut p, method.as_bytes());
            match method {
                "password" => {
                    p.push(u8::from(flag));
                    put_string(&mut p, password);
                }
                "publickey" => {
                    // Key 0 is authorized; a query (no signature) or a
                    // bad signature.
                    let k = HostKey::from_seed(&[42 + key; 32]);
                    p.push(u8::from(flag));
                    put_string(&mut p, b"ssh-ed25519");
                    put_string(&mut p, &k.public_blob());
                    if flag {
                        put_string(&mut p, &k.sign_blob(b"not the session"));
                    }
                }
                _ => {}
            }
            Msg {
                payload: p,
                channel: None,
                answer: Some(AUTH),
                fatal: false,
            }
        });
    let service = prop_oneof![Just("ssh-userauth"), Just("ssh-connection")].prop_map(|name| {
        let mut p = vec![5];
        put_string(&mut p, name.as_bytes());
        // A second SERVICE_REQUEST, or an unknown service, ends it.
        Msg {
            payload: p,
            channel: None,
            answer: None,
            fatal: true,
        }
    });
    let truncated = bytes(12).prop_map(|tail| {
        let mut p = vec![50];
        p.extend_from_slice(&tail);
        Msg {
            payload: p,
            channel: None,
            answer: Some(AUTH),
            fatal: false,
        }
    });
    let generic = (2u8..=4, bytes(40)).prop_map(|(t, tail)| {
        let mut p = vec![t];
        p.extend_from_slice(&tail);
        Msg::quiet(p)
    });
    let early = (any::<u8>(), bytes(40))
        .prop_filter("not transport-generic, kex or auth", |(t, _)| {
            !matches!(t, 1..=5 | 20 | 50)
        })
        .prop_map(|(t, tail)| {
            let mut p = vec![t];
            p.extend_from_slice(&tail);
            Msg {
                payload: p,
                channel: None,
                answer: None,
                fatal: true,
            }
        });
    prop_oneof![
        6 => request,
        1 => service,
        1 => truncated,
        1 => generic,
        2 => early,
        1 => connection_message()
            .prop_filter("not transport-generic", |m| !matches!(m.payload[0], 2..=4))
            .prop_map(|m| Msg { answer: None, fatal: true, ..m }),
    ]
}

/// Cases per property: `SSHD_FUZZ_CASES` for a longer run, else a number
/// that keeps `cargo test` to a few seconds.
fn cases(default: u32) -> u32 {
    std::env::var("SSHD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(24),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random steps after login: messages (some large, some split into
    /// small reads), host reads, writes and exits, time, re-exchanges,
    /// and stretches where nobody reads.
    #[test]
    fn after_login(windows in prop::collection::vec(interesting_u32(), 0..4),
                   ops in prop::collection::vec(op(), 1..48)) {
        let mut p = Peer::new();
        p.login();
        // Channels running `cat` first, so that most messages find one.
        for (i, w) in windows.iter().enumerate() {
            p.step(&Op::Send(session(*w), usize::MAX));
            let mut exec = vec![98];
            put_chan(&mut exec, Chan::Open(i));
            put_string(&mut exec, b"exec");
            exec.push(1);
            put_string(&mut exec, b"cat");
            let m = Msg { payload: exec, channel: None, answer: Some(CHANNEL_REQUEST), fatal: false };
            p.step(&Op::Send(m.on(Chan::Open(i)), usize::MAX));
        }
        for op in &ops {
            p.step(op);
            p.check_answers();
            if p.ended() {
                break;
            }
        }
        if !p.ended() {
            p.step(&Op::Stall(false));
            p.check_answers();
        }
        p.finish();
    }

    /// Random messages in the authentication stage: each is answered, or
    /// ends the connection with a reason.
    #[test]
    fn before_login(msgs in prop::collection::vec(auth_message(), 1..12), chunk in 1usize..64) {
        let mut p = Peer::new();
        p.handshake();
        let mut s = vec![5];
        put_string(&mut s, b"ssh-userauth");
        p.send(&s, usize::MAX);
        p.answered = [0; CLASSES];
        for m in &msgs {
            p.step(&Op::Send(m.clone(), chunk));
            p.check_answers();
            if p.ended() || p.authenticated {
                break;
            }
        }
        p.finish();
    }

    /// Anything before the version line and in the first key exchange:
    /// other lines (RFC 4253 §4.2 allows them), over-long ones, a wrong
    /// version, messages before KEXINIT (strict kex refuses them).
    #[test]
    fn before_kex(lines in prop::collection::vec(
                      prop::collection::vec(prop_oneof![Just(b'a'), Just(b' '), Just(b'\r'), Just(b'9')], 0..300), 0..4),
                  version in prop_oneof![4 => Just(V_C.to_vec()), 1 => Just(b"SSH-1.99-x".to_vec()),
                                         1 => Just(b"SSH-3.0-x".to_vec())],
                  early in prop::collection::vec((any::<u8>(), bytes(20)), 0..3),
                  chunk in 1usize..400) {
        let mut p = Peer::new();
        p.pump();
        for l in &lines {
            p.unsent.extend_from_slice(l);
            p.unsent.push(b'\n');
        }
        p.unsent.extend_from_slice(&version);
        p.unsent.extend_from_slice(b"\r\n");
        p.feed(chunk);
        let v_ok = version.starts_with(b"SSH-2.0-") || version.starts_with(b"SSH-1.99-");
        let lines_ok = lines.iter().all(|l| l.len() <= 255);
        prop_assert_eq!(p.ended(), !(v_ok && lines_ok), "{:?}", p.end);
        if !p.ended() {
            for (t, tail) in &early {
                let mut m = vec![*t];
                m.extend_from_slice(tail);
                p.send(&m, chunk);
            }
            if !p.ended() {
                p.send(&kexinit_c(), chunk);
            }
            // Strict kex: anything before KEXINIT ends the connection.
            prop_assert_eq!(p.ended(), !early.is_empty(), "{:?}", p.end);
        }
        if let Some(d) = p.end.clone()
            && !d.by_peer
        {
            prop_assert!(!d.reason.is_empty());
            p.pump();
            prop_assert_eq!(p.disconnect_read.as_deref(), Some(d.reason.as_str()));
        }
        p.finish();
    }
}

/// A server-started re-exchange while the client pipelines requests and
/// reads nothing: the answers held for after the exchange pass their bound
/// and the connection ends with a reason the client reads. (It used to
/// stop reading instead, and hang: the client's KEXINIT is behind its
/// requests.)
#[test]
fn requests_pipelined_into_a_server_rekey() {
    let mut p = Peer::new();
    p.login();
    p.step(&Op::Stall(true));
    p.step(&Op::Tick(3_600_000));
    p.step(&Op::Flood(3000));
    p.step(&Op::Stall(false));
    let end = p.end.clone().expect("the connection hung");
    assert_eq!(end.reason, "too many requests during key exchange");
    p.check_answers();
    p.finish();
}
