//! The network: one virtio-net card, one smoltcp interface, one thread.
//!
//! ```text
//!   card interrupt ──► on_interrupt: ack, PENDING, wake ──┐
//!   timer tick ──────► on_tick: smoltcp timer due? wake ──┤
//!   socket users ────► kick: PENDING, wake ───────────────┤
//!                                                        ▼
//!   "net" thread: wait ─► Interface::poll ─► DHCP ─► reap closed sockets
//!                  ▲                                      │
//!                  └──── next smoltcp deadline ◄──────────┘ ─► wake socket users
//! ```
//!
//! Everything smoltcp owns (interface, card, sockets) sits behind one lock,
//! [`NET`]; only the network thread polls the interface, so frames are
//! received and sent, and DHCP runs, in the kernel's scope. Socket users
//! ([`tcp`]) only move bytes in and out of their socket's buffers under the
//! lock and then [`kick`] the thread. Nobody spins: the thread sleeps on a
//! wait queue until the card interrupts, a user kicks, or the tick passes
//! the time smoltcp asked to be polled at.
//!
//! The socket table has a fixed number of slots ([`MAX_SOCKETS`]),
//! allocated once at start, so the kernel's own memory for the network
//! does not grow with the number of connections ever made; each TCP
//! connection's buffers are charged to the account its acceptor names.

mod device;
mod dhcp;
pub mod echo;
pub mod tcp;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet, SocketStorage};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress};
use virtio_drivers::transport::DeviceType;

use crate::bootinfo::VirtioSlot;
use crate::heap;
use crate::rng::{self, NoEntropy};
use crate::sched::{self, Stop, WaitQueue};
use crate::sync::IrqMutex;
use crate::time;
use device::NetDevice;

/// Sockets the interface can hold at once (the DHCP client's included).
pub const MAX_SOCKETS: usize = 32;

/// How long a closed connection may take to finish its goodbye before it
/// is reset and its buffers freed.
pub const LINGER_MS: u64 = 10_000;

/// Socket users the wait queue has room for from the start: every thread
/// there can be (8 bytes each), so it never grows, and the heap's figures
/// read the same before and after any number of connections.
const EVENT_WAITERS: usize = crate::sched::MAX_THREADS;

/// Stack of the network thread.
const STACK: usize = 32 << 10;

struct Net {
    iface: Interface,
    device: NetDevice,
    sockets: SocketSet<'static>,
    dhcp: dhcp::Dhcp,
    /// Connections their owner dropped: closing, then freed.
    orphans: Vec<Orphan>,
}

struct Orphan {
    handle: SocketHandle,
    /// Milliseconds since power-on after which it is reset.
    deadline: u64,
}

static NET: IrqMutex<Option<Net>> = IrqMutex::new(None);
/// The network thread waits here.
static POLLER: WaitQueue = WaitQueue::new();
/// Socket users wait here; woken after every poll.
static EVENTS: WaitQueue = WaitQueue::new();
/// The card interrupted or a user changed a socket: poll now.
static PENDING: AtomicBool = AtomicBool::new(false);
/// Someone called [`kick`]: wake the waiters after the next poll, whether
/// or not a socket changed (what they wait for may be something else).
static KICKED: AtomicBool = AtomicBool::new(false);
/// The tick at which smoltcp wants to be polled.
static NEXT_POLL: AtomicU64 = AtomicU64::new(u64::MAX);

/// Why the network did not start.
#[derive(Debug)]
pub enum InitError {
    /// No virtio-net card in the device tree's virtio slots.
    NoCard,
    /// The card could not be set up.
    Driver(virtio_drivers::Error),
    /// No randomness for TCP's initial sequence numbers and ports.
    Entropy(NoEntropy),
    /// The network thread could not be started.
    Thread,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::NoCard => f.write_str("no virtio-net card"),
            InitError::Driver(e) => write!(f, "virtio-net: {e}"),
            InitError::Entropy(e) => write!(f, "no randomness: {e}"),
            InitError::Thread => f.write_str("cannot start the network thread"),
        }
    }
}

/// A running card: where it is and its interrupt.
#[derive(Clone, Copy, Debug)]
pub struct Card {
    /// Its registers.
    pub base: usize,
    /// Its interrupt (GIC INTID), to be routed to [`on_interrupt`].
    pub intid: u32,
    /// Its MAC address.
    pub mac: [u8; 6],
}

/// The interface has an address (DHCP's or the fallback).
static UP: AtomicBool = AtomicBool::new(false);
/// [`UP`] was just set: wake its waiters.
static UP_CHANGED: AtomicBool = AtomicBool::new(false);

static CARD_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
static CARD: spin::Once<Card> = spin::Once::new();

fn now_ms() -> u64 {
    time::millis_since_power_on()
}

