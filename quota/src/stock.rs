//! One CPU's charge stock: bytes and blocks pre-charged to one account's
//! whole path, which charges on that CPU consume (and frees on it credit
//! back) without a read-modify-write on a shared counter.
//!
//! The kernel keeps one [`Stock`] per CPU in a `static` and hands the array
//! to [`AccountTable::with_stocks`](crate::AccountTable::with_stocks). This
//! module is only the slot: one word and its atomic transitions. How the
//! table fills, drains and reports stocks is in `table_stock.rs`.
//!
//! # Layout
//! One 64-bit word, changed only by compare-and-swap or by its busy owner:
//!
//! ```text
//!  63            32   31    30     24 23            0
//! | account id     | BUSY | blocks    | bytes          |
//! ```
//!
//! and, on the same cache line, the limits epoch the stock was granted
//! under (see [`AccountTable::charge_on`](crate::AccountTable::charge_on)).
//!
//! # Contract
//! - The bytes and blocks in a slot are charged at every level of the
//!   account's path (the shared counters include them) and are not usage:
//!   a level's usage is its counter less every stock held at or below it.
//! - An **idle** slot (BUSY clear) may be consumed (`consume`: bytes and
//!   blocks down) or credited (`credit`: up, bounded) by anyone, by one
//!   compare-and-swap on the word; neither changes a shared counter.
//! - A **busy** slot belongs to one actor, a refill or a drain, whose amount
//!   is in transit: it may or may not be in the counters yet. Nobody else
//!   consumes, credits or takes it; a refusing charge waits for it.
//! - Only a busy owner ends a busy period, with one store.
//!
//! The slot itself is CPU-agnostic: a thread that was migrated between
//! reading its CPU index and using the slot only makes the compare-and-swap
//! contended, never the accounting wrong.

use crossbeam_utils::CachePadded;

use crate::AccountId;
use crate::sync::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, SeqCst},
};
use crate::usage::Amount;

/// Most bytes a slot can hold (24 bits).
pub(crate) const MAX_STOCK_BYTES: usize = (1 << 24) - 1;
/// Most blocks a slot can hold (7 bits).
pub(crate) const MAX_STOCK_BLOCKS: usize = (1 << 7) - 1;

const BYTES_MASK: u64 = (1 << 24) - 1;
const BLOCKS_SHIFT: u32 = 24;
const BLOCKS_MASK: u64 = (1 << 7) - 1;
const BUSY: u64 = 1 << 31;
const ID_SHIFT: u32 = 32;
/// The blocks field in place.
const BLOCKS_BITS: u64 = BLOCKS_MASK << BLOCKS_SHIFT;
/// The account id and the busy bit: what an idle slot of one account
/// has in common whatever it holds.
const TAG_MASK: u64 = !(BUSY - 1);

/// The word an idle slot of `account` has with nothing in it.
#[inline]
fn idle_tag(account: AccountId) -> u64 {
    u64::from(account.to_raw()) << ID_SHIFT
}

/// `amount` packed in a slot's bytes and blocks fields, or `None` if it
/// does not fit them (then no slot can hold or take it).
#[inline]
fn packed(amount: Amount) -> Option<u64> {
    Held {
        account: AccountId::ROOT,
        busy: false,
        amount,
    }
    .to_word()
}

/// An id that names no account: slot 0 with a generation other than the
/// root's 0 (the root's generation never changes).
pub(crate) const NO_ACCOUNT: AccountId = AccountId::from_raw(1 << 16);

/// What a slot holds, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    /// The account the stock is charged to ([`NO_ACCOUNT`] when empty).
    pub(crate) account: AccountId,
    /// A refill or drain owns the slot.
    pub(crate) busy: bool,
    /// Bytes and blocks held.
    pub(crate) amount: Amount,
}

impl Held {
    /// An empty, idle slot.
    pub(crate) const EMPTY: Held = Held {
        account: NO_ACCOUNT,
        busy: false,
        amount: Amount::bytes(0),
    };

    /// Whether this holds anything (bytes or blocks) or is in transit.
    pub(crate) fn is_active(self) -> bool {
        self.busy || !self.amount.is_zero()
    }

