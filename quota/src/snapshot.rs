//! Plain-data snapshots of accounts and of the heap, for procfs to render.
//!
//! Fields are read one atomic at a time, so a snapshot taken while charges
//! run is "consistent enough": each field is a value it really had, but two
//! fields may come from slightly different instants.

use crate::{AccountFlags, AccountId, Events, Limit};

/// One account, as [`AccountTable::snapshot`](crate::AccountTable::snapshot) saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountSnapshot {
    /// The account.
    pub id: AccountId,
    /// Its parent, `None` for the root.
    pub parent: Option<AccountId>,
    /// The opaque tag its creator gave it (the kernel stores pid / sid).
    pub tag: u64,
    /// Its flags.
    pub flags: AccountFlags,
    /// Its owner has dropped it; it lives on until `current` reaches 0.
    pub orphaned: bool,
    /// Bytes charged now, its descendants' included.
    pub current: usize,
    /// Blocks (allocations) those bytes are in.
    pub blocks: usize,
    /// Hard limit.
    pub max: Limit,
    /// Soft limit.
    pub high: Limit,
    /// Highest `current` reached by a committed charge.
    pub peak: usize,
    /// Bytes an infallible charge may be forced past `max`.
    pub overdraft: usize,
    /// Event counters.
    pub events: Events,
    /// Live or orphaned child accounts.
    pub children: u32,
    /// Levels above it (0 for the root).
    pub depth: u32,
}

/// Table-wide counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableStats {
    /// Slots in the table, the root's included.
    pub capacity: usize,
    /// Accounts whose owner still holds them (the root included).
    pub live: usize,
    /// Accounts dropped by their owner but still charged.
    pub orphaned: usize,
    /// Bytes charged to kernel accounts (the root's own charges included).
    pub kernel_bytes: usize,
    /// Bytes charged to non-kernel accounts.
    pub user_bytes: usize,
    /// Charges that named a dead account and went to the root instead.
    pub misattributed: u64,
    /// Uncharges that did not match a charge (a double free or a corrupt
    /// header); they changed nothing.
    pub accounting_errors: u64,
    /// Non-kernel charges refused at the heap floor.
    pub floor_refusals: u64,
    /// Faults injected.
    pub faults_injected: u64,
    /// Bytes non-kernel charges may bring the root to: the heap's size
    /// less its floor (the floor itself is kept for the kernel).
    pub heap_budget: Limit,
}

/// The heap as the tracking allocator sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapSnapshot {
    /// Bytes the heap was configured with.
    pub size: usize,
    /// Bytes charged to accounts (headers included), the emergency block excluded.
    pub used: usize,
    /// `size - used - emergency.held`, saturating.
    pub free: usize,
    /// Bytes reserved for the kernel: non-kernel charges stop above them.
    pub floor: usize,
    /// The emergency reserve.
    pub emergency: EmergencySnapshot,
    /// Header bytes of live allocations (included in `used`).
    pub header_bytes: usize,
    /// Live allocations made through the tracking allocator.
    pub allocations: usize,
    /// Table-wide counters.
    pub table: TableStats,
}

/// State of the emergency reserve block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmergencySnapshot {
    /// Size of the block when held.
    pub capacity: usize,
    /// Bytes held now (`capacity` or 0).
    pub held: usize,
    /// Times the block was given back to the heap.
    pub releases: u64,
    /// Times it was taken again.
    pub refills: u64,
}
