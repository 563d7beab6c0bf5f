//! The account table: a fixed array of account slots in static memory, and
//! the tree-walking charge and uncharge operations over it.
//!
//! Accounts must not live on the heap they police, so the table borrows a
//! slice of [`Slot`]s that the kernel keeps in a `static`. Slot 0 is the
//! root: it always exists, is a kernel account, and every other account
//! descends from it, so the root's `current` is every byte charged.
//!
//! # Lifecycle
//! A slot is `FREE`, then `LIVE` while an [`Account`] handle owns it, then
//! `ORPHAN` once the handle is dropped while bytes are still charged to it or
//! it still has children, then `FREE` again with its generation advanced.
//! Release happens exactly once, by whichever of these comes last: the owner
//! dropping the handle, the last uncharge, the last child's release. Until
//! then its id stays valid, so a late `dealloc` of memory charged to a dead
//! process still credits the right account.
//!
//! # Pins
//! Operations that take an id but no handle (the limit setters,
//! [`AccountTable::set_fault_target`], [`AccountTable::record_oom_kill`],
//! [`AccountTable::snapshot`]) pin the slot for their duration: a pin count
//! in the slot's state word, taken by the same compare-and-swap that checks
//! the id's generation. A pinned slot is not released (the last unpin
//! releases it if it became releasable meanwhile), so such an operation
//! either acts on the account its id names or returns
//! [`StaleAccount`]; it never reaches the account that reuses the slot. A
//! pin is two swaps on the state word and never waits for anything.
//!
//! # Contract
//! An id given to [`AccountTable::charge`] must name an account whose
//! handle stays alive for the call (the caller's own process account, or one
//! borrowed through [`charge_to`](crate::charge_to)). A charge naming an
//! account that is already dead is not lost: it goes to the root and is
//! counted as misattributed. (Dropping the handle *during* a charge breaks
//! the contract: the slot could be released under the charge.)
//! An id given to [`AccountTable::uncharge`] must come from a charge that
//! has not been uncharged yet, as allocation headers guarantee.
//!
//! # Stock
//! A table built [`with_stocks`](AccountTable::with_stocks) has one charge
//! stock per CPU, used by [`AccountTable::charge_on`] and
//! [`AccountTable::uncharge_on`]; the rules that keep it invisible to every
//! report and decision are in `table_stock.rs`. The plain
//! [`charge`](AccountTable::charge) and [`uncharge`](AccountTable::uncharge)
//! use no CPU's stock but honour the others' (a charge drains them where
//! they could change its outcome). Dropping an account's handle returns its
//! stock from every CPU, so release still follows the last uncharge.

use core::fmt;

use bitflags::bitflags;

use crate::counter::{Counter, Event, LevelRefusal, MAX_DEPTH, Mode, charge_path};
use crate::fault::{FaultInjector, FaultPolicy};
use crate::stock::Stock;
use crate::sync::{AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
use crate::{AccountId, AccountSnapshot, Amount, Limit, TableStats};

pub use stocked::DEFAULT_STOCK_BATCH;

use Ordering::{Acquire, Relaxed, Release, SeqCst};

bitflags! {
    /// Properties of an account.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct AccountFlags: u32 {
        /// Charged on behalf of the kernel itself: never refused by quota.
        const KERNEL = 1 << 0;
        /// A charge was forced over a limit: the owner must be killed at its
        /// next safe point.
        const KILL_PENDING = 1 << 1;
        /// Charges to this account and its descendants are subject to the
        /// fault-injection policy.
        const FAULT_TARGET = 1 << 2;
    }
}

const FREE: u32 = 0;
const RESERVED: u32 = 1;
const LIVE: u32 = 2;
const ORPHAN: u32 = 3;
const RELEASING: u32 = 4;

/// A slot's state word: generation (bits 16–31), pins (bits 8–15), life
/// (bits 0–7).
const fn state(generation: u16, life: u32) -> u32 {
    ((generation as u32) << 16) | life
}
const fn life(state: u32) -> u32 {
    state & LIFE_MASK
}
const fn generation(state: u32) -> u16 {
    (state >> 16) as u16
}
const fn pins(state: u32) -> u32 {
    (state & PINS_MASK) >> 8
}
const LIFE_MASK: u32 = 0xff;
const PIN: u32 = 1 << 8;
const PINS_MASK: u32 = 0xff << 8;

