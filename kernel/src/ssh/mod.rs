//! The SSH server: the `sshd` crate (sans-IO) over the kernel's TCP
//! sockets and processes.
//!
//! - The host key and the authorized keys come from QEMU's firmware
//!   configuration device (`opt/memquota/host_key`, an OpenSSH private key;
//!   `opt/memquota/authorized_keys`), which `scripts/qemu.sh` fills; without
//!   both, no SSH server starts.
//! - A listener thread accepts connections on port 22. Each socket is
//!   armed with its own account under `users` (max [`PREAUTH_BYTES`]),
//!   and each accepted connection at once becomes a session: a leader
//!   process (`sshd`, never root) whose session account is that account,
//!   so everything the connection ever allocates (socket buffers, stack,
//!   packet and crypto state) is charged to it. On login the session's
//!   `max` is raised to the boot parameter `session_max`; every channel's
//!   command (`shell` or `exec`) runs as the leader's child, reading and
//!   writing the channel through a [`term::ChannelTerminal`].
//! - Before login a connection is a small, killable unit: an allocation
//!   it cannot have ends it (the process unwinds), never the kernel. At
//!   most [`MAX_STARTUPS`] connections wait to log in; the next one evicts
//!   the one that got least far and was idle longest (OpenSSH refuses new
//!   ones at random instead, which lets a crowd of idle peers keep real
//!   users out).
//! - Inbound windows are backed by what the session's account can hold
//!   (the `sshd` crate credits only reserved bytes, as stdin is consumed):
//!   a flooding client waits; the session's `max` holds.

mod conn;
mod term;

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

use crate::arch::fwcfg::FwCfg;
use crate::heap;
use crate::net::tcp::{self, Buffers, NetError};
use crate::{kprintln, sched};

/// The port the server listens on.
pub const PORT: u16 = 22;

/// Socket buffers of one connection.
const BUFFERS: Buffers = Buffers {
    rx: 16 << 10,
    tx: 16 << 10,
};

/// Sockets kept listening (smoltcp has no SYN queue: a SYN that finds
/// none armed is reset), each with its buffers charged to its own account.
const BACKLOG: usize = 8;

/// Connections accepted but not yet logged in, at most.
pub const MAX_STARTUPS: usize = 10;

/// What a connection may hold before its user logs in: its socket
/// buffers (32 KiB), its leader's stack ([`LEADER_STACK`]) and its packet
/// and key-exchange state (measured: about 12 KiB after a key exchange),
/// with room for the largest packet a client sends before login.
pub const PREAUTH_BYTES: usize = 160 << 10;

/// The stack of a connection's leader: key exchanges run on it, and an
/// allocation failure unwinds it (32 KiB overflowed while unwinding).
pub const LEADER_STACK: usize = 64 << 10;

/// A place for one connection waiting to log in. The listener and the
/// connections share [`STARTUPS`], a fixed table: tracking who waits needs
/// no heap, so nothing of it outlives a connection.
pub(crate) struct Startup {
    state: AtomicU8,
    /// When it was taken (the listener's count of accepted connections).
    since: AtomicU64,
    /// Whom to evict first, lowest first: the peer's progress
    /// (`Connection::progress`) above its last activity ([`ACTIVITY`]).
    rank: AtomicU64,
}

/// Counts activity of waiting connections: a connection's last is in its
/// place's `rank`.
static ACTIVITY: AtomicU64 = AtomicU64::new(0);

/// A rank for a connection that made `progress` just now.
fn rank(progress: u8) -> u64 {
    (u64::from(progress) << 56) | (ACTIVITY.fetch_add(1, Relaxed) & ((1 << 56) - 1))
}

const FREE: u8 = 0;
const WAITING: u8 = 1;
const EVICT: u8 = 2;

static STARTUPS: [Startup; MAX_STARTUPS] = [const {
    Startup {
        state: AtomicU8::new(FREE),
        since: AtomicU64::new(0),
        rank: AtomicU64::new(0),
    }
}; MAX_STARTUPS];

impl Startup {
    /// Whether the listener asked the connection that took this place at
    /// `since` to end (or has already given the place to another).
    pub(crate) fn evicted(&self, since: u64) -> bool {
        self.since.load(Relaxed) != since || self.state.load(Relaxed) == EVICT
    }

    /// The connection that took this place at `since` made `progress`
    /// (it moved bytes): it goes to the back of the eviction order among
    /// those that got as far.
    pub(crate) fn touch(&self, since: u64, progress: u8) {
        if self.since.load(Relaxed) == since {
            self.rank.store(rank(progress), Relaxed);
        }
    }

    /// The connection that took this place at `since` logged in or ended:
    /// the place is free, unless it has gone to another connection since
    /// (an evicted one that took long to leave).
    pub(crate) fn leave(&self, since: u64) {
        if self.since.load(Relaxed) == since {
            let left = self
                .state
                .fetch_update(Relaxed, Relaxed, |s| (s != FREE).then_some(FREE));
            // The listener may be waiting for this place (`evict`).
            if left == Ok(EVICT) {
                crate::net::kick();
            }
        }
    }
}

