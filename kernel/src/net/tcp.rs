//! TCP for the kernel's services: listen on a port, accept connections
//! whose buffers someone pays for, and move bytes.
//!
//! ```text
//! let mut listener = net::tcp::listen(22, 4)?;
//! let conn = listener.accept(&account, Buffers { rx: 16 << 10, tx: 16 << 10 })?;
//! let n = conn.read(&mut buf)?;   // blocks; 0 = the peer closed
//! conn.write_all(b"...")?;        // blocks while the send buffer is full
//! drop(conn);                     // FIN, and the buffers are freed once closed
//! ```
//!
//! smoltcp has no backlog: a listening socket *becomes* the connection.
//! A [`Listener`] keeps up to `backlog` sockets listening (*armed*); each
//! armed socket's receive and send buffers are allocated when it is armed,
//! charged to the account the arming [`Listener::accept`] was given, and
//! fallibly (`heap::fallible`, `try_reserve_exact`). If not even one socket
//! can be armed (the account's limit, the heap's floor, the socket table
//! full), `accept` returns the error and nothing listens: the peer's SYN is
//! answered with a reset. So a connection exists only once its buffers are
//! paid for, and they stay charged to that account until the socket is
//! freed, whichever thread frees it.
//!
//! All calls are safe points: a blocking call returns
//! [`NetError::Stop`] when its thread must stop.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use quota::Account;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::AnySocket;
use smoltcp::socket::tcp::{self, State};
use smoltcp::wire::IpEndpoint;

use super::{LINGER_MS, MAX_SOCKETS, Net, Orphan, kick, wait_until, with};
use crate::heap;
use crate::sched::Stop;

/// Sizes of one connection's socket buffers, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffers {
    /// Received bytes not yet read (bounds the TCP window).
    pub rx: usize,
    /// Written bytes not yet acknowledged by the peer.
    pub tx: usize,
}

/// Why a network call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The calling thread must stop (killed, interrupted, out of memory).
    Stop(Stop),
    /// The network is not running.
    Down,
    /// The connection was reset or is closed for this direction.
    Closed,
    /// The buffers could not be charged to the account.
    NoMemory,
    /// The socket table is full.
    NoSocket,
}

impl From<Stop> for NetError {
    fn from(stop: Stop) -> Self {
        NetError::Stop(stop)
    }
}

impl core::fmt::Display for NetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetError::Stop(stop) => write!(f, "{stop:?}"),
            NetError::Down => f.write_str("the network is down"),
            NetError::Closed => f.write_str("connection closed"),
            NetError::NoMemory => f.write_str("no memory for the socket buffers"),
            NetError::NoSocket => f.write_str("the socket table is full"),
        }
    }
}

/// Up to `backlog` sockets listening on one port.
pub struct Listener {
    port: u16,
    backlog: usize,
    armed: Vec<Armed>,
}

/// A listening socket and, with [`Listener::accept_each`], the account its
/// buffers are charged to, handed over with the connection.
struct Armed {
    handle: SocketHandle,
    account: Option<Account<'static>>,
}

/// Listens on TCP `port` with up to `backlog` (at least 1) connections
/// waiting to be accepted. Nothing listens until the first
/// [`Listener::accept`].
///
/// # Errors
/// [`NetError::Down`] if the network is not running.
pub fn listen(port: u16, backlog: usize) -> Result<Listener, NetError> {
    if super::card().is_none() {
        return Err(NetError::Down);
    }
    let backlog = backlog.clamp(1, MAX_SOCKETS / 2);
    Ok(Listener {
        port,
        backlog,
        armed: heap::as_kernel(|| Vec::with_capacity(backlog)),
    })
}

/// `bytes` zeroed bytes charged to `account`, or `None` if it refuses.
fn charged_buffer(account: &Account<'_>, bytes: usize) -> Option<Vec<u8>> {
    heap::charge_to(account, || {
        heap::fallible(|| {
            let mut buf = Vec::new();
            buf.try_reserve_exact(bytes).ok()?;
            buf.resize(bytes, 0);
            Some(buf)
        })
    })
}

fn is_waiting(state: State) -> bool {
    matches!(state, State::Listen | State::SynReceived)
}

impl Listener {
    /// Waits for a connection and returns it. First arms sockets up to the
    /// backlog, their buffers charged to `account` (see the module doc).
    ///
    /// # Errors
    /// [`NetError::NoMemory`] or [`NetError::NoSocket`] if no socket could
    /// be armed (connections are refused meanwhile), [`NetError::Down`],
    /// or the thread's [`Stop`].
    pub fn accept(
        &mut self,
        account: &Account<'_>,
        buffers: Buffers,
    ) -> Result<TcpStream, NetError> {
        let (stream, _) = self.accept_armed(|l| {
            Ok(Armed {
                handle: l.arm(account, buffers)?,
                account: None,
            })
        })?;
        Ok(stream)
    }

