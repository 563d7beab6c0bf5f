//! Per-CPU charge stocks in the account table: the common charge and free
//! touch no shared counter, and reports and refusals stay byte-exact.
//!
//! Each CPU has a [`Stock`](crate::Stock) slot holding bytes and blocks
//! pre-charged to one account's whole path. [`AccountTable::charge_on`]
//! takes from it and [`AccountTable::uncharge_on`] gives back to it (up to
//! twice the batch) with one compare-and-swap on that CPU's cache line.
//! When the stock runs short, the charge walks the tree as before and, in
//! the same walk, tops the stock up (a *refill*).
//!
//! # The rules, and what makes each hold
//! - **Stock is not usage.** A level's usage is its counter less every
//!   stock held at or below it. [`AccountTable::snapshot`],
//!   [`AccountTable::root_usage`] and [`AccountTable::stats`] subtract it
//!   at every level, so `current` and `blocks` are byte-exact.
//! - **The fast path decides nothing.** A refill grants stock only while
//!   every level of the path stays within its *stock ceiling*: its `max`,
//!   its cap (the heap floor), its `high` and its `peak`; and it takes only
//!   a share of the room under them, leaving the rest to the other CPUs
//!   (see `size_refill`). So whatever is consumed from
//!   stock can take no level past a limit or `high` and set no new peak:
//!   such a charge would have been admitted unforced, counting nothing, by
//!   the tree walk too. `peak` stays exact because a level's counter never
//!   goes past its peak while any stock is held under it.
//! - **Exact decisions.** A charge the stock does not cover, and that no
//!   refill fits, walks the tree with a *gate*: at each level where it would be
//!   refused, forced, overflow, pass `high` or set a new peak (a *tight*
//!   level), stock held below could be what tips it, so the gate first
//!   returns every stock at or below that level to the counters (draining
//!   other CPUs' slots itself, with compare-and-swap: no interrupt needed)
//!   and waits, briefly, for stock in transit. Only then is the level
//!   decided, on a value read after the drain. So a charge is refused (or
//!   forced, flagging its owner for killing) only if usage plus the request
//!   passes the limit with no stock left under the level, and a new peak
//!   or a `high` event is counted on exact usage.
//! - **No escape.** Refills admit stock only within `max` and the cap, so
//!   counters, and hence usage, pass them only through forced charges, as
//!   before; the heap floor binds usage exactly as it did.
//! - **Limits stay linearizable.** Lowering a limit (`max`, `high`, the
//!   cap) or changing fault injection advances the table's stock epoch
//!   after the counter's own protocol (`counter.rs`) has run. A stock is
//!   consumed only if the epoch it was granted under is still current, read
//!   after the consuming swap (both sequentially consistent); otherwise the
//!   bytes are given back and the charge walks the tree. Stock granted
//!   under limits since lowered is therefore never used, and is returned by
//!   the next drain. A raised limit leaves stock valid (it fit the old
//!   one), and takes effect as before. Refills are off while fault
//!   injection is armed, so injected faults see every charge.
//! - **Accounts are released.** Dropping an account's handle drains every
//!   idle slot holding its stock; a refill that published stock checks,
//!   after publishing, that its account is still live, and drains its own
//!   slot if not (both sequentially consistent: one of the two sees the
//!   other). A free credits stock only while the slot already holds that
//!   account's stock.
//!
//! # Stock in transit
//! A refill marks its slot busy *before* its first swap on a counter and
//! publishes after its last; a drain marks the slot busy before it
//! uncharges and empties it after. A counter swap by a refill releases, and
//! the gate reads the value it decides on before an acquire fence and its
//! scan of the slots: so any stock that value includes shows in the scan,
//! as busy (wait and read again) or idle (drain and read again). The value
//! is used only if a read after the scan gives the same, which a drain
//! that finished before the scan would have changed.
//!
//! # What is not exact under concurrency
//! Sequentially (any number of CPUs taking turns) every report and decision
//! equals the stock-free one; the property test checks that. Under real
//! concurrency: a report reads the counter and the slots at slightly
//! different instants (it retries a few times until the slots look the
//! same before and after); a gate waits for stock in transit at most
//! [`GATE_BUDGET`] times, so a CPU stalled in the middle of a refill (a
//! preempted thread) can make another's refusal, or peak, inexact by that
//! refill's batch; and the value a decision is made on is compared by
//! value, so a refill and an equal-sized free landing between its two reads
//! go unnoticed. If the kernel keeps allocation from being preempted, the
//! first two windows are a few hundred instructions long.

