//! The SSH server: the `sshd` crate (sans-IO) over the kernel's TCP
//! sockets and processes.
//!
//! - The host key and the authorized keys come from QEMU's firmware
//!   configuration device (`opt/memquota/host_key`, an OpenSSH private key;
//!   `opt/memquota/authorized_keys`), which `scripts/qemu.sh` fills; without
//!   both, no SSH server starts.
//! - A listener thread accepts connections on port 22; each connection is
//!   served by its own thread, charged to a shared pre-authentication
//!   account (`preauth`, under `users`) until the user logs in.
//! - On login the connection becomes a session: a session leader process
//!   (its pid is the session id; never root) takes the connection over, and
//!   every channel's command (`shell` or `exec`) runs as its child, reading
//!   and writing the channel through a [`term::ChannelTerminal`].
//! - Inbound windows are backed by what the session's account can hold
//!   (the `sshd` crate credits only reserved bytes, as stdin is consumed):
//!   a flooding client waits; the session's `max` holds.

mod conn;
mod term;

use alloc::sync::Arc;

use quota::{AccountFlags, NewAccount};
use spin::Once;

use crate::arch::fwcfg::FwCfg;
use crate::heap::{self, ACCOUNTS};
use crate::net::tcp::{self, Buffers};
use crate::{kprintln, sched};

/// The port the server listens on.
pub const PORT: u16 = 22;

/// Socket buffers of one connection.
const BUFFERS: Buffers = Buffers {
    rx: 16 << 10,
    tx: 16 << 10,
};

/// Connections accepted but not yet logged in, at most.
pub const MAX_STARTUPS: usize = 10;

/// What each unauthenticated connection may hold, at most.
pub const PREAUTH_BYTES: usize = 64 << 10;

static PREAUTH: Once<quota::Account<'static>> = Once::new();

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
        Some(Arc::new(sshd::Config::new(host_key, credentials)))
    });
    let Some(config) = config else {
        kprintln!("sshd: no host key or authorized keys in fw_cfg: not started");
        return false;
    };
    let preauth = ACCOUNTS.create(
        Some(heap::users_account()),
        NewAccount {
            flags: AccountFlags::empty(),
            tag: 0,
        },
    );
    let Ok(preauth) = preauth else {
        kprintln!("sshd: no account for unauthenticated connections: not started");
        return false;
    };
    let _ = ACCOUNTS.set_max(
        preauth.id(),
        quota::Limit::Bytes(MAX_STARTUPS * PREAUTH_BYTES),
    );
    PREAUTH.call_once(|| preauth);
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

/// The pre-authentication account.
fn preauth() -> &'static quota::Account<'static> {
    PREAUTH.get().expect("sshd::start ran")
}

/// Accepts connections and gives each its own thread.
fn listen(config: &Arc<sshd::Config>) {
    let mut listener = match tcp::listen(PORT, 4) {
        Ok(l) => l,
        Err(e) => {
            kprintln!("sshd: cannot listen: {e:?}");
            return;
        }
    };
    loop {
        let Ok(stream) = listener.accept(preauth(), BUFFERS) else {
            let _ = sched::sleep_until(crate::time::ticks() + crate::time::TICK_HZ / 10);
            continue;
        };
        let config = config.clone();
        let scope = quota::Scope {
            account: preauth().id(),
            fallible: false,
        };
        let started = heap::charge_to(preauth(), || {
            sched::spawn("ssh-conn", 32 << 10, scope, move |_| {
                conn::serve(&config, stream);
            })
        });
        if started.is_err() {
            kprintln!("sshd: cannot start a connection thread: refused");
        }
    }
}