    /// As [`Listener::accept`], but each socket is armed with its own
    /// account, made by `account`: the connection comes with the account
    /// that holds its buffers (and can hold all else that is allocated for
    /// it).
    ///
    /// # Errors
    /// As [`Listener::accept`], or what `account` fails with.
    pub fn accept_each(
        &mut self,
        mut account: impl FnMut() -> Result<Account<'static>, NetError>,
        buffers: Buffers,
    ) -> Result<(TcpStream, Account<'static>), NetError> {
        let (stream, account) = self.accept_armed(|l| {
            let account = account()?;
            let handle = l.arm(&account, buffers)?;
            Ok(Armed {
                handle,
                account: Some(account),
            })
        })?;
        Ok((stream, account.ok_or(NetError::NoSocket)?))
    }

    /// Arms sockets up to the backlog now, their buffers charged to
    /// `account`, so connections are taken before the first
    /// [`Listener::accept`] (which arms the same way).
    ///
    /// # Errors
    /// As [`Listener::accept`], if no socket could be armed.
    pub fn arm_now(&mut self, account: &Account<'_>, buffers: Buffers) -> Result<(), NetError> {
        while self.armed.len() < self.backlog {
            match self.arm(account, buffers) {
                Ok(handle) => heap::as_kernel(|| {
                    self.armed.push(Armed {
                        handle,
                        account: None,
                    });
                }),
                Err(e) if self.armed.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        kick();
        Ok(())
    }

    fn accept_armed(
        &mut self,
        mut arm: impl FnMut(&Self) -> Result<Armed, NetError>,
    ) -> Result<(TcpStream, Option<Account<'static>>), NetError> {
        loop {
            while self.armed.len() < self.backlog {
                match arm(self) {
                    Ok(armed) => heap::as_kernel(|| self.armed.push(armed)),
                    Err(e) if self.armed.is_empty() => return Err(e),
                    Err(_) => break,
                }
            }
            kick();
            let mut found = None;
            wait_until(|| {
                found = with(|net| {
                    self.armed
                        .iter()
                        .position(|a| !is_waiting(net.sockets.get::<tcp::Socket>(a.handle).state()))
                })
                .unwrap_or(None);
                found.is_some()
            })?;
            let Some(index) = found else { continue };
            let Armed { handle, account } = self.armed.swap_remove(index);
            let alive = with(|net| {
                let state = net.sockets.get::<tcp::Socket>(handle).state();
                if state == State::Closed {
                    drop(net.sockets.remove(handle));
                    false
                } else {
                    true
                }
            })
            .ok_or(NetError::Down)?;
            if alive {
                let stream = TcpStream {
                    handle,
                    linger_ms: AtomicU64::new(LINGER_MS),
                };
                return Ok((stream, account));
            }
        }
    }

    fn arm(&self, account: &Account<'_>, buffers: Buffers) -> Result<SocketHandle, NetError> {
        let rx = charged_buffer(account, buffers.rx).ok_or(NetError::NoMemory)?;
        let tx = charged_buffer(account, buffers.tx).ok_or(NetError::NoMemory)?;
        let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
        socket.listen(self.port).map_err(|_| NetError::NoSocket)?;
        with(|net| {
            // The DHCP client holds one slot; keep one more spare so a
            // full table never makes the slot vector grow.
            if net.sockets.iter().count() >= MAX_SOCKETS - 1 {
                return Err(NetError::NoSocket);
            }
            Ok(heap::as_kernel(|| net.sockets.add(socket)))
        })
        .ok_or(NetError::Down)?
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let armed = core::mem::take(&mut self.armed);
        with(|net| {
            for a in &armed {
                drop(net.sockets.remove(a.handle));
            }
        });
        heap::as_kernel(|| drop(armed));
    }
}

/// What a connection can do now, for callers that wait on several things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// Bytes received and not yet read.
    pub readable: usize,
    /// Bytes that can be written without blocking.
    pub writable: usize,
    /// The peer will send nothing more (FIN or reset).
    pub eof: bool,
    /// Nothing more can be written (the connection is closing or reset).
    pub write_closed: bool,
}

/// An accepted TCP connection. Dropping it closes it (FIN); its socket and
/// buffers are freed once the close completes, or after a linger time.
pub struct TcpStream {
    handle: SocketHandle,
    /// How long a close may wait for the peer before a reset
    /// ([`TcpStream::set_linger_ms`]).
    linger_ms: AtomicU64,
}

impl TcpStream {
    fn socket<R>(&self, f: impl FnOnce(&mut tcp::Socket<'static>) -> R) -> Result<R, NetError> {
        with(|net| f(net.sockets.get_mut::<tcp::Socket>(self.handle))).ok_or(NetError::Down)
    }

    /// The peer's address and port.
    pub fn peer(&self) -> Option<IpEndpoint> {
        self.socket(|s| s.remote_endpoint()).ok().flatten()
    }

    /// What can be done now without blocking.
    ///
    /// # Errors
    /// [`NetError::Down`].
    pub fn status(&self) -> Result<Status, NetError> {
        self.socket(|s| Status {
            readable: s.recv_queue(),
            writable: if s.may_send() {
                s.send_capacity() - s.send_queue()
            } else {
                0
            },
            eof: !s.may_recv() && s.recv_queue() == 0,
            write_closed: !s.may_send(),
        })
    }

    /// Reads what has arrived, without blocking: `Ok(0)` if nothing has
    /// (check [`Status::eof`] to tell the end from "not yet").
    ///
    /// # Errors
    /// [`NetError::Down`].
    pub fn try_read(&self, buf: &mut [u8]) -> Result<usize, NetError> {
        let n = self.socket(|s| s.recv_slice(buf).unwrap_or(0))?;
        if n > 0 {
            // The window opened: tell the peer.
            kick();
        }
        Ok(n)
    }

    /// Reads at least one byte, blocking until some arrive; `Ok(0)` once
    /// the peer has closed (or reset) and everything was read.
    ///
    /// # Errors
    /// [`NetError::Down`], or the thread's [`Stop`].
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, NetError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.try_read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if self.status()?.eof {
                return Ok(0);
            }
            wait_until(|| self.status().map_or(true, |s| s.readable > 0 || s.eof))?;
        }
    }