use super::AccountTable;
use crate::counter::{Admitted, Gate, MAX_DEPTH, Mode, PathRefusal, Tight};
use crate::counter::{charge_path_gated, charge_path_within};
use crate::stock::{Held, MAX_STOCK_BLOCKS, MAX_STOCK_BYTES, Stock};
use crate::sync::{
    Ordering::{Acquire, Relaxed, SeqCst},
    fence, spin_loop,
};
use crate::{AccountId, Amount, Charged, Refusal};

/// Bytes a refill tops a CPU's stock up to, by default.
pub const DEFAULT_STOCK_BATCH: usize = 32 * 1024;

/// The largest batch: frees may grow a stock to twice the batch, which
/// must fit a slot.
const MAX_STOCK_BATCH: usize = MAX_STOCK_BYTES / 2;

/// Blocks a refill tops a stock up to (each allocation takes one).
const BLOCK_BATCH: usize = 64;

/// How often one charge's gate drains, or waits for stock in transit,
/// before it decides on what it reads.
const GATE_BUDGET: u32 = 64;

/// How often a report re-reads before it settles for what it read.
const REPORT_TRIES: u32 = 8;

/// What a scan of the slots under a level found.
#[derive(Clone, Copy, Default)]
struct Scan {
    /// Some stock was returned to the counters.
    returned: bool,
    /// Some slot under the level is busy: stock in transit.
    in_transit: bool,
}