    /// The packed word, or `None` if the amount does not fit a slot.
    #[inline]
    pub(crate) fn to_word(self) -> Option<u64> {
        if self.amount.bytes > MAX_STOCK_BYTES || self.amount.blocks > MAX_STOCK_BLOCKS {
            return None;
        }
        let bytes = u64::try_from(self.amount.bytes).ok()?;
        let blocks = u64::try_from(self.amount.blocks).ok()?;
        let busy = if self.busy { BUSY } else { 0 };
        Some(
            (u64::from(self.account.to_raw()) << ID_SHIFT)
                | busy
                | (blocks << BLOCKS_SHIFT)
                | bytes,
        )
    }

    #[inline]
    pub(crate) fn from_word(word: u64) -> Self {
        let part = |x: u64| usize::try_from(x).unwrap_or(usize::MAX);
        Held {
            account: AccountId::from_raw(u32::try_from(word >> ID_SHIFT).unwrap_or(u32::MAX)),
            busy: word & BUSY != 0,
            amount: Amount {
                bytes: part(word & BYTES_MASK),
                blocks: part((word >> BLOCKS_SHIFT) & BLOCKS_MASK),
            },
        }
    }
}

struct Inner {
    word: AtomicU64,
    /// The table's limits epoch when the stock was last validated against
    /// the limits; written by the busy owner before it ends the busy period.
    epoch: AtomicU64,
}

/// One CPU's stock slot. Create an array of them with `Stock::new` in a
/// `static`, one per CPU, and hand it to
/// [`AccountTable::with_stocks`](crate::AccountTable::with_stocks). Padded
/// to a cache line so that CPUs do not share one.
pub struct Stock {
    inner: CachePadded<Inner>,
}

macro_rules! stock_new {
    () => {
        Stock {
            inner: CachePadded::new(Inner {
                word: AtomicU64::new(EMPTY_WORD),
                epoch: AtomicU64::new(0),
            }),
        }
    };
}

/// The packed [`Held::EMPTY`].
const EMPTY_WORD: u64 = (NO_ACCOUNT.to_raw() as u64) << ID_SHIFT;

impl Stock {
    /// An empty slot.
    #[cfg(not(loom))]
    #[must_use]
    pub const fn new() -> Self {
        stock_new!()
    }

    /// An empty slot.
    #[cfg(loom)]
    #[must_use]
    pub fn new() -> Self {
        stock_new!()
    }

    /// What the slot holds now.
    pub(crate) fn load(&self) -> Held {
        Held::from_word(self.inner.word.load(SeqCst))
    }