    /// Queues what fits of `data` without blocking; `Ok(0)` if nothing did.
    ///
    /// # Errors
    /// [`NetError::Closed`] if nothing more can be sent, [`NetError::Down`].
    pub fn try_write(&self, data: &[u8]) -> Result<usize, NetError> {
        let n = self.socket(|s| s.send_slice(data).map_err(|_| NetError::Closed))??;
        if n > 0 {
            kick();
        }
        Ok(n)
    }

    /// Queues at least one byte of `data` (all of an empty one), blocking
    /// while the send buffer is full.
    ///
    /// # Errors
    /// [`NetError::Closed`], [`NetError::Down`], or the thread's [`Stop`].
    pub fn write(&self, data: &[u8]) -> Result<usize, NetError> {
        if data.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.try_write(data)?;
            if n > 0 {
                return Ok(n);
            }
            wait_until(|| {
                self.status()
                    .map_or(true, |s| s.writable > 0 || s.write_closed)
            })?;
        }
    }

    /// Queues all of `data`.
    ///
    /// # Errors
    /// As [`TcpStream::write`].
    pub fn write_all(&self, mut data: &[u8]) -> Result<(), NetError> {
        while !data.is_empty() {
            let n = self.write(data)?;
            data = &data[n..];
        }
        Ok(())
    }

    /// How long closing may wait for the peer to finish before the
    /// connection is reset and its buffers freed (default [`LINGER_MS`]):
    /// shorter for connections nobody vouches for yet, so that peers that
    /// never finish closing cannot keep sockets (and their memory) taken.
    pub fn set_linger_ms(&self, ms: u64) {
        self.linger_ms.store(ms, Ordering::Relaxed);
    }

    /// Sends FIN once what was written has gone: the peer reads the end.
    /// Reading goes on.
    pub fn shutdown_write(&self) {
        let _ = self.socket(tcp::Socket::close);
        kick();
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        let linger = self.linger_ms.load(Ordering::Relaxed);
        let deadline = super::now_ms().saturating_add(linger);
        with(|net| {
            net.sockets.get_mut::<tcp::Socket>(self.handle).close();
            let orphan = Orphan {
                handle: self.handle,
                deadline,
            };
            heap::as_kernel(|| net.orphans.push(orphan));
        });
        kick();
    }
}

/// What socket users wait for, per slot: each TCP socket's state and
/// queue lengths. Compared before and after a poll, exactly.
pub(super) type Snapshot = [Option<(State, usize, usize)>; MAX_SOCKETS];

/// The [`Snapshot`] of `sockets` now.
pub(super) fn snapshot(sockets: &SocketSet<'static>) -> Snapshot {
    let mut snapshot = [None; MAX_SOCKETS];
    let tcp = sockets
        .iter()
        .filter_map(|(_, socket)| tcp::Socket::downcast(socket));
    for (slot, socket) in snapshot.iter_mut().zip(tcp) {
        *slot = Some((socket.state(), socket.recv_queue(), socket.send_queue()));
    }
    snapshot
}

/// Frees the sockets of dropped connections that finished closing, and
/// resets those past their linger time. Returns when to look again.
pub(super) fn reap(net: &mut Net, now: u64) -> Option<u64> {
    let mut due: Option<u64> = None;
    let sockets = &mut net.sockets;
    net.orphans.retain(|orphan| {
        let socket = sockets.get_mut::<tcp::Socket>(orphan.handle);
        match socket.state() {
            State::Closed | State::TimeWait => {
                drop(sockets.remove(orphan.handle));
                false
            }
            _ if now >= orphan.deadline => {
                socket.abort();
                // Freed at the next round, once the reset has gone out.
                due = Some(now);
                true
            }
            _ => {
                due = Some(due.map_or(orphan.deadline, |d| d.min(orphan.deadline)));
                true
            }
        }
    });
    due
}