/// Before login a connection's close waits this long for the peer, then
/// resets: peers that never finish closing cannot keep sockets taken.
pub const PREAUTH_LINGER_MS: u64 = 500;

/// An evicted connection's close waits only this long: its DISCONNECT is
/// sent, and its socket is free for the next arrival. (Lingering 500 ms,
/// a crowd arriving at 150 a second held every socket in closing ones.)
pub const EVICTED_LINGER_MS: u64 = 50;

/// A place for a new connection: a free one, or else that of the waiting
/// connection that got least far towards login and, among those, was idle
/// longest, which is told to end (and given a moment to go). An idle crowd
/// is evicted oldest first; a login under way, which moves bytes at every
/// step and soon has its key exchange, is not evicted for newcomers that
/// sent no more than a version line (when it was simply the oldest, a
/// crowd arriving at 150 a second evicted 9 logins in 10).
fn take_startup(since: u64) -> &'static Startup {
    let place = STARTUPS
        .iter()
        .find(|s| s.state.load(Relaxed) == FREE)
        .unwrap_or_else(|| {
            let last = STARTUPS
                .iter()
                .min_by_key(|s| s.rank.load(Relaxed))
                .unwrap_or(&STARTUPS[0]);
            evict(last);
            last
        });
    place.since.store(since, Relaxed);
    place.rank.store(rank(0), Relaxed);
    place.state.store(WAITING, Relaxed);
    place
}

/// Ends a waiting connection and gives it a moment (200 ms, or until the
/// next network event after that) to go. The wait ends as soon as it has
/// gone (it kicks the network thread as it leaves), not at a timer tick:
/// each tick-long wait capped evictions near 70 a second, and a crowd
/// arriving faster got the listener's sockets reset under a real login.
fn evict(oldest: &Startup) {
    if oldest
        .state
        .compare_exchange(WAITING, EVICT, Relaxed, Relaxed)
        .is_err()
    {
        return;
    }
    crate::net::kick();
    let until = crate::time::ticks() + crate::time::TICK_HZ / 5;
    // The listener is a kernel thread: never stopped.
    let _ = crate::net::wait_until(|| {
        oldest.state.load(Relaxed) == FREE || crate::time::ticks() >= until
    });
}

/// Reads the keys from `fw_cfg` and starts the listener; says why not if it
/// cannot.
pub fn start(fw_cfg: Option<usize>) -> bool {
    let Some(device) = fw_cfg.and_then(FwCfg::claim) else {
        kprintln!("sshd: no fw_cfg device: not started");
        return false;
    };
    let config = heap::as_kernel(|| {
        let key = device.read_file("opt/memquota/host_key")?;
        let keys = device.read_file("opt/memquota/authorized_keys")?;
        let host_key = sshd::HostKey::from_openssh(core::str::from_utf8(&key).ok()?)?;
        let authorized = sshd::AuthorizedKey::parse_file(core::str::from_utf8(&keys).ok()?);
        let credentials = sshd::Credentials {
            authorized_keys: authorized,
            password: None,
        };
        let mut config = sshd::Config::new(host_key, credentials);
        // A quarter of the session's headroom for stdin windows, not half:
        // the rest holds the connection's own buffers, its commands and
        // their output (a command that floods out needs that room).
        config.window.share_percent = 25;
        Some(Arc::new(config))
    });
    let Some(config) = config else {
        kprintln!("sshd: no host key or authorized keys in fw_cfg: not started");
        return false;
    };
    let scope = quota::Scope {
        account: heap::kernel_account().id(),
        fallible: false,
    };
    let keys = config.credentials.authorized_keys.len();
    let started = sched::spawn("sshd", 32 << 10, scope, move |_| listen(&config));
    match started {
        Ok(_) => {
            kprintln!("sshd: listening on port {PORT} ({keys} authorized keys)");
            true
        }
        Err(e) => {
            kprintln!("sshd: cannot start: {e:?}");
            false
        }
    }
}

/// A new connection's account: under `users`, at most [`PREAUTH_BYTES`]
/// until its user logs in.
fn connection_account() -> Result<quota::Account<'static>, NetError> {
    heap::new_user_account(PREAUTH_BYTES).map_err(|_| NetError::NoMemory)
}

/// Accepts connections and starts each one's session leader.
fn listen(config: &Arc<sshd::Config>) {
    let mut listener = match tcp::listen(PORT, BACKLOG) {
        Ok(l) => l,
        Err(e) => {
            kprintln!("sshd: cannot listen: {e:?}");
            return;
        }
    };
    let mut accepted: u64 = 0;
    loop {
        let Ok((stream, account)) = listener.accept_each(connection_account, BUFFERS) else {
            let _ = sched::sleep_until(crate::time::ticks() + crate::time::TICK_HZ / 10);
            continue;
        };
        accepted += 1;
        let startup = take_startup(accepted);
        if let Err(e) = conn::start(config.clone(), stream, account, startup, accepted) {
            startup.leave(accepted);
            kprintln!("sshd: cannot start a connection: {e}");
        }
    }
}
