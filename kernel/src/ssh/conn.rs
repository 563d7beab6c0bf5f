//! One SSH connection: bytes between its socket and the `sshd` crate's
//! `Connection`, before login on a kernel thread charged to the
//! pre-authentication account, after it in the session leader process,
//! which starts a child process per channel and reports how it ended.

use alloc::collections::BTreeMap;
use alloc::string::ToString;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};

use quota::AccountId;
use sshd::{ChannelId, Connection, Event, Exit};

use super::term::ChannelTerminal;
use crate::heap::{self, ACCOUNTS};
use crate::net::{self, tcp::TcpStream};
use crate::proc::{self, ExitStatus, Process, Spawn};
use crate::sched::Stop;
use crate::tty::Terminal;
use crate::{rng, time};

/// The kernel as the `sshd` crate's host: its clock, its random numbers,
/// how much the session's account can still hold, and the channels'
/// terminals that a pty's Ctrl-C interrupts.
pub(super) struct KernelHost<'t> {
    /// The session's account.
    pub account: Option<AccountId>,
    /// The channels' terminals.
    terms: &'t [(ChannelId, Weak<ChannelTerminal>)],
}

impl sshd::Clock for KernelHost<'_> {
    fn now_ms(&self) -> u64 {
        time::ticks().saturating_mul(1000) / time::TICK_HZ
    }
}

impl sshd::Random for KernelHost<'_> {
    fn fill(&mut self, buf: &mut [u8]) {
        // Seeded from RNDR at boot (the server starts only if it was).
        let _ = rng::fill(buf);
    }
}

impl sshd::Interrupts for KernelHost<'_> {
    fn interrupt(&mut self, channel: ChannelId) -> bool {
        self.terms
            .iter()
            .find(|(c, _)| *c == channel)
            .and_then(|(_, t)| t.upgrade())
            .is_some_and(|t| t.interrupt())
    }
}

impl sshd::Headroom for KernelHost<'_> {
    fn headroom(&self) -> Option<usize> {
        let snap = ACCOUNTS.snapshot(self.account?)?;
        match snap.max {
            quota::Limit::Bytes(max) => Some(max.saturating_sub(snap.current)),
            quota::Limit::Unlimited => None,
        }
    }
}

/// A connection as its threads share it.
///
/// Its locks are spin locks that neither mask interrupts nor count as
/// kernel locks, and a waiter yields: the connection's work (crypto,
/// buffers) allocates, charged to the session, and an allocation that
/// must fail then unwinds the process that made it, releasing the lock,
/// instead of halting the kernel, as a failure under a kernel lock must.
pub(super) struct Shared {
    conn: spin::Mutex<Connection>,
    stream: TcpStream,
    /// Bumped whenever something a waiter may be waiting for changed.
    changes: AtomicU64,
    /// The session's account.
    account: AccountId,
    /// The channels' terminals, for Ctrl-C (taken before `conn`).
    terms: spin::Mutex<Vec<(ChannelId, Weak<ChannelTerminal>)>>,
    /// Set when the leader has stopped serving the connection: its
    /// channels' commands have no one to talk to.
    ended: AtomicBool,
}

/// Takes `lock`, giving the CPU to others while someone else holds it.
///
/// Waiting is a safe point: a thread that must stop (killed, interrupted,
/// its account out of memory) stops here instead of waiting on. No holder
/// blocks while it holds a connection's lock, so a wait normally ends
/// within the holder's time slice; but a holder ended on the spot (a stack
/// overflow, which these locks do not prevent since they are not kernel
/// locks) never releases it, and its waiters must still be killable.
///
/// # Errors
/// The [`Stop`] of the waiting thread.
fn lock<T>(lock: &spin::Mutex<T>) -> Result<spin::MutexGuard<'_, T>, Stop> {
    loop {
        if let Some(guard) = lock.try_lock() {
            return Ok(guard);
        }
        crate::sched::check_current()?;
        crate::sched::yield_now();
    }
}

