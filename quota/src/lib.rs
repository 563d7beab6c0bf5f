//! Byte-exact, hierarchical kernel-memory accounts and the tracking
//! allocator that charges them.
//!
//! Every heap allocation is charged to an account before the memory is
//! taken. Accounts form a tree (kernel root, session, process, at any depth
//! up to [`MAX_DEPTH`]); a charge succeeds at every ancestor or at none, and
//! is refused before it would take an account over its `max` or the heap
//! below the floor kept for the kernel. The vocabulary is Linux cgroup v2's:
//! `current`, `max`, `high`, `peak`, and `events` (`max`, `high`,
//! `oom_kill`, plus `forced`).
//!
//! - [`AccountTable`] holds the accounts in static memory (accounts must not
//!   live on the heap they police) and implements charge and uncharge.
//! - [`Stock`] is one CPU's charge stock, bytes pre-charged to one account
//!   so that most charges and frees touch no shared counter
//!   ([`AccountTable::charge_on`]). Reports and decisions stay byte-exact:
//!   stock is subtracted from every report, and a charge that would be
//!   refused, forced or set a new peak first drains the stock of every CPU
//!   (itself, by compare-and-swap) and is decided on exact usage.
//! - [`TrackingAlloc`] wraps any `GlobalAlloc` (the kernel wraps `talc`),
//!   records in an 8-byte header which account each block was charged to,
//!   and credits it on free, from whatever context.
//! - [`Context`] tells the allocator who is running, and on which CPU;
//!   [`charge_to`] and [`fallible`] override the former for a closure.
//! - Refusal policy ([`Mode`]): inside `fallible` an over-limit allocation
//!   returns null; outside it the charge is forced up to a small overdraft
//!   and the account flagged kill-pending, so the kernel can terminate its
//!   owner at a safe point. Kernel accounts are never refused by quota.
//!
//! The crate allocates nothing itself and contains `unsafe` code only in the
//! `tracking` module.

#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_code)]
// Accounting arithmetic must not overflow (the workspace's style guide:
// overflow is an attack vector, as in Redox's kernel): every `+`, `-`,
// `*` on counters is checked, saturating or deliberately wrapping.
#![warn(clippy::arithmetic_side_effects)]
#![cfg_attr(loom, allow(dead_code, unused_imports))]

mod counter;
mod sync;

#[cfg(not(loom))]
mod context;
mod fault;
mod id;
mod limit;
mod snapshot;
mod stock;
mod table;
#[cfg(not(loom))]
mod tracking;
mod usage;

#[cfg(all(not(loom), feature = "std"))]
pub use context::ThreadLocal;
#[cfg(not(loom))]
pub use context::{Context, Scope, ScopeCell, charge_to, fallible};
pub use counter::{DEFAULT_OVERDRAFT, Event, Events, MAX_DEPTH, Mode};
pub use fault::FaultPolicy;
pub use id::AccountId;
pub use limit::Limit;
pub use snapshot::{AccountSnapshot, EmergencySnapshot, HeapSnapshot, TableStats};
pub use stock::Stock;
pub use table::{
    Account, AccountFlags, AccountTable, Charged, CreateError, DEFAULT_STOCK_BATCH, NewAccount,
    Refusal, RefusalReason, Slot, StaleAccount,
};
#[cfg(not(loom))]
pub use tracking::{ConfigError, HEADER_SIZE, HeapConfig, TrackingAlloc};
pub use usage::{Amount, MAX_BLOCKS, MAX_BYTES};