/// One account's storage. Create arrays of them with `Slot::new` in a
/// `static` and hand them to [`AccountTable::new`].
pub struct Slot {
    counter: Counter,
    state: AtomicU32,
    parent: AtomicU32,
    flags: AtomicU32,
    children: AtomicU32,
    depth: AtomicU32,
    tag: AtomicU64,
}

macro_rules! slot_new {
    () => {
        Slot {
            counter: Counter::new(),
            state: AtomicU32::new(state(0, FREE)),
            parent: AtomicU32::new(0),
            flags: AtomicU32::new(0),
            children: AtomicU32::new(0),
            depth: AtomicU32::new(0),
            tag: AtomicU64::new(0),
        }
    };
}

impl Slot {
    /// An empty slot.
    #[cfg(not(loom))]
    #[must_use]
    pub const fn new() -> Self {
        slot_new!()
    }

    /// An empty slot.
    #[cfg(loom)]
    #[must_use]
    pub fn new() -> Self {
        slot_new!()
    }
}

impl Default for Slot {
    fn default() -> Self {
        Self::new()
    }
}

/// What to create: the new account's flags and tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewAccount {
    /// Initial flags (`KERNEL`, `FAULT_TARGET`); `KILL_PENDING` is ignored.
    pub flags: AccountFlags,
    /// An opaque value for the creator (the kernel stores pid and sid).
    pub tag: u64,
}

/// Why an account could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateError {
    /// Every slot is in use.
    TableFull,
    /// The parent is [`MAX_DEPTH`] - 1 levels deep already.
    TooDeep,
    /// The parent handle belongs to another table.
    ForeignParent,
    /// A kernel account under a non-kernel one.
    KernelUnderUser,
}

/// An id that names no live account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaleAccount(pub AccountId);

/// A charge that went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charged {
    /// The account actually charged (the root if the named one was dead).
    pub account: AccountId,
    /// It was forced over a limit; `account` is now kill-pending.
    pub forced: bool,
}

/// A charge that was refused; nothing was charged anywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The level that refused (for `Injected` and `Stale`, the charged account).
    pub account: AccountId,
    /// Why.
    pub reason: RefusalReason,
}

/// Why a charge was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// Over the refusing account's `max` (and overdraft, if infallible).
    Limit,
    /// Would take the heap below the kernel's floor.
    HeapFloor,
    /// The byte count would wrap.
    Overflow,
    /// Refused by the fault-injection policy.
    Injected,
    /// The account named is not live (only from [`AccountTable::charge_exact`]).
    Stale,
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefusalReason::Limit => "over the account's limit",
            RefusalReason::HeapFloor => "the heap is down to the kernel's reserve",
            RefusalReason::Overflow => "size overflows",
            RefusalReason::Injected => "injected fault",
            RefusalReason::Stale => "account no longer exists",
        })
    }
}

/// The accounts of one heap. See the module documentation.
pub struct AccountTable<'s> {
    slots: &'s [Slot],
    /// The charge stocks (`table_stock.rs`), [`Self::stocks_per_cpu`] per
    /// CPU, CPU `n`'s first; empty for none.
    stocks: &'s [Stock],
    /// Stock slots each CPU has: an account uses the one its index picks,
    /// so a CPU keeps stock for that many accounts at once.
    stocks_per_cpu: usize,
    /// Bytes a refill tops a stock up to; 0 turns refills off.
    stock_batch: AtomicUsize,
    /// Advanced whenever stock granted earlier may no longer be consumed:
    /// a limit lowered, fault injection changed (`table_stock.rs`).
    stock_epoch: AtomicU64,
    faults: FaultInjector,
    misattributed: AtomicU64,
    accounting_errors: AtomicU64,
    floor_refusals: AtomicU64,
    /// Where the search for a free slot starts (offset from slot 1).
    next_free: AtomicUsize,
}

/// An owned account. Dropping it releases the account once nothing is
/// charged to it and it has no children.
#[must_use = "dropping an Account releases it"]
pub struct Account<'t> {
    table: &'t AccountTable<'t>,
    id: AccountId,
}

impl<'t> Account<'t> {
    /// This account's id.
    pub fn id(&self) -> AccountId {
        self.id
    }

    /// The table it lives in.
    pub fn table(&self) -> &'t AccountTable<'t> {
        self.table
    }
}