impl Shared {
    /// Runs `f` on the connection with a host for the session.
    ///
    /// # Errors
    /// The [`Stop`] of the calling thread, if it must stop while waiting
    /// for the connection (see [`lock`]).
    pub(super) fn with<R>(
        &self,
        f: impl FnOnce(&mut Connection, &mut KernelHost<'_>) -> R,
    ) -> Result<R, Stop> {
        let terms = lock(&self.terms)?;
        let mut host = KernelHost {
            account: Some(self.account),
            terms: &terms,
        };
        Ok(f(&mut *lock(&self.conn)?, &mut host))
    }

    /// Whether the leader has stopped serving the connection.
    pub(super) fn ended(&self) -> bool {
        self.ended.load(SeqCst)
    }

    pub(super) fn changes(&self) -> u64 {
        self.changes.load(Relaxed)
    }

    /// Tells every waiter that something changed.
    pub(super) fn bump(&self) {
        self.changes.fetch_add(1, Relaxed);
        net::kick();
    }

    /// Waits until something changes after `seen`.
    pub(super) fn wait_change(&self, seen: u64) -> Result<(), Stop> {
        net::wait_until(|| self.changes() != seen)
    }
}

/// Why a connection ends.
enum End {
    /// The peer or the connection closed it.
    Closed,
    /// Its own memory was refused (the session is at its limit).
    NoMemory,
    /// The serving thread must stop.
    Stopped,
}

/// Bytes read from the socket not yet taken by the connection.
struct Pump {
    pending: Vec<u8>,
    last_poll: u64,
}

impl Pump {
    /// Moves bytes both ways once; returns whether anything moved, and the
    /// events that came out.
    fn run(&mut self, shared: &Shared, events: &mut Vec<Event>) -> Result<bool, End> {
        let mut moved = false;
        let mut buf = [0u8; 2048];
        if self.pending.len() < 16 << 10 {
            match shared.stream.try_read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    heap::fallible(|| self.pending.try_reserve(n)).map_err(|_| End::NoMemory)?;
                    self.pending.extend_from_slice(&buf[..n]);
                    moved = true;
                }
                Err(_) => {
                    shared
                        .with(|c, _| c.close_input())
                        .map_err(|_| End::Stopped)?;
                }
            }
        }
        let status = shared.stream.status().map_err(|_| End::Closed)?;
        let result = shared.with(|c, host| {
            let mut input = Ok(0);
            if !self.pending.is_empty() {
                input = c.input(&self.pending, host);
            }
            let now = time::ticks();
            if now.saturating_sub(self.last_poll) >= time::TICK_HZ {
                self.last_poll = now;
                if let Err(d) = c.poll(host) {
                    input = Err(d);
                }
            }
            while let Some(e) = c.event() {
                events.push(e);
            }
            let out = c.output();
            let mut sent = 0;
            if !out.is_empty() && status.writable > 0 {
                sent = shared.stream.try_write(out).unwrap_or(0);
                c.consume_output(sent);
            }
            (input, sent, c.closed().is_some() && c.output().is_empty())
        });
        let result = result.map_err(|_| End::Stopped)?;
        let (input, sent, finished) = result;
        let Ok(n) = input else {
            // Flush what the connection says last, then close.
            let _ = shared.with(|c, _| shared.stream.try_write(c.output()));
            return Err(End::Closed);
        };
        if n > 0 {
            self.pending.drain(..n);
            moved = true;
        }
        if finished || (status.eof && self.pending.is_empty() && sent == 0 && !moved) {
            return Err(End::Closed);
        }
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
        Ok(moved || sent > 0 || !events.is_empty())
    }

    /// Waits until the socket or a waiter has something for the pump, or
    /// `also()` holds.
    fn wait(shared: &Shared, seen: u64, mut also: impl FnMut() -> bool) -> Result<(), End> {
        let has_output = shared
            .with(|c, _| !c.output().is_empty())
            .map_err(|_| End::Stopped)?;
        net::wait_until(|| {
            shared.changes() != seen
                || also()
                || shared.stream.status().is_ok_and(|s| {
                    s.readable > 0 || s.eof || s.write_closed || (has_output && s.writable > 0)
                })
        })
        .map_err(|_| End::Stopped)?;
        let _ = time::ticks();
        Ok(())
    }
}

/// Starts the session leader of a new connection, in a session whose
/// account is `account` (which holds the socket's buffers already).
///
/// # Errors
/// Why the process could not start; the connection is then dropped.
pub(super) fn start(
    config: Arc<sshd::Config>,
    stream: TcpStream,
    account: quota::Account<'static>,
    startup: &'static super::Startup,
    since: u64,
) -> Result<(), proc::ProcError> {
    let spawn = Spawn {
        name: "sshd".into(),
        parent: None,
        root_session: false,
        session_max: quota::Limit::Bytes(super::PREAUTH_BYTES),
        pids_max: crate::cmdline::pids_max(),
        operator: false,
        foreground: None,
        notify: None,
    };
    let body: proc::Body = alloc::boxed::Box::new(move |me| {
        let mut place = Place(Some((startup, since)));
        Ok(serve(me, &config, stream, &mut place))
    });
    proc::spawn_session_in(spawn, account, super::LEADER_STACK, body).map(|_| ())
}