fn instant(ms: u64) -> Instant {
    Instant::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// Starts the first virtio-net card found in `slots`, its interface (DHCP,
/// falling back to a static address) and the network thread. The caller
/// routes the returned card's interrupt to [`on_interrupt`].
///
/// # Errors
/// [`InitError`]; the kernel runs on without a network.
pub fn init(slots: &[VirtioSlot]) -> Result<Card, InitError> {
    let seed = rng::u64().map_err(InitError::Entropy)?;
    let (slot, transport) = slots
        .iter()
        .find_map(|s| {
            crate::arch::virtio::claim(s.base, s.size, DeviceType::Network).map(|t| (s, t))
        })
        .ok_or(InitError::NoCard)?;
    heap::as_kernel(|| {
        let mut device = NetDevice::new(transport).map_err(InitError::Driver)?;
        let mac = device.mac();
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        config.random_seed = seed;
        let now = now_ms();
        let iface = Interface::new(config, &mut device, instant(now));
        let storage: Vec<SocketStorage<'static>> =
            (0..MAX_SOCKETS).map(|_| SocketStorage::EMPTY).collect();
        let mut sockets = SocketSet::new(storage);
        let dhcp = dhcp::Dhcp::new(&mut sockets, now);
        let card = Card {
            base: slot.base,
            intid: slot.intid,
            mac,
        };
        *NET.lock() = Some(Net {
            iface,
            device,
            sockets,
            dhcp,
            orphans: Vec::with_capacity(MAX_SOCKETS),
        });
        CARD_INTID.store(slot.intid, Relaxed);
        CARD.call_once(|| card);
        // The network thread and the socket users sleep and wake with
        // traffic; with room kept, that changes no memory.
        POLLER.reserve(1);
        EVENTS.reserve(EVENT_WAITERS);
        let scope = quota::Scope {
            account: heap::kernel_account().id(),
            fallible: false,
        };
        sched::spawn("net", STACK, scope, |_| run()).map_err(|_| InitError::Thread)?;
        kick();
        Ok(card)
    })
}

/// The running card, if the network started.
pub fn card() -> Option<Card> {
    CARD.get().copied()
}

/// The card's interrupt: acknowledge it and, if a frame came in, wake the
/// network thread. (The card also interrupts when it has taken a frame to
/// send, which the driver already waited for: nothing to do then.)
pub fn on_interrupt() {
    let received = NET.lock().as_mut().is_some_and(|net| {
        net.device.ack_interrupt();
        net.device.has_frame()
    });
    if received {
        kick();
    }
}

/// Blocks until the interface has its first address (a DHCP lease, or the
/// static fallback a few seconds later); at once if the network did not
/// start. The console waits for this before its first session, so the
/// machine is quiet (DHCP done, the services listening) when a user, or a
/// test measuring a baseline, gets the prompt.
///
/// # Errors
/// The [`Stop`] if the calling thread must stop first.
pub fn wait_up() -> Result<(), Stop> {
    if card().is_none() {
        return Ok(());
    }
    EVENTS.wait_until(|| UP.load(Relaxed))
}

/// Whether `intid` is the card's interrupt.
pub fn is_card_interrupt(intid: u32) -> bool {
    intid == CARD_INTID.load(Relaxed)
}

/// The timer tick: wakes the network thread when smoltcp's timer is due.
pub fn on_tick() {
    if time::ticks() >= NEXT_POLL.load(Relaxed) {
        // Pending, not just woken: the thread re-checks its condition, and
        // with the deadline cleared only `PENDING` can hold it.
        NEXT_POLL.store(u64::MAX, Relaxed);
        PENDING.store(true, Relaxed);
        POLLER.wake_all();
    }
}

/// Asks the network thread to poll now (a socket changed).
pub fn kick() {
    KICKED.store(true, Relaxed);
    PENDING.store(true, Relaxed);
    POLLER.wake_all();
}

/// Blocks until `ready()` holds, re-checking it after every poll of the
/// interface. For callers that wait on a socket and something else at
/// once (the SSH server: a connection and its session's processes):
/// whoever changes that something else calls [`kick`], which makes the
/// network thread poll and then wake every waiter here.
///
/// # Errors
/// The [`Stop`] if the calling thread must stop first.
pub fn wait_until(ready: impl FnMut() -> bool) -> Result<(), Stop> {
    EVENTS.wait_until(ready)
}

/// Runs `f` on the network state; `None` if the network is not running.
fn with<R>(f: impl FnOnce(&mut Net) -> R) -> Option<R> {
    NET.lock().as_mut().map(f)
}

/// The network thread: poll, then sleep until there is something to do.
fn run() {
    loop {
        let ready = || PENDING.load(Relaxed) || time::ticks() >= NEXT_POLL.load(Relaxed);
        if POLLER.wait_until(ready).is_err() {
            // A kernel thread is never signalled; if it were, carry on.
        }
        PENDING.store(false, Relaxed);
        let kicked = KICKED.swap(false, Relaxed);
        let Some((next_ms, changed)) = with(poll) else {
            return;
        };
        if changed || kicked {
            EVENTS.wake_all();
        }
        let now = now_ms();
        match next_ms {
            Some(at) if at <= now => PENDING.store(true, Relaxed),
            Some(at) => {
                let ms_per_tick = 1000 / time::TICK_HZ;
                let ticks = (at - now).div_ceil(ms_per_tick);
                NEXT_POLL.store(time::ticks().saturating_add(ticks), Relaxed);
            }
            None => NEXT_POLL.store(u64::MAX, Relaxed),
        }
    }
}

/// One round: frames in and out, DHCP, closed connections freed. Returns
/// when (milliseconds since power-on) the interface wants the next round,
/// and whether a TCP socket changed in a way its users wait for (then
/// they are woken; otherwise they are left asleep, so traffic that is not
/// theirs, such as DHCP, does not stir them).
fn poll(net: &mut Net) -> (Option<u64>, bool) {
    let now = now_ms();
    let before = tcp::snapshot(&net.sockets);
    let result = net
        .iface
        .poll(instant(now), &mut net.device, &mut net.sockets);
    let changed = result == PollResult::SocketStateChanged && tcp::snapshot(&net.sockets) != before;
    let dhcp_due = net.dhcp.poll(&mut net.iface, &mut net.sockets, now);
    let reaping = tcp::reap(net, now);
    let smoltcp_due = net
        .iface
        .poll_delay(instant(now), &net.sockets)
        .map(|d| now.saturating_add(d.total_millis()));
    let due = [dhcp_due, reaping, smoltcp_due].into_iter().flatten().min();
    (due, changed || UP_CHANGED.swap(false, Relaxed))
}