impl AccountTable<'_> {
    /// Charges `amount` to `id` and its ancestors like
    /// [`charge`](Self::charge), on CPU `cpu`: from that CPU's stock if it
    /// holds enough of `id`'s (no shared counter touched), else walking the
    /// tree and, where every level has room, refilling the stock in the
    /// same walk. A CPU without a stock slot charges like `charge`.
    ///
    /// The result is the same as [`charge`](Self::charge)'s in any
    /// sequential run, whatever the stocks hold: see the module docs.
    ///
    /// # Errors
    /// As [`charge`](Self::charge).
    #[inline]
    pub fn charge_on(
        &self,
        cpu: usize,
        id: AccountId,
        amount: Amount,
        mode: Mode,
    ) -> Result<Charged, Refusal> {
        self.take_stock(cpu, id, amount)
            .or_else(|stock| self.charge_with(id, amount, mode, stock))
    }

    /// [`charge_exact`](Self::charge_exact) on CPU `cpu`, using its stock
    /// like [`charge_on`](Self::charge_on).
    ///
    /// # Errors
    /// As [`charge_exact`](Self::charge_exact).
    pub fn charge_exact_on(
        &self,
        cpu: usize,
        id: AccountId,
        amount: Amount,
        mode: Mode,
    ) -> Result<Charged, Refusal> {
        self.take_stock(cpu, id, amount)
            .or_else(|stock| self.charge_exact_with(id, amount, mode, stock))
    }

    /// The fast path of both charges: `amount` taken from CPU `cpu`'s
    /// stock for `id` if it covers it; otherwise the slot (if any) that the
    /// tree walk may refill.
    #[inline]
    fn take_stock(
        &self,
        cpu: usize,
        id: AccountId,
        amount: Amount,
    ) -> Result<Charged, Option<&Stock>> {
        let stock = self.stock_for(cpu, id);
        match stock {
            Some(slot) if self.consume(slot, id, amount) => Ok(Charged {
                account: id,
                forced: false,
            }),
            _ => Err(stock),
        }
    }

    /// Credits `amount` back to `id` like [`uncharge`](Self::uncharge), on
    /// CPU `cpu`: into that CPU's stock if it holds `id`'s and stays within
    /// twice the batch (no shared counter touched), else up the tree.
    #[inline]
    pub fn uncharge_on(&self, cpu: usize, id: AccountId, amount: Amount) {
        if let Some(stock) = self.stock_for(cpu, id)
            && stock.credit(id, amount, self.credit_bound())
        {
            return;
        }
        self.uncharge(id, amount);
    }

    /// Sets the bytes a refill tops a CPU's stock up to (at most 8 MiB);
    /// 0 stops refills, so every charge walks the tree, as with no stock.
    /// Stock already held stays until consumed or drained.
    pub fn set_stock_batch(&self, bytes: usize) {
        self.stock_batch.store(bytes.min(MAX_STOCK_BATCH), Relaxed);
    }

    /// The bytes a refill tops a CPU's stock up to (0: no refills).
    #[inline]
    pub fn stock_batch(&self) -> usize {
        self.stock_batch.load(Relaxed)
    }

    /// Number of CPUs with stock slots.
    pub fn stock_cpus(&self) -> usize {
        self.stocks
            .len()
            .checked_div(self.stocks_per_cpu)
            .unwrap_or(0)
    }

    /// The slot CPU `cpu` uses for `id`'s stock, if it has slots.
    #[inline]
    fn stock_for(&self, cpu: usize, id: AccountId) -> Option<&Stock> {
        let per_cpu = self.stocks_per_cpu;
        let first = cpu.checked_mul(per_cpu)?;
        self.stocks
            .get(first.checked_add(id.index().checked_rem(per_cpu)?)?)
    }

    /// Bytes and blocks held in all CPUs' stocks now: charged to the
    /// counters, not usage.
    pub fn stocked(&self) -> Amount {
        self.stocked_under(0).0
    }

    /// Returns every CPU's idle stock to the counters (stock in transit
    /// stays with its refill or drain). Nothing any report shows changes.
    pub fn drain_stocks(&self) {
        self.drain_under(0);
    }

    /// Returns CPU `cpu`'s idle stock to the counters.
    pub fn drain_cpu(&self, cpu: usize) {
        let per_cpu = self.stocks_per_cpu;
        let Some(first) = cpu.checked_mul(per_cpu) else {
            return;
        };
        for stock in self.stocks.iter().skip(first).take(per_cpu) {
            let held = stock.load();
            if held.is_active() && stock.begin(held) {
                self.return_stock(stock, held);
            }
        }
    }

    /// The fast path: takes `amount` from `stock` if it holds enough of
    /// `id`'s and was granted under the limits in force.
    #[inline]
    fn consume(&self, stock: &Stock, id: AccountId, amount: Amount) -> bool {
        if !stock.consume(id, amount) {
            return false;
        }
        if stock.epoch() == self.stock_epoch.load(SeqCst) {
            return true;
        }
        // Granted before a limit was lowered: not ours to use.
        if !stock.credit(id, amount, MAX_STOCK_BYTES) {
            self.uncharge(id, amount);
        }
        false
    }

    #[inline]
    fn credit_bound(&self) -> usize {
        self.stock_batch().saturating_mul(2)
    }

    /// Called by every setter after the counter's own protocol ran: if the
    /// change could make granted stock unsafe to consume, advance the
    /// epoch so that it is not.
    pub(super) fn after_limit_change(&self, lowered: bool) {
        if lowered && !self.stocks.is_empty() {
            self.stock_epoch.fetch_add(1, SeqCst);
        }
    }

    /// Charges `amount` to `id` and tops `stock` up in the same walk, if
    /// every level has room under its stock ceiling. Returns whether it
    /// charged; if not, nothing changed and the caller walks the tree.
    pub(super) fn refill(&self, stock: &Stock, id: AccountId, amount: Amount) -> bool {
        let batch = self.stock_batch();
        let seen = stock.load();
        if batch == 0 || seen.busy {
            return false;
        }
        let kept = if seen.account == id {
            seen.amount
        } else {
            Amount::default()
        };
        let want = Amount {
            bytes: batch.saturating_sub(kept.bytes),
            blocks: BLOCK_BATCH.saturating_sub(kept.blocks),
        };
        let Some(extra) = self.size_refill(id, amount, want) else {
            return false;
        };
        if !stock.begin(seen) {
            return false;
        }
        // Another account's stock goes back first, labelled as in transit.
        if seen.account != id {
            if !seen.amount.is_zero() {
                self.uncharge(seen.account, seen.amount);
            }
            stock.relabel(Held {
                account: id,
                busy: true,
                amount: kept,
            });
        }
        // Read before the limits the walk checks: stock validated against
        // them is valid under this epoch (or a later lowering voids it).
        let epoch = self.stock_epoch.load(Acquire);
        let granted = charge_path_within(self.path(id), amount, extra);
        if granted.is_some() {
            stock.set_epoch(epoch);
        }
        // In range: `want` tops up to the batch (at most half a slot) and
        // a kept stock is already in range.
        let held = kept
            .checked_add(granted.unwrap_or_default())
            .unwrap_or(kept);
        debug_assert!(held.bytes <= MAX_STOCK_BYTES && held.blocks <= MAX_STOCK_BLOCKS);
        stock.end(Held {
            account: id,
            busy: false,
            amount: held,
        });
        if granted.is_none() {
            return false;
        }
        if !self.is_live_now(id) {
            // Its owner dropped it while this refill was in flight.
            self.drain_account(id);
        }
        true
    }

    /// How much stock a refill for a charge of `amount` to `id` may take,
    /// at most `want`. Headroom under a limit (`max`, the cap) is what
    /// other CPUs need to charge at all, so a refill takes at most half of
    /// its fair share of the least such headroom on the path; headroom
    /// under `high` and `peak` only spares other CPUs a tree walk, so a
    /// refill takes at most its fair share of it. `None` if a level has no
    /// room under its stock ceiling for `amount` itself, or the share is 0
    /// bytes.
    fn size_refill(&self, id: AccountId, amount: Amount, want: Amount) -> Option<Amount> {
        let (mut hard, mut soft) = (usize::MAX, usize::MAX);
        for counter in self.path(id) {
            let after = counter.current().checked_add(amount.bytes)?;
            hard = hard.min(counter.max().min(counter.cap()).checked_sub(after)?);
            soft = soft.min(counter.high().min(counter.peak()).checked_sub(after)?);
        }
        let cpus = self.stocks.len().max(1);
        let share = hard
            .checked_div(cpus.saturating_mul(2))
            .unwrap_or(0)
            .min(soft.checked_div(cpus).unwrap_or(0));
        let bytes = want.bytes.min(share);
        (bytes > 0).then_some(Amount {
            bytes,
            blocks: want.blocks,
        })
    }

    /// The tree walk for a charge the stock did not cover, with the gate
    /// that returns stock under each tight level before deciding it.
    pub(super) fn charge_gated(
        &self,
        id: AccountId,
        amount: Amount,
        mode: Mode,
    ) -> Result<Admitted, PathRefusal> {
        let mut budget = GATE_BUDGET;
        let mut gate = |depth: usize, _: Tight| -> Gate {
            let Some(left) = budget.checked_sub(1) else {
                return Gate::GiveUp;
            };
            budget = left;
            // Any refill whose swap the value just read includes has its
            // busy mark visible to the scan (module docs).
            fence(Acquire);
            let scan = self.drain_under(self.ancestor(id, depth).index());
            if scan.in_transit {
                spin_loop();
                Gate::Retry
            } else if scan.returned {
                Gate::Retry
            } else {
                Gate::Proceed
            }
        };
        charge_path_gated(self.path(id), amount, mode, Some(&mut gate))
    }

    /// Returns every idle stock held at or below `level` to the counters.
    fn drain_under(&self, level: usize) -> Scan {
        let mut scan = Scan::default();
        for stock in self.stocks {
            loop {
                let held = stock.load();
                if !held.is_active() || !self.is_under(held.account, level) {
                    break;
                }
                if held.busy {
                    scan.in_transit = true;
                    break;
                }
                if stock.begin(held) {
                    self.return_stock(stock, held);
                    scan.returned = true;
                    break;
                }
            }
        }
        scan
    }

    /// Returns every idle stock of `id` (whose owner just dropped it).
    pub(super) fn drain_account(&self, id: AccountId) {
        for stock in self.stocks {
            loop {
                let held = stock.load();
                // A busy refill checks liveness itself after publishing; a
                // busy drain empties the slot.
                if held.account != id || !held.is_active() || held.busy {
                    break;
                }
                if stock.begin(held) {
                    self.return_stock(stock, held);
                    break;
                }
            }
        }
    }

    /// Uncharges what a slot the caller made busy holds, then empties it.
    fn return_stock(&self, stock: &Stock, held: Held) {
        if !held.amount.is_zero() {
            self.uncharge(held.account, held.amount);
        }
        stock.end(Held::EMPTY);
    }

    /// Whether `account` is `level` or below it. Safe on an account whose
    /// slot was released meanwhile: the walk is bounded and a wrong answer
    /// only makes a scan skip or wait once (its `begin` then fails).
    fn is_under(&self, account: AccountId, level: usize) -> bool {
        if level == 0 {
            return true;
        }
        let mut index = account.index();
        for _ in 0..MAX_DEPTH {
            if index == level {
                return true;
            }
            match self.slots.get(index) {
                Some(slot) if index != 0 => index = Self::parent_index(slot),
                _ => return false,
            }
        }
        false
    }

    /// Whether `id` is live, read sequentially consistently (the refill's
    /// half of its handshake with `drop_owner`).
    fn is_live_now(&self, id: AccountId) -> bool {
        if id.index() == 0 {
            return true;
        }
        self.slots.get(id.index()).is_some_and(|slot| {
            let s = slot.state.load(SeqCst);
            super::life(s) == super::LIVE && super::generation(s) == id.generation()
        })
    }

    /// Stock held at or below `level`, and whether any of it is in transit.
    fn stocked_under(&self, level: usize) -> (Amount, bool) {
        let mut sum = Amount::default();
        let mut busy = false;
        for stock in self.stocks {
            let held = stock.load();
            if held.is_active() && self.is_under(held.account, level) {
                busy |= held.busy;
                sum = sum.checked_add(held.amount).unwrap_or(sum);
            }
        }
        (sum, busy)
    }

    /// The usage of the account in slot `index`: its counter less the stock
    /// held at or below it (see the module docs for concurrency).
    pub(super) fn usage_of(&self, index: usize) -> Amount {
        let counter = &self.slots[index].counter;
        if self.stocks.is_empty() {
            return counter.usage();
        }
        let mut usage = Amount::default();
        for _ in 0..REPORT_TRIES {
            let (before, busy_before) = self.stocked_under(index);
            let charged = counter.usage();
            let (after, busy_after) = self.stocked_under(index);
            usage = charged.saturating_sub(before);
            if before == after && !busy_before && !busy_after {
                break;
            }
            spin_loop();
        }
        usage
    }
}

#[cfg(all(test, not(loom)))]
#[path = "table_stock_tests.rs"]
mod tests;

#[cfg(all(test, loom))]
#[path = "table_stock_loom.rs"]
mod loom_model;