/// A connection's place among those waiting to log in, left at login or
/// when it ends, whichever comes first (then it may be another's).
struct Place(Option<(&'static super::Startup, u64)>);

impl Place {
    fn evicted(&self) -> bool {
        self.0
            .is_some_and(|(startup, since)| startup.evicted(since))
    }

    /// The connection moved bytes, having got as far as `progress`.
    fn touch(&self, progress: u8) {
        if let Some((startup, since)) = self.0 {
            startup.touch(since, progress);
        }
    }

    fn leave(&mut self) {
        if let Some((startup, since)) = self.0.take() {
            startup.leave(since);
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.leave();
    }
}

/// The session leader: serves the connection until its user logs in (or
/// the listener evicts it), then runs the session.
fn serve(
    me: &Arc<Process>,
    config: &Arc<sshd::Config>,
    stream: TcpStream,
    place: &mut Place,
) -> i32 {
    let mut host = KernelHost {
        account: Some(me.account_id()),
        terms: &[],
    };
    let conn = Connection::new(config.clone(), &mut host);
    let shared = Arc::new(Shared {
        conn: spin::Mutex::new(conn),
        stream,
        changes: AtomicU64::new(0),
        account: me.account_id(),
        terms: spin::Mutex::new(Vec::new()),
        ended: AtomicBool::new(false),
    });
    shared.stream.set_linger_ms(super::PREAUTH_LINGER_MS);
    // Admission control: under critical memory pressure a new session is
    // refused and told why; the sessions already in carry on.
    if let Some(why) = crate::pressure::refusal() {
        let _ = shared.with(|c, _| {
            let _ = c.disconnect(&why.to_string());
            shared.stream.try_write(c.output())
        });
        return 0;
    }
    let mut pump = Pump {
        pending: Vec::new(),
        last_poll: time::ticks(),
    };
    let mut events = Vec::new();
    loop {
        if place.evicted() {
            let _ = shared.with(|c, _| {
                let _ =
                    c.disconnect("too many connections waiting to log in: the idlest is closed");
                shared.stream.try_write(c.output())
            });
            shared.stream.set_linger_ms(super::EVICTED_LINGER_MS);
            return 0;
        }
        let seen = shared.changes();
        // Refused, never forced: a peer cannot make this allocate past its
        // limit (an allocation that cannot fail unwinds this process).
        let Ok(moved) = heap::fallible(|| pump.run(&shared, &mut events)) else {
            return 0;
        };
        if let Some(at) = events
            .iter()
            .position(|e| matches!(e, Event::Authenticated { .. }))
        {
            // What came with the login is the session's to handle.
            events.drain(..=at);
            place.leave();
            shared.stream.set_linger_ms(crate::net::LINGER_MS);
            let _ = ACCOUNTS.set_max(me.account_id(), crate::cmdline::session_max());
            shared.bump();
            return session(me, &shared, pump, events);
        }
        events.clear();
        if moved && let Ok(progress) = shared.with(|c, _| c.progress()) {
            place.touch(progress);
        }
        if !moved && Pump::wait(&shared, seen, || place.evicted()).is_err() {
            return 0;
        }
    }
}

/// A channel's command.
struct Chan {
    process: Arc<Process>,
    term: Arc<ChannelTerminal>,
}

/// The logged-in session: serves the connection, one child per channel.
fn session(me: &Arc<Process>, shared: &Arc<Shared>, mut pump: Pump, mut events: Vec<Event>) -> i32 {
    // However the leader ends, the client is told why (a no-op if the
    // connection already closed): if an allocation it could not have
    // unwinds it, the session ran out of memory.
    let mut farewell = Farewell {
        shared,
        why: Some("the session ran out of memory: its limit leaves the connection no room"),
    };
    let mut channels: BTreeMap<ChannelId, Chan> = BTreeMap::new();
    loop {
        let seen = shared.changes();
        // The connection's own memory is refused, never forced, at the
        // session's limit: its commands may be killed for memory, the
        // connection that reports it must not be.
        let moved = match heap::fallible(|| pump.run(shared, &mut events)) {
            Ok(moved) => moved,
            // The peer or the connection ended it.
            Err(End::Closed) => {
                farewell.why = None;
                break;
            }
            Err(End::Stopped) => {
                farewell.why = Some(STOPPED);
                break;
            }
            // The farewell says the session ran out of memory.
            Err(End::NoMemory) => break,
        };
        for event in events.drain(..) {
            handle(me, shared, &mut channels, event);
        }
        let reaped = reap(me, shared, &mut channels);
        let exited = || channels.values().any(|c| c.process.has_exited());
        if !moved && !reaped && Pump::wait(shared, seen, exited).is_err() {
            farewell.why = Some(STOPPED);
            break;
        }
    }
    for chan in channels.values() {
        let _ = proc::kill(me, chan.process.pid);
    }
    0
}

/// Why a session whose leader was stopped ended.
const STOPPED: &str = "the session was stopped (killed, or over its memory limit)";

/// When dropped (the leader stops serving, however it ends): tells the
/// channels' commands that the connection has ended, and sends a
/// DISCONNECT with `why` (if any), unless the connection has already
/// closed. Its bytes are the kernel's: it runs when the session
/// may have no memory left.
struct Farewell<'a> {
    shared: &'a Shared,
    why: Option<&'static str>,
}

impl Drop for Farewell<'_> {
    fn drop(&mut self) {
        // A command its shell started just as the leader ended may have
        // missed the session's kill; waiting on the connection, it would
        // wait forever, holding the session's memory.
        self.shared.ended.store(true, SeqCst);
        self.shared.bump();
        let Some(why) = self.why else { return };
        // Its leader may be stopping, so the wait for the connection
        // cannot be a safe point; it is bounded instead (a holder ended on
        // the spot never lets go).
        let until = time::ticks() + time::TICK_HZ;
        let conn = loop {
            if let Some(conn) = self.shared.conn.try_lock() {
                break conn;
            }
            if time::ticks() >= until {
                return;
            }
            crate::sched::yield_now();
        };
        heap::as_kernel(|| {
            let mut c = conn;
            if c.closed().is_none() {
                let _ = c.disconnect(why);
                let _ = self.shared.stream.try_write(c.output());
            }
        });
    }
}

fn handle(
    me: &Arc<Process>,
    shared: &Arc<Shared>,
    channels: &mut BTreeMap<ChannelId, Chan>,
    event: Event,
) {
    match event {
        Event::Start { channel, command } => {
            let term = Arc::new(ChannelTerminal::new(
                shared.clone(),
                channel,
                command.pty.is_some(),
            ));
            let line = command.exec;
            // A shell runs the channel: interactive, or the one `exec` line.
            let name = "sh".to_string();
            let spawn = Spawn {
                name,
                parent: Some(me.clone()),
                root_session: false,
                session_max: quota::Limit::Unlimited,
                pids_max: None,
                operator: false,
                foreground: None,
                // Its exit wakes the connection's waiters (the leader
                // checks its children's states whenever it wakes).
                notify: Some(net::kick),
            };
            let body_term: Arc<dyn Terminal> = term.clone();
            let body_shared = shared.clone();
            let body: proc::Body = alloc::boxed::Box::new(move |p| {
                let status = match &line {
                    Some(line) => crate::shell::run_line(p, &body_term, line),
                    None => crate::shell::run(p, &body_term),
                };
                body_shared.bump();
                status
            });
            match proc::spawn(spawn, body) {
                Ok(process) => {
                    // If the leader must stop, its channels' commands are
                    // killed anyway: Ctrl-C need not reach this one.
                    if let Ok(mut terms) = lock(&shared.terms) {
                        terms.push((channel, Arc::downgrade(&term)));
                    }
                    channels.insert(channel, Chan { process, term });
                }
                Err(e) => {
                    let message = alloc::format!("cannot start: {e}\r\n");
                    let _ = shared.with(|c, _| {
                        let _ = c.write(channel, sshd::Stream::Stderr, message.as_bytes());
                        c.exit(channel, Exit::Status(127));
                    });
                }
            }
        }
        Event::Signal { channel, name } => {
            if let Some(chan) = channels.get(&channel)
                && name == "INT"
            {
                let _ = chan.term.interrupt();
            }
        }
        Event::Closed(channel) => {
            if let Some(chan) = channels.get(&channel) {
                let _ = proc::kill(me, chan.process.pid);
            }
            shared.bump();
        }
        Event::Authenticated { .. }
        | Event::StdinReady(_)
        | Event::Eof(_)
        | Event::Writable(_)
        | Event::WindowChange { .. } => shared.bump(),
    }
}

/// Reports every channel command that ended; whether any did.
fn reap(me: &Arc<Process>, shared: &Shared, channels: &mut BTreeMap<ChannelId, Chan>) -> bool {
    let mut any = false;
    channels.retain(|&channel, chan| {
        let Some(status) = proc::try_wait(me, chan.process.pid) else {
            return true;
        };
        any = true;
        let exit = match &status {
            ExitStatus::Code(code) => Exit::Status(u32::try_from(*code).unwrap_or(1)),
            ExitStatus::Interrupted => Exit::Signal {
                name: "INT".into(),
                message: status.to_string(),
            },
            _ => Exit::Signal {
                name: "KILL".into(),
                message: status.to_string(),
            },
        };
        // A leader that must stop ends the connection at its next wait.
        let _ = shared.with(|c, _| c.exit(channel, exit));
        if let Ok(mut terms) = lock(&shared.terms) {
            terms.retain(|(c, _)| *c != channel);
        }
        false
    });
    if any {
        shared.bump();
    }
    any
}