    /// The epoch the stock was last validated under.
    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        self.inner.epoch.load(Relaxed)
    }

    /// Takes `amount` from an idle slot holding `account`'s stock; `false`
    /// (nothing changed) if the slot is busy, holds another account, or
    /// holds less. Sequentially consistent, so that the caller's re-read of
    /// the table's epoch afterwards is ordered with a limit setter's.
    #[inline]
    pub(crate) fn consume(&self, account: AccountId, amount: Amount) -> bool {
        let Some(take) = packed(amount) else {
            return false;
        };
        let tag = idle_tag(account);
        let word = &self.inner.word;
        let mut cur = word.load(Relaxed);
        loop {
            // Each field of `cur` covers `take`'s, so the subtraction
            // borrows across no field.
            if cur & TAG_MASK != tag
                || cur & BYTES_MASK < take & BYTES_MASK
                || cur & BLOCKS_BITS < take & BLOCKS_BITS
            {
                return false;
            }
            match word.compare_exchange_weak(cur, cur.wrapping_sub(take), SeqCst, Relaxed) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Adds `amount` to an idle slot holding `account`'s stock, if that
    /// keeps its bytes within `bound_bytes` (at most [`MAX_STOCK_BYTES`])
    /// and its blocks within range; `false` (nothing changed) otherwise.
    #[inline]
    pub(crate) fn credit(&self, account: AccountId, amount: Amount, bound_bytes: usize) -> bool {
        let Some(add) = packed(amount) else {
            return false;
        };
        let bound = u64::try_from(bound_bytes.min(MAX_STOCK_BYTES)).unwrap_or(0);
        let tag = idle_tag(account);
        let word = &self.inner.word;
        let mut cur = word.load(Relaxed);
        loop {
            // Both sums stay within their fields (each part is below 2³²,
            // so they cannot wrap), so the addition carries across no field.
            if cur & TAG_MASK != tag
                || (cur & BYTES_MASK).wrapping_add(add & BYTES_MASK) > bound
                || (cur & BLOCKS_BITS).wrapping_add(add & BLOCKS_BITS) > BLOCKS_BITS
            {
                return false;
            }
            match word.compare_exchange_weak(cur, cur.wrapping_add(add), Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Makes an idle slot that still holds `seen` busy, for the caller to
    /// own; `false` if it changed or is busy. The caller must end the busy
    /// period with [`end`](Self::end).
    pub(crate) fn begin(&self, seen: Held) -> bool {
        if seen.busy {
            return false;
        }
        let (Some(cur), Some(next)) = (seen.to_word(), Held { busy: true, ..seen }.to_word())
        else {
            return false;
        };
        self.inner
            .word
            .compare_exchange(cur, next, SeqCst, Acquire)
            .is_ok()
    }

    /// While busy: relabels the amount in transit (the busy owner's
    /// progress, visible to waiters).
    pub(crate) fn relabel(&self, held: Held) {
        debug_assert!(held.busy);
        if let Some(word) = held.to_word() {
            self.inner.word.store(word, SeqCst);
        }
    }

    /// While busy: records the epoch the stock is now valid under.
    pub(crate) fn set_epoch(&self, epoch: u64) {
        self.inner.epoch.store(epoch, Relaxed);
    }

    /// Ends the caller's busy period, leaving `held` (idle) in the slot.
    pub(crate) fn end(&self, held: Held) {
        debug_assert!(!held.busy);
        let word = held.to_word().unwrap_or(EMPTY_WORD);
        self.inner.word.store(word, SeqCst);
    }
}

impl Default for Stock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn id(n: u16) -> AccountId {
        AccountId::new(n, 3)
    }

    fn held(account: AccountId, bytes: usize, blocks: usize) -> Held {
        Held {
            account,
            busy: false,
            amount: Amount { bytes, blocks },
        }
    }

    #[test]
    fn packs_and_refuses_out_of_range() {
        for h in [
            Held::EMPTY,
            held(id(7), MAX_STOCK_BYTES, MAX_STOCK_BLOCKS),
            Held {
                busy: true,
                ..held(AccountId::ROOT, 1, 0)
            },
        ] {
            assert_eq!(Held::from_word(h.to_word().unwrap()), h);
        }
        assert_eq!(held(id(1), MAX_STOCK_BYTES + 1, 0).to_word(), None);
        assert_eq!(held(id(1), 0, MAX_STOCK_BLOCKS + 1).to_word(), None);
        assert_eq!(Held::from_word(EMPTY_WORD), Held::EMPTY);
        assert!(!Held::EMPTY.is_active());
        assert_ne!(NO_ACCOUNT, AccountId::ROOT);
    }

    #[test]
    fn consume_and_credit_only_an_idle_slot_of_their_account() {
        let s = Stock::new();
        let a = id(1);
        assert!(
            !s.consume(a, Amount::block(1)),
            "an empty slot holds nothing"
        );
        assert!(!s.credit(a, Amount::block(8), 100), "nor is it a's");
        assert!(s.begin(Held::EMPTY));
        assert!(!s.begin(s.load()), "one busy owner at a time");
        s.relabel(Held {
            busy: true,
            ..held(a, 100, 4)
        });
        assert!(!s.consume(a, Amount::block(1)), "busy slots are off limits");
        assert!(!s.credit(a, Amount::block(1), 1000));
        s.end(held(a, 100, 4));
        assert!(s.consume(a, Amount::block(60)));
        assert!(!s.consume(id(2), Amount::block(1)), "another account's");
        assert!(!s.consume(a, Amount::block(41)), "more than held");
        assert!(
            !s.consume(
                a,
                Amount {
                    bytes: 0,
                    blocks: 4
                }
            ),
            "more blocks than held"
        );
        assert_eq!(s.load(), held(a, 40, 3));
        assert!(s.credit(a, Amount::block(60), 100));
        assert!(!s.credit(a, Amount::block(1), 100), "past the bound");
        assert_eq!(s.load(), held(a, 100, 4));
        assert!(s.begin(held(a, 100, 4)));
        s.end(Held::EMPTY);
        assert_eq!(s.load(), Held::EMPTY);
    }
}