impl Drop for Account<'_> {
    fn drop(&mut self) {
        self.table.drop_owner(self.id);
    }
}

impl fmt::Debug for Account<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Account").field(&self.id).finish()
    }
}

/// Leaf→root walk of the counters above an account. (The heap floor is the
/// root counter's cap, which binds non-kernel charges only.)
#[derive(Clone)]
struct Path<'a> {
    table: &'a AccountTable<'a>,
    next: Option<usize>,
}

impl<'a> Iterator for Path<'a> {
    type Item = &'a Counter;

    fn next(&mut self) -> Option<Self::Item> {
        let index = self.next?;
        let slot = &self.table.slots[index];
        self.next = (index != 0).then(|| AccountTable::parent_index(slot));
        Some(&slot.counter)
    }
}

/// A pinned slot (see the module documentation): released, if it became
/// releasable meanwhile, when the pin is dropped.
struct Pinned<'a, 's> {
    table: &'a AccountTable<'s>,
    index: usize,
}

impl Pinned<'_, '_> {
    fn slot(&self) -> &Slot {
        &self.table.slots[self.index]
    }
}

impl Drop for Pinned<'_, '_> {
    fn drop(&mut self) {
        if self.index == 0 {
            return;
        }
        // `pins` is at least one (ours), so this cannot borrow from `life`.
        let prev = self.slot().state.fetch_sub(PIN, Release);
        if life(prev) == ORPHAN && pins(prev) == 1 {
            self.table.try_release(self.index);
        }
    }
}

macro_rules! table_new {
    ($slots:expr, $stocks:expr, $per_cpu:expr) => {
        AccountTable {
            slots: $slots,
            stocks: $stocks,
            stocks_per_cpu: $per_cpu,
            stock_batch: AtomicUsize::new(if $stocks.is_empty() {
                0
            } else {
                DEFAULT_STOCK_BATCH
            }),
            stock_epoch: AtomicU64::new(0),
            faults: FaultInjector::new(),
            misattributed: AtomicU64::new(0),
            accounting_errors: AtomicU64::new(0),
            floor_refusals: AtomicU64::new(0),
            next_free: AtomicUsize::new(0),
        }
    };
}

impl<'s> AccountTable<'s> {
    /// A table over `slots`, all fresh from `Slot::new`, with no charge
    /// stock: every charge and uncharge walks the tree. Slot 0 becomes the
    /// root.
    ///
    /// # Panics
    /// If `slots` is empty or longer than 65,536 (ids hold a 16-bit index).
    #[cfg(not(loom))]
    #[must_use]
    pub const fn new(slots: &'s [Slot]) -> Self {
        Self::with_stocks(slots, &[])
    }

    /// A table over `slots` with one charge stock per CPU in `stocks`
    /// (fresh from `Stock::new`), refilled [`DEFAULT_STOCK_BATCH`] bytes at
    /// a time; see [`charge_on`](Self::charge_on). CPU `n` is `stocks[n]`.
    ///
    /// # Panics
    /// If `slots` is empty or longer than 65,536 (ids hold a 16-bit index).
    #[cfg(not(loom))]
    #[must_use]
    pub const fn with_stocks(slots: &'s [Slot], stocks: &'s [Stock]) -> Self {
        Self::with_stocks_per_cpu(slots, stocks, 1)
    }

    /// A table over `slots` whose CPUs each have `per_cpu` stock slots in
    /// `stocks` (CPU `n`'s are `stocks[n * per_cpu..][..per_cpu]`): a
    /// charge on CPU `n` for account `a` uses slot `a.index() % per_cpu`
    /// of them, so threads of different accounts sharing a CPU keep their
    /// stocks instead of taking one slot from each other. Exactness does
    /// not depend on which slot is used (every slot is drained before a
    /// refusal), and refills are sized by the number of slots.
    ///
    /// # Panics
    /// As [`with_stocks`](Self::with_stocks), and if `per_cpu` is 0 or does
    /// not divide `stocks.len()`.
    #[cfg(not(loom))]
    #[must_use]
    pub const fn with_stocks_per_cpu(
        slots: &'s [Slot],
        stocks: &'s [Stock],
        per_cpu: usize,
    ) -> Self {
        assert!(
            !slots.is_empty() && slots.len() <= 1 << 16,
            "1 to 65536 slots"
        );
        assert!(
            per_cpu > 0 && stocks.len().is_multiple_of(per_cpu),
            "per_cpu divides the stocks"
        );
        table_new!(slots, stocks, per_cpu)
    }

    /// A table over `slots` (the `loom` build: loom's atomics are not
    /// `const`).
    ///
    /// # Panics
    /// If `slots` is empty or longer than 65,536 (ids hold a 16-bit index).
    #[cfg(loom)]
    #[must_use]
    pub fn new(slots: &'s [Slot]) -> Self {
        Self::with_stocks(slots, &[])
    }

    /// A table over `slots` with one charge stock per CPU in `stocks` (the
    /// `loom` build).
    ///
    /// # Panics
    /// If `slots` is empty or longer than 65,536 (ids hold a 16-bit index).
    #[cfg(loom)]
    #[must_use]
    pub fn with_stocks(slots: &'s [Slot], stocks: &'s [Stock]) -> Self {
        assert!(
            !slots.is_empty() && slots.len() <= 1 << 16,
            "1 to 65536 slots"
        );
        table_new!(slots, stocks, 1)
    }

    /// Number of slots, the root's included.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Creates an account under `parent` (the root if `None`).
    ///
    /// # Errors
    /// [`CreateError`] if the table is full, the tree too deep, or the
    /// parent belongs to another table.
    ///
    /// # Panics
    /// Never: slot indices fit 16 bits by the check in [`AccountTable::new`].
    pub fn create(
        &'s self,
        parent: Option<&Account<'_>>,
        spec: NewAccount,
    ) -> Result<Account<'s>, CreateError> {
        let parent_id = match parent {
            Some(p) if !core::ptr::eq(p.table, self) => return Err(CreateError::ForeignParent),
            Some(p) => p.id,
            None => AccountId::ROOT,
        };
        let parent_slot = &self.slots[parent_id.index()];
        // A kernel account ignores limits on its whole path, so one under a
        // limited (non-kernel) account would escape that account's limit.
        if spec.flags.contains(AccountFlags::KERNEL)
            && !self
                .flags_of(parent_id.index())
                .contains(AccountFlags::KERNEL)
        {
            return Err(CreateError::KernelUnderUser);
        }
        let depth = parent_slot.depth.load(Relaxed).wrapping_add(1);
        if depth as usize >= MAX_DEPTH {
            return Err(CreateError::TooDeep);
        }
        let (index, generation) = self.reserve_slot().ok_or(CreateError::TableFull)?;
        let slot = &self.slots[index];
        slot.counter.reset();
        slot.parent.store(parent_id.to_raw(), Relaxed);
        slot.flags.store(
            spec.flags.difference(AccountFlags::KILL_PENDING).bits(),
            Relaxed,
        );
        slot.children.store(0, Relaxed);
        slot.depth.store(depth, Relaxed);
        slot.tag.store(spec.tag, Relaxed);
        // The parent is pinned by the borrowed handle; this count keeps it
        // from being released before this child is.
        parent_slot.children.fetch_add(1, SeqCst);
        slot.state.store(state(generation, LIVE), Release);
        let index = u16::try_from(index).expect("index < 65536 by construction");
        Ok(Account {
            table: self,
            id: AccountId::new(index, generation),
        })
    }

    fn reserve_slot(&self) -> Option<(usize, u16)> {
        let n = self.slots.len();
        let others = n.checked_sub(1).filter(|m| *m > 0)?;
        let start = self.next_free.load(Relaxed);
        for k in 0..others {
            let index = start
                .wrapping_add(k)
                .checked_rem(others)
                .unwrap_or(0)
                .wrapping_add(1);
            let slot = &self.slots[index];
            let s = slot.state.load(Relaxed);
            if life(s) == FREE
                && slot
                    .state
                    .compare_exchange(s, state(generation(s), RESERVED), Acquire, Relaxed)
                    .is_ok()
            {
                self.next_free.store(index.wrapping_sub(1), Relaxed);
                return Some((index, generation(s)));
            }
        }
        None
    }

    fn parent_index(slot: &Slot) -> usize {
        AccountId::from_raw(slot.parent.load(Relaxed)).index()
    }

    /// The slot `id` names if it is live (or, with `orphans`, orphaned).
    fn slot(&self, id: AccountId, orphans: bool) -> Option<&Slot> {
        let slot = self.slots.get(id.index())?;
        if id.index() == 0 {
            return (id.generation() == 0).then_some(slot);
        }
        let s = slot.state.load(Acquire);
        let alive = life(s) == LIVE || (orphans && life(s) == ORPHAN);
        (alive && generation(s) == id.generation()).then_some(slot)
    }

    /// Pins the slot `id` names if it is live (or, with `orphans`,
    /// orphaned), so it cannot be released and reused until the pin drops.
    fn pin(&self, id: AccountId, orphans: bool) -> Result<Pinned<'_, 's>, StaleAccount> {
        let stale = StaleAccount(id);
        let slot = self.slots.get(id.index()).ok_or(stale)?;
        // Made only once the pin is taken: dropping it unpins.
        let pinned = || Pinned {
            table: self,
            index: id.index(),
        };
        if id.index() == 0 {
            // The root is never released: nothing to pin.
            return (id.generation() == 0).then(pinned).ok_or(stale);
        }
        let mut s = slot.state.load(Relaxed);
        loop {
            let alive = life(s) == LIVE || (orphans && life(s) == ORPHAN);
            if !alive || generation(s) != id.generation() {
                return Err(stale);
            }
            if pins(s) == PINS_MASK >> 8 {
                // 255 pins at once: wait for one to go.
                crate::sync::spin_loop();
                s = slot.state.load(Relaxed);
                continue;
            }
            // Acquire: the creator's writes before it published `LIVE` (the
            // counter's reset) come before what is done through the pin.
            match slot
                .state
                .compare_exchange_weak(s, s.wrapping_add(PIN), Acquire, Relaxed)
            {
                Ok(_) => return Ok(pinned()),
                Err(actual) => s = actual,
            }
        }
    }

    fn flags_of(&self, index: usize) -> AccountFlags {
        let bits = self.slots[index].flags.load(Relaxed);
        let flags = AccountFlags::from_bits_truncate(bits);
        if index == 0 {
            flags | AccountFlags::KERNEL
        } else {
            flags
        }
    }

    /// Charges `amount` to `id` and all its ancestors, or to none of them.
    ///
    /// Kernel accounts are never refused but on overflow. For the others,
    /// `mode` says what happens over a limit (see [`Mode`]); a forced charge
    /// sets [`AccountFlags::KILL_PENDING`] on `id`. A dead `id` is charged
    /// to the root instead and counted as misattributed.
    ///
    /// # Errors
    /// A [`Refusal`] naming the level that refused; nothing was charged.
    pub fn charge(&self, id: AccountId, amount: Amount, mode: Mode) -> Result<Charged, Refusal> {
        self.charge_with(id, amount, mode, None)
    }

    fn charge_with(
        &self,
        id: AccountId,
        amount: Amount,
        mode: Mode,
        stock: Option<&Stock>,
    ) -> Result<Charged, Refusal> {
        if self.slot(id, false).is_some() {
            self.charge_live(id, amount, mode, stock)
        } else {
            let _ = self
                .misattributed
                .fetch_update(Relaxed, Relaxed, |n| n.checked_add(1));
            self.charge_live(AccountId::ROOT, amount, mode, stock)
        }
    }

    /// Like [`charge`](Self::charge), but a dead `id` is refused.
    ///
    /// # Errors
    /// As `charge`, plus [`RefusalReason::Stale`].
    pub fn charge_exact(
        &self,
        id: AccountId,
        amount: Amount,
        mode: Mode,
    ) -> Result<Charged, Refusal> {
        self.charge_exact_with(id, amount, mode, None)
    }

    fn charge_exact_with(
        &self,
        id: AccountId,
        amount: Amount,
        mode: Mode,
        stock: Option<&Stock>,
    ) -> Result<Charged, Refusal> {
        if self.slot(id, false).is_none() {
            return Err(Refusal {
                account: id,
                reason: RefusalReason::Stale,
            });
        }
        self.charge_live(id, amount, mode, stock)
    }

    /// The path of counters from `id` up to the root.
    fn path(&self, id: AccountId) -> Path<'_> {
        Path {
            table: self,
            next: Some(id.index()),
        }
    }

    /// Charges a live account (or the root): through `stock` (this CPU's)
    /// when a refill fits, else walking the tree with the stock gate.
    fn charge_live(
        &self,
        id: AccountId,
        amount: Amount,
        mode: Mode,
        stock: Option<&Stock>,
    ) -> Result<Charged, Refusal> {
        let kernel = self.flags_of(id.index()).contains(AccountFlags::KERNEL);
        let mode = if kernel { Mode::Kernel } else { mode };
        let armed = !kernel && self.faults.armed();
        if !armed
            && let Some(stock) = stock
            && self.refill(stock, id, amount)
        {
            return Ok(Charged {
                account: id,
                forced: false,
            });
        }
        let injected = armed && self.targeted(id) && self.faults.decide();
        if injected && mode == Mode::Fallible {
            return Err(Refusal {
                account: id,
                reason: RefusalReason::Injected,
            });
        }
        let charged = if self.stocks.is_empty() {
            charge_path(self.path(id), amount, mode)
        } else {
            self.charge_gated(id, amount, mode)
        };
        match charged {
            Ok(admitted) => {
                let forced = admitted.forced || injected;
                if forced {
                    let slot = &self.slots[id.index()];
                    if injected && !admitted.forced {
                        slot.counter.count(Event::Forced);
                    }
                    slot.flags
                        .fetch_or(AccountFlags::KILL_PENDING.bits(), Relaxed);
                }
                Ok(Charged {
                    account: id,
                    forced,
                })
            }
            Err(refusal) => {
                let reason = match refusal.why {
                    LevelRefusal::Limit => RefusalReason::Limit,
                    LevelRefusal::Cap => {
                        let _ = self
                            .floor_refusals
                            .fetch_update(Relaxed, Relaxed, |n| n.checked_add(1));
                        RefusalReason::HeapFloor
                    }
                    LevelRefusal::Overflow => RefusalReason::Overflow,
                };
                let account = self.ancestor(id, refusal.depth);
                Err(Refusal { account, reason })
            }
        }
    }

    /// Whether `id` or an ancestor is a fault-injection target.
    fn targeted(&self, id: AccountId) -> bool {
        let mut index = id.index();
        loop {
            if self.flags_of(index).contains(AccountFlags::FAULT_TARGET) {
                return true;
            }
            if index == 0 {
                return false;
            }
            index = Self::parent_index(&self.slots[index]);
        }
    }

    /// The id `depth` levels above `id` (the root if the tree is shallower).
    fn ancestor(&self, id: AccountId, depth: usize) -> AccountId {
        let mut current = id;
        for _ in 0..depth {
            if current.index() == 0 {
                break;
            }
            current = AccountId::from_raw(self.slots[current.index()].parent.load(Relaxed));
        }
        current
    }

    /// Credits `amount` back to `id` and all its ancestors.
    ///
    /// An uncharge that does not match earlier charges (a stale id, or more
    /// bytes than charged) changes nothing at the level where it is caught
    /// and is counted in [`TableStats::accounting_errors`].
    pub fn uncharge(&self, id: AccountId, amount: Amount) {
        if self.slot(id, true).is_none() {
            self.count_error();
            return;
        }
        let mut index = id.index();
        loop {
            let slot = &self.slots[index];
            // Read the parent before crediting: once this level reaches 0 it
            // may be released and reused.
            let parent = Self::parent_index(slot);
            match slot.counter.sub(amount) {
                None => {
                    self.count_error();
                    return;
                }
                Some(left) if left == Amount::default() && index != 0 => self.try_release(index),
                Some(_) => {}
            }
            if index == 0 {
                return;
            }
            index = parent;
        }
    }

    fn count_error(&self) {
        let _ = self
            .accounting_errors
            .fetch_update(Relaxed, Relaxed, |n| n.checked_add(1));
    }

    /// Counts a free whose account could not be read (a corrupt header).
    pub(crate) fn record_accounting_error(&self) {
        self.count_error();
    }

    /// Bytes charged to all accounts: the root's `current` (stock excluded).
    pub fn root_current(&self) -> usize {
        self.root_usage().bytes
    }

    /// Bytes and blocks charged to all accounts (stock excluded).
    pub fn root_usage(&self) -> Amount {
        self.usage_of(0)
    }

    fn drop_owner(&self, id: AccountId) {
        let slot = &self.slots[id.index()];
        let orphaned = slot.state.fetch_update(SeqCst, Relaxed, |s| {
            (life(s) == LIVE && generation(s) == id.generation())
                .then_some((s & !LIFE_MASK) | ORPHAN)
        });
        if orphaned.is_ok() {
            self.drain_account(id);
            self.try_release(id.index());
        }
    }

    /// Releases the slot at `index` if it is orphaned, unpinned, uncharged
    /// and childless, then does the same for its parent, whose child it was.
    ///
    /// Whoever makes the last of the four conditions true (the owner's drop,
    /// the last unpin, the last uncharge, the last child's release) calls
    /// this, which starts with a `SeqCst` fence, and the state CAS picks one
    /// releaser, so a slot is released exactly once and never while
    /// something can still reach it.
    fn try_release(&self, mut index: usize) {
        while index != 0 {
            fence(SeqCst);
            let slot = &self.slots[index];
            let s = slot.state.load(SeqCst);
            if life(s) != ORPHAN
                || pins(s) != 0
                || !slot.counter.is_empty()
                || slot.children.load(SeqCst) != 0
                || slot
                    .state
                    .compare_exchange(s, state(generation(s), RELEASING), SeqCst, Relaxed)
                    .is_err()
            {
                return;
            }
            let parent = Self::parent_index(slot);
            slot.counter.reset();
            slot.flags.store(0, Relaxed);
            slot.tag.store(0, Relaxed);
            slot.state
                .store(state(generation(s).wrapping_add(1), FREE), Release);
            self.slots[parent].children.fetch_sub(1, SeqCst);
            index = parent;
        }
    }

    /// Sets `id`'s hard limit.
    ///
    /// Linearizable (see the `counter` module): once this returns, no charge
    /// takes `id` above `max` unless it is forced, which stays within
    /// `max + overdraft`, counts in `id`'s `events.forced` and flags the
    /// charged account kill-pending. Below `current` is allowed, as with
    /// cgroup v2's `memory.max` (Linux's v1 `page_counter_set_max` returns
    /// `EBUSY` instead): nothing is taken back, and charges are refused (or
    /// forced) until usage falls.
    ///
    /// # Errors
    /// If `id` is not live; then nothing changed.
    pub fn set_max(&self, id: AccountId, max: Limit) -> Result<(), StaleAccount> {
        let lowered = self.pin(id, false)?.slot().counter.set_max(max.to_raw());
        self.after_limit_change(lowered);
        Ok(())
    }

    /// Sets `id`'s soft limit. Linearizable like [`set_max`](Self::set_max):
    /// once this returns, every charge that leaves `id` above `high` counts
    /// in `events.high`.
    ///
    /// # Errors
    /// If `id` is not live; then nothing changed.
    pub fn set_high(&self, id: AccountId, high: Limit) -> Result<(), StaleAccount> {
        let lowered = self.pin(id, false)?.slot().counter.set_high(high.to_raw());
        self.after_limit_change(lowered);
        Ok(())
    }

    /// Sets how far an infallible charge may be forced past `id`'s `max`
    /// (and, on the root, past the heap floor). Linearizable like
    /// [`set_max`](Self::set_max).
    ///
    /// # Errors
    /// If `id` is not live; then nothing changed.
    pub fn set_overdraft(&self, id: AccountId, bytes: usize) -> Result<(), StaleAccount> {
        self.pin(id, false)?.slot().counter.set_overdraft(bytes);
        Ok(())
    }

    /// Replaces `id`'s tag (the owner's label, for the host's listings):
    /// for an account whose owner becomes known after it was created, such
    /// as a connection's that becomes a session's.
    ///
    /// # Errors
    /// If `id` is not live; then nothing changed.
    pub fn set_tag(&self, id: AccountId, tag: u64) -> Result<(), StaleAccount> {
        self.pin(id, false)?.slot().tag.store(tag, Relaxed);
        Ok(())
    }

    /// Makes `id` (and its descendants) a fault-injection target, or not.
    ///
    /// # Errors
    /// If `id` is not live.
    pub fn set_fault_target(&self, id: AccountId, on: bool) -> Result<(), StaleAccount> {
        let pinned = self.pin(id, false)?;
        let slot = pinned.slot();
        let bit = AccountFlags::FAULT_TARGET.bits();
        if on {
            slot.flags.fetch_or(bit, Relaxed);
        } else {
            slot.flags.fetch_and(!bit, Relaxed);
        }
        Ok(())
    }

    /// Installs a fault-injection policy for all targeted accounts.
    pub fn set_fault_policy(&self, policy: FaultPolicy) {
        self.faults.set(policy);
        self.after_limit_change(true);
    }

    /// The fault-injection policy in force.
    pub fn fault_policy(&self) -> FaultPolicy {
        self.faults.policy()
    }

    /// Whether a forced charge has marked `id` for killing.
    pub fn kill_pending(&self, id: AccountId) -> bool {
        self.slot(id, true)
            .is_some_and(|s| s.flags.load(Relaxed) & AccountFlags::KILL_PENDING.bits() != 0)
    }

    /// Counts a process killed for exceeding `id`'s limit.
    ///
    /// # Errors
    /// If `id` is neither live nor orphaned.
    pub fn record_oom_kill(&self, id: AccountId) -> Result<(), StaleAccount> {
        self.pin(id, true)?.slot().counter.count(Event::OomKill);
        Ok(())
    }

    /// Sets the cap non-kernel charges may bring the root's `current` to
    /// (the heap floor). Linearizable like [`set_max`](Self::set_max): once
    /// this returns, no non-kernel charge takes the root past `budget`
    /// unless it is forced.
    pub fn set_heap_budget(&self, budget: Limit) {
        let lowered = self.slots[0].counter.set_cap(budget.to_raw());
        self.after_limit_change(lowered);
    }

    /// A snapshot of `id`, live or orphaned. It describes that account only,
    /// never the next one to use its slot.
    pub fn snapshot(&self, id: AccountId) -> Option<AccountSnapshot> {
        let pinned = self.pin(id, true).ok()?;
        let slot = pinned.slot();
        let index = id.index();
        let counter = &slot.counter;
        let usage = self.usage_of(index);
        Some(AccountSnapshot {
            id,
            parent: (index != 0).then(|| AccountId::from_raw(slot.parent.load(Relaxed))),
            tag: slot.tag.load(Relaxed),
            flags: self.flags_of(index),
            orphaned: life(slot.state.load(Relaxed)) == ORPHAN,
            current: usage.bytes,
            blocks: usage.blocks,
            max: Limit::from_raw(counter.max()),
            high: Limit::from_raw(counter.high()),
            peak: counter.peak(),
            overdraft: counter.overdraft(),
            events: counter.events(),
            children: slot.children.load(Relaxed),
            depth: slot.depth.load(Relaxed),
        })
    }

    /// Snapshots of every live or orphaned account, root first.
    pub fn snapshots(&self) -> impl Iterator<Item = AccountSnapshot> + '_ {
        (0..self.slots.len()).filter_map(move |index| {
            let s = self.slots[index].state.load(Acquire);
            let id = AccountId::new(u16::try_from(index).ok()?, generation(s));
            self.snapshot(id)
        })
    }

    /// Table-wide counters. Kernel and user bytes are summed over a scan, so
    /// they are exact only when no charge runs concurrently.
    pub fn stats(&self) -> TableStats {
        let (mut live, mut orphaned, mut user_bytes) = (0usize, 0usize, 0usize);
        for snap in self.snapshots() {
            if snap.orphaned {
                orphaned = orphaned.saturating_add(1);
            } else {
                live = live.saturating_add(1);
            }
            // A non-kernel account directly under a kernel one heads a user
            // subtree; its `current` covers the whole subtree.
            let top_level_user = !snap.flags.contains(AccountFlags::KERNEL)
                && snap
                    .parent
                    .is_some_and(|p| self.flags_of(p.index()).contains(AccountFlags::KERNEL));
            if top_level_user {
                user_bytes = user_bytes.saturating_add(snap.current);
            }
        }
        let total = self.root_current();
        TableStats {
            capacity: self.slots.len(),
            live,
            orphaned,
            kernel_bytes: total.saturating_sub(user_bytes),
            user_bytes,
            misattributed: self.misattributed.load(Relaxed),
            accounting_errors: self.accounting_errors.load(Relaxed),
            floor_refusals: self.floor_refusals.load(Relaxed),
            faults_injected: self.faults.injected(),
            heap_budget: Limit::from_raw(self.slots[0].counter.cap()),
        }
    }
}

#[path = "table_stock.rs"]
mod stocked;

#[cfg(all(test, not(loom)))]
#[path = "table_tests.rs"]
mod tests;

#[cfg(all(test, loom))]
#[path = "table_loom.rs"]
mod loom_model;
