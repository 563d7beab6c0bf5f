//! One level of the account tree, and the charge protocol across levels.
//!
//! A [`Counter`] holds one account's usage word, limits, peak and events.
//! [`charge_path`] charges a path of counters leaf→root, each level with an
//! atomic compare-and-swap that checks the limits against the exact value it
//! replaces, and rolls back the levels already charged when a level refuses.
//!
//! # Guarantees
//! Checked by the `loom` models at the end of this file and of `table.rs`,
//! and by the property test against a sequential model in `tests/model.rs`.
//! - **A limit change takes effect at one point, before its setter
//!   returns.** This holds for `max`, `high`, `overdraft` and the cap. Every
//!   charge that commits at the level after that point was checked against
//!   the new value: it does not take the level above the new `max` unless it
//!   is forced (counted in `events.forced`, bounded by `max + overdraft`),
//!   and if it leaves the level above the new `high` it counts in
//!   `events.high`. A charge that overlaps the setter's call was checked
//!   against the old or the new value, and fits the one it was checked
//!   against.
//! - Commits are linearizable with respect to `max`: each committed charge
//!   can be placed at its swap, and each `max` change at one point within
//!   its call, so that every commit fits the `max` in force where it is
//!   placed. Classification is exact for charges that do not overlap the
//!   setter's call; two charges that both overlap it may see different
//!   values (one forced under the old `max`, another admitted under the new
//!   one), which no single point explains. The section below says why.
//! - `max` may be set below `current` (cgroup v2's `memory.max` accepts this
//!   too): nothing already charged is taken back, and charges are refused
//!   (or forced) until usage falls.
//! - No charge takes a level above its `max` except a forced one. A level
//!   reads above `max` only after its `max` was lowered below `current`,
//!   through a forced charge, or for an instant while a charge that lost a
//!   race with a limit change (or was refused further up) rolls back.
//! - A charge is applied at every level of its path or, after rollback, at
//!   none: no update is lost or counted twice. An uncharge of more than is
//!   charged changes nothing, not even for an instant.
//! - `peak` is the highest `current` a committed charge produced. Run
//!   sequentially, a charge that is rolled back never raises a peak; under
//!   concurrency a committed charge's value may include another charge's
//!   bytes that are rolled back an instant later (the peak was real, if
//!   brief). The same value decides whether the charge was forced and
//!   whether it counts a `high` event.
//! - All arithmetic is checked: a charge past [`MAX_BYTES`](crate::MAX_BYTES) bytes or
//!   [`MAX_BLOCKS`](crate::MAX_BLOCKS) blocks is refused, even in an
//!   unlimited account and even for kernel accounts; nothing wraps.
//!
//! # How a limit change takes effect
//! The usage word (bytes and blocks, see [`crate::usage`]) fills its 64 bits,
//! and stable Rust has no 128-bit compare-and-swap, so the limits cannot
//! live in the word the charge swaps. Nor can a setter make a stale charge's
//! swap fail by touching that word: a charge that read the old `max` and
//! then stalled may find the word holding exactly the value it read once
//! more (ABA), and a version counter small enough to share the word would
//! wrap. So each counter has `limits_seq`, a 64-bit count of limit changes:
//!
//! ```text
//! set limit:  store the limit; limits_seq += 1 (Release);
//!             current.fetch_add(0) (Release)           <- the change takes effect
//! charge:     s = limits_seq (Acquire); read the limits;
//!             CAS current (Acquire on success), admitting against them;
//!             limits_seq == s ? done : undo the CAS and do the level again
//! ```
//!
//! Why this is enough: the setter's read-modify-write on `current` is the
//! point at which the change takes effect. A charge whose CAS follows it in
//! `current`'s modification order reads from its release sequence (every
//! write to `current` is a read-modify-write), so the setter's increment of
//! `limits_seq` happens before the charge's second read of it. That read
//! differs from `s` — and the charge is undone — unless the first read
//! already saw the increment, in which case it synchronized with the setter
//! and the limits read after it are the new ones (or newer). Setters of one
//! field are ordered by that field's modification order (the last store
//! wins and its setter is the last to take effect).
//!
//! So the swap that commits a level is conditional on the limits it
//! checked; the re-read of `limits_seq` only confirms that they were still
//! the ones in force. When it does not, the level is undone before anything
//! depends on it: a level's charge is tentative until the whole path
//! commits, and this undo is the same rollback as a refusal further up. A
//! charge never waits for a setter and setters take no lock, so a setter
//! preempted halfway stalls nobody. The charge path pays two loads of
//! `limits_seq` per level, on the line that holds the limits, and acquire
//! ordering on the successful CAS (free on x86-64).
//!
//! What is left is the setter's call itself: its store is visible before
//! its read-modify-write on `current`, so a charge in between may use the
//! new value or the old one. For admission either is sound (placing a
//! lowering at the read-modify-write and a raise just before the first
//! charge that used it), but not for the forced and `high` classification
//! of two such charges at once. Closing that window needs the limits (or an
//! unbounded version) in the swapped word, which does not fit, or charges
//! that wait for setters, which a setter preempted halfway would stall.
//!
//! A refusal is decided against limits read during the charge, and may be
//! caused by another charge's bytes that are rolled back an instant later:
//! refusals under concurrency are not linearizable, only commits are.
//!
//! # Stock
//! Per-CPU stock (`table_stock.rs`) is bytes a counter includes that are
//! not usage. Two more entry points keep it from changing any outcome,
//! each with the limit protocol above unchanged:
//! - [`charge_path_within`] charges a path plus stock, but only as much
//!   stock as keeps every level within its *stock ceiling* (`max`, cap,
//!   `high` and `peak`): consuming that stock later can pass no limit and
//!   set no peak. So a counter never passes its peak while stock is held
//!   below it, and nothing is committed (no peak, no event) by it.
//! - [`charge_path_gated`] is [`charge_path`] with a gate called at every
//!   *tight* level, where the charge would be refused, forced, overflow,
//!   pass `high` or set a new peak, before that level is decided. The gate
//!   returns the stock held below the level; the level is then decided on
//!   a value read after the gate, so it is decided on usage.

use crossbeam_utils::CachePadded;

use crate::sync::{
    AtomicU64, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use crate::usage::{Amount, MAX_BLOCKS, MAX_BYTES};

/// Deepest account tree a charge walks; deeper accounts cannot be created.
pub const MAX_DEPTH: usize = 16;

/// Bytes a non-kernel account may be forced over its limit, by default.
pub const DEFAULT_OVERDRAFT: usize = 64 * 1024;

/// How a refused charge is handled (rule 4 of `ARCHITECTURE.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The caller handles failure: an over-limit charge is refused.
    Fallible,
    /// The caller cannot handle failure: an over-limit charge is forced, up
    /// to each level's overdraft, and the charged account is flagged
    /// kill-pending; only beyond the overdraft is it refused.
    Infallible,
    /// A kernel account: limits do not apply, only overflow refuses.
    Kernel,
}

/// The event counters of an account, in cgroup v2 `memory.events` words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Event {
    /// A charge refused because it would exceed this account's `max`.
    Max,
    /// A committed charge that left `current` above `high`.
    High,
    /// A process killed for exceeding this account (recorded by the kernel).
    OomKill,
    /// A charge let over `max` (or the heap floor) within the overdraft.
    Forced,
}

impl Event {
    const COUNT: usize = 4;
}

/// Counts of each [`Event`] for one account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Events {
    /// Charges refused at `max`.
    pub max: u64,
    /// Committed charges that left usage above `high`.
    pub high: u64,
    /// Processes killed for exceeding this account.
    pub oom_kill: u64,
    /// Charges forced over `max` or the heap floor.
    pub forced: u64,
}

/// Why one level refused a charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelRefusal {
    /// The level's own `max` (plus overdraft, for infallible charges).
    Limit,
    /// The level's cap (the heap floor, set on the root).
    Cap,
    /// `current + bytes` would pass [`MAX_BYTES`](crate::MAX_BYTES) (or blocks their maximum).
    Overflow,
}

/// How a committed charge was admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// Some level was over its limit or cap and let through the overdraft.
    pub forced: bool,
}

/// One level's limits, as one charge read them.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max: usize,
    high: usize,
    overdraft: usize,
    cap: usize,
}

impl Limits {
    /// Whether a level may go to `new` bytes: `Ok(forced)` or the refusal.
    fn admit(self, new: usize, mode: Mode) -> Result<bool, LevelRefusal> {
        let Limits {
            max,
            overdraft,
            cap,
            ..
        } = self;
        match mode {
            Mode::Kernel => Ok(false),
            _ if new <= max && new <= cap => Ok(false),
            Mode::Infallible
                if new <= max.saturating_add(overdraft) && new <= cap.saturating_add(overdraft) =>
            {
                Ok(true)
            }
            _ if new > max => Err(LevelRefusal::Limit),
            _ => Err(LevelRefusal::Cap),
        }
    }

    /// Whether stock held below the level could change how a charge that
    /// would bring it to `outcome` is treated, given the level's `peak`.
    fn tight(self, outcome: &Result<Outcome, LevelRefusal>, peak: usize) -> Option<Tight> {
        match outcome {
            Err(_) | Ok(Outcome { forced: true, .. }) => Some(Tight::Hard),
            Ok(o) if o.sum.bytes > self.high.min(peak) => Some(Tight::Soft),
            Ok(_) => None,
        }
    }

    /// The most bytes stock may bring the level to: no limit, no `high`
    /// and (the caller adds) no peak may be passed through stock.
    fn stock_ceiling(self) -> usize {
        self.max.min(self.cap).min(self.high)
    }
}

/// What adding an amount to a level's usage word would give.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    sum: Amount,
    next: u64,
    forced: bool,
}

impl Outcome {
    fn of(cur: u64, amount: Amount, limits: Limits, mode: Mode) -> Result<Self, LevelRefusal> {
        let sum = Amount::from_word(cur)
            .checked_add(amount)
            .ok_or(LevelRefusal::Overflow)?;
        let next = sum.to_word().ok_or(LevelRefusal::Overflow)?;
        let forced = limits.admit(sum.bytes, mode)?;
        Ok(Self { sum, next, forced })
    }
}

/// Why a level's outcome for a charge depends on stock held at or below
/// it: the counter includes that stock, which is not usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tight {
    /// The charge would be refused, forced or overflow here.
    Hard,
    /// It would be admitted unforced, but set a new peak or pass `high`.
    Soft,
}

/// What a gated charge does at a tight level (see [`charge_path_gated`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Nothing that could hide usage was found below the level: decide, on
    /// a value of the counter read again after the check.
    Proceed,
    /// Stock was returned or is in transit: read the level again.
    Retry,
    /// The check's budget is spent: decide on the value read.
    GiveUp,
}

/// A gate for one level: called with what makes the level tight.
type LevelGate<'g> = &'g mut dyn FnMut(Tight) -> Gate;

/// A gate for a path: called with the tight level's depth (0 = leaf).
pub(crate) type PathGate<'g> = &'g mut dyn FnMut(usize, Tight) -> Gate;

/// What one level's tentative charge produced.
#[derive(Clone, Copy, Debug)]
struct Added {
    /// The bytes the level went to.
    new: usize,
    forced: bool,
    /// `new` is above the `high` the charge was checked against.
    above_high: bool,
}

/// One account's counter, limits, peak and events.
pub(crate) struct Counter {
    /// The packed [`Amount`] charged: bytes and blocks.
    current: CachePadded<AtomicU64>,
    /// Limit changes so far; see the module documentation.
    limits_seq: AtomicU64,
    max: AtomicUsize,
    high: AtomicUsize,
    overdraft: AtomicUsize,
    /// A limit for non-kernel charges only: the heap floor, on the root.
    cap: AtomicUsize,
    peak: AtomicUsize,
    events: [AtomicU64; Event::COUNT],
}

macro_rules! counter_new {
    () => {
        Counter {
            current: CachePadded::new(AtomicU64::new(0)),
            limits_seq: AtomicU64::new(0),
            max: AtomicUsize::new(usize::MAX),
            high: AtomicUsize::new(usize::MAX),
            overdraft: AtomicUsize::new(DEFAULT_OVERDRAFT),
            cap: AtomicUsize::new(usize::MAX),
            peak: AtomicUsize::new(0),
            events: [
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
            ],
        }
    };
}

impl Counter {
    /// A counter at zero with no limits and the default overdraft.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        counter_new!()
    }

    /// A counter at zero with no limits and the default overdraft.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        counter_new!()
    }

    /// Resets every field to [`Counter::new`]'s values; `current` must be 0
    /// and nothing may charge or set limits concurrently (the table resets
    /// a slot only while no id can reach it).
    pub(crate) fn reset(&self) {
        debug_assert!(self.is_empty());
        self.peak.store(0, Relaxed);
        self.max.store(usize::MAX, Relaxed);
        self.high.store(usize::MAX, Relaxed);
        self.overdraft.store(DEFAULT_OVERDRAFT, Relaxed);
        self.cap.store(usize::MAX, Relaxed);
        for e in &self.events {
            e.store(0, Relaxed);
        }
    }

    /// Bytes charged.
    pub(crate) fn current(&self) -> usize {
        self.usage().bytes
    }
    /// Bytes and blocks charged.
    pub(crate) fn usage(&self) -> Amount {
        Amount::from_word(self.current.load(Relaxed))
    }
    /// Nothing charged, not even an empty block.
    pub(crate) fn is_empty(&self) -> bool {
        self.current.load(Relaxed) == 0
    }
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Relaxed)
    }
    pub(crate) fn max(&self) -> usize {
        self.max.load(Relaxed)
    }
    pub(crate) fn high(&self) -> usize {
        self.high.load(Relaxed)
    }
    pub(crate) fn overdraft(&self) -> usize {
        self.overdraft.load(Relaxed)
    }
    pub(crate) fn cap(&self) -> usize {
        self.cap.load(Relaxed)
    }
    /// Sets the hard limit; see the module documentation for when it takes
    /// effect. Returns whether it was lowered.
    pub(crate) fn set_max(&self, raw: usize) -> bool {
        self.set_limit(&self.max, raw)
    }
    /// Sets the soft limit. Returns whether it was lowered.
    pub(crate) fn set_high(&self, raw: usize) -> bool {
        self.set_limit(&self.high, raw)
    }
    /// Sets how far an infallible charge may be forced past `max` and the cap.
    pub(crate) fn set_overdraft(&self, bytes: usize) {
        self.set_limit(&self.overdraft, bytes);
    }
    /// Sets the cap non-kernel charges may bring this level to. Returns
    /// whether it was lowered.
    pub(crate) fn set_cap(&self, raw: usize) -> bool {
        self.set_limit(&self.cap, raw)
    }

    /// Stores a limit, then publishes the change in `current`'s modification
    /// order, where it takes effect (see the module documentation). Returns
    /// whether the new value is below the old one.
    fn set_limit(&self, field: &AtomicUsize, value: usize) -> bool {
        let old = field.swap(value, Relaxed);
        self.limits_seq.fetch_add(1, Release);
        self.current.fetch_add(0, Release);
        value < old
    }

    fn limits(&self) -> Limits {
        Limits {
            max: self.max.load(Relaxed),
            high: self.high.load(Relaxed),
            overdraft: self.overdraft.load(Relaxed),
            cap: self.cap.load(Relaxed),
        }
    }

    /// Adds one to an event counter (saturating: a counter never wraps).
    pub(crate) fn count(&self, event: Event) {
        let e = &self.events[event as usize];
        let _ = e.fetch_update(Relaxed, Relaxed, |n| n.checked_add(1));
    }

    pub(crate) fn events(&self) -> Events {
        let get = |e: Event| self.events[e as usize].load(Relaxed);
        Events {
            max: get(Event::Max),
            high: get(Event::High),
            oom_kill: get(Event::OomKill),
            forced: get(Event::Forced),
        }
    }

    /// Tentatively adds `amount` (packed as `word`) at this level, checked
    /// against the limits in force at the swap that adds it.
    ///
    /// With a `gate`, a level where the outcome depends on stock held below
    /// it ([`Tight`]) is decided only after the gate has had stock returned:
    /// the gate runs after the value it is about to decide on was read, and
    /// the decision stands only if a read after the gate gives the same
    /// value (see `table_stock.rs` for why that is enough).
    fn try_add(
        &self,
        amount: Amount,
        word: u64,
        mode: Mode,
        mut gate: Option<LevelGate<'_>>,
    ) -> Result<Added, LevelRefusal> {
        let backoff = Backoff::new();
        'limits: loop {
            let seq = self.limits_seq.load(Acquire);
            let limits = self.limits();
            let peak = if gate.is_some() {
                self.peak.load(Relaxed)
            } else {
                0
            };
            let mut cur = self.current.load(Relaxed);
            // The value the gate last cleared, if it still holds.
            let mut cleared = None;
            let added = loop {
                let outcome = Outcome::of(cur, amount, limits, mode);
                if cleared != Some(cur)
                    && let Some(gate) = gate.as_deref_mut()
                    && let Some(tight) = limits.tight(&outcome, peak)
                {
                    match gate(tight) {
                        Gate::Retry => continue 'limits,
                        Gate::GiveUp => cleared = Some(cur),
                        Gate::Proceed => {
                            let now = self.current.load(Relaxed);
                            if now == cur {
                                cleared = Some(cur);
                            } else {
                                cur = now;
                            }
                            continue;
                        }
                    }
                }
                let Outcome { sum, next, forced } = outcome?;
                match self
                    .current
                    .compare_exchange_weak(cur, next, Acquire, Relaxed)
                {
                    Ok(_) => {
                        break Added {
                            new: sum.bytes,
                            forced,
                            above_high: sum.bytes > limits.high,
                        };
                    }
                    Err(actual) => {
                        cur = actual;
                        backoff.spin();
                    }
                }
            };
            if self.limits_seq.load(Relaxed) == seq {
                return Ok(added);
            }
            // A limit changed between reading it and the swap, which may
            // have come after the change took effect: undo, check again.
            self.rollback(word);
        }
    }

    /// Tentatively adds `amount` and as much of `extra` (stock) as keeps
    /// the level within its stock ceiling: its `max`, cap, `high` and peak,
    /// so that nothing consumed from the stock later can pass a limit, pass
    /// `high` or set a new peak unseen. Returns the extra granted (at most
    /// `extra`), or `None`, charging nothing, if `amount` alone does not
    /// fit under the ceiling. Same limit protocol as [`Counter::try_add`];
    /// the swap also releases, so that a charge that reads the new value
    /// sees the refill's busy mark (`table_stock.rs`).
    fn try_add_within(&self, amount: Amount, extra: Amount) -> Option<Amount> {
        let backoff = Backoff::new();
        loop {
            let seq = self.limits_seq.load(Acquire);
            let ceiling = self
                .limits()
                .stock_ceiling()
                .min(self.peak.load(Relaxed))
                .min(MAX_BYTES);
            let mut cur = self.current.load(Relaxed);
            let (granted, word) = loop {
                let base = Amount::from_word(cur).checked_add(amount)?;
                let room = ceiling.checked_sub(base.bytes)?;
                let granted = extra.min(Amount {
                    bytes: room,
                    blocks: MAX_BLOCKS.saturating_sub(base.blocks),
                });
                let next = base.checked_add(granted)?.to_word()?;
                match self
                    .current
                    .compare_exchange_weak(cur, next, AcqRel, Relaxed)
                {
                    Ok(_) => break (granted, next.wrapping_sub(cur)),
                    Err(actual) => {
                        cur = actual;
                        backoff.spin();
                    }
                }
            };
            if self.limits_seq.load(Relaxed) == seq {
                return Some(granted);
            }
            self.rollback(word);
        }
    }

    /// Removes the packed `word` an earlier `try_add` at this level added.
    fn rollback(&self, word: u64) {
        self.current.fetch_sub(word, Relaxed);
    }

    /// Removes `amount` an earlier tentative add at this level included.
    fn give_back(&self, amount: Amount) {
        if let Some(word) = amount.to_word() {
            self.rollback(word);
        }
    }

    /// Removes `amount` charged earlier and returns what is left, or `None`
    /// if less than `amount` is charged (a caller bug), changing nothing.
    pub(crate) fn sub(&self, amount: Amount) -> Option<Amount> {
        let word = amount.to_word()?;
        let prev = self
            .current
            .fetch_update(Relaxed, Relaxed, |cur| {
                Amount::from_word(cur)
                    .covers(amount)
                    .then(|| cur.wrapping_sub(word))
            })
            .ok()?;
        let prev = Amount::from_word(prev);
        Some(Amount {
            bytes: prev.bytes.wrapping_sub(amount.bytes),
            blocks: prev.blocks.wrapping_sub(amount.blocks),
        })
    }

    /// Records a committed charge at this level.
    fn commit(&self, added: Added) {
        if added.new > self.peak.load(Relaxed) {
            self.peak.fetch_max(added.new, Relaxed);
        }
        if added.above_high {
            self.count(Event::High);
        }
        if added.forced {
            self.count(Event::Forced);
        }
    }
}

/// A refusal by one level of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PathRefusal {
    /// Position of the refusing level in the path (0 = leaf).
    pub(crate) depth: usize,
    pub(crate) why: LevelRefusal,
}

/// Charges `amount` at every level of `path` (leaf first) or at none.
///
/// On refusal the levels already charged are rolled back, the refusing
/// level counts an [`Event::Max`] if its own limit refused, and nothing else
/// changes. Paths longer than [`MAX_DEPTH`] are refused at the level past it.
pub(crate) fn charge_path<'a, I>(
    path: I,
    amount: Amount,
    mode: Mode,
) -> Result<Admitted, PathRefusal>
where
    I: Iterator<Item = &'a Counter> + Clone,
{
    charge_path_gated(path, amount, mode, None)
}

/// [`charge_path`], with a `gate` consulted at each level where stock held
/// below it could change the outcome (see [`Counter::try_add`]).
pub(crate) fn charge_path_gated<'a, I>(
    path: I,
    amount: Amount,
    mode: Mode,
    mut gate: Option<PathGate<'_>>,
) -> Result<Admitted, PathRefusal>
where
    I: Iterator<Item = &'a Counter> + Clone,
{
    let Some(word) = amount.to_word() else {
        return Err(PathRefusal {
            depth: 0,
            why: LevelRefusal::Overflow,
        });
    };
    // What each level reached and, as bit masks by depth, which levels were
    // forced and left above `high`.
    let mut reached = [0usize; MAX_DEPTH];
    let (mut forced, mut above_high) = (0u32, 0u32);
    let mut depth = 0usize;
    for counter in path.clone() {
        let attempt = if depth >= MAX_DEPTH {
            Err(LevelRefusal::Overflow)
        } else if let Some(gate) = gate.as_deref_mut() {
            counter.try_add(amount, word, mode, Some(&mut |t| gate(depth, t)))
        } else {
            counter.try_add(amount, word, mode, None)
        };
        match attempt {
            Ok(added) => {
                reached[depth] = added.new;
                forced |= u32::from(added.forced) << depth;
                above_high |= u32::from(added.above_high) << depth;
                depth = depth.wrapping_add(1);
            }
            Err(why) => {
                if why == LevelRefusal::Limit {
                    counter.count(Event::Max);
                }
                for charged in path.take(depth) {
                    charged.rollback(word);
                }
                return Err(PathRefusal { depth, why });
            }
        }
    }
    for (i, counter) in path.take(depth).enumerate() {
        counter.commit(Added {
            new: reached[i],
            forced: forced & (1 << i) != 0,
            above_high: above_high & (1 << i) != 0,
        });
    }
    Ok(Admitted {
        forced: forced != 0,
    })
}

/// Charges `amount` plus the same stock at every level of `path`: at most
/// `extra`, and no more than keeps every level within its stock ceiling
/// (see [`Counter::try_add_within`]). Returns the stock granted, or `None`
/// if `amount` alone would pass some level's ceiling; then nothing is
/// charged and the caller charges through [`charge_path_gated`].
///
/// Nothing is committed: a charge within every ceiling sets no peak, counts
/// no `high` event and is not forced.
pub(crate) fn charge_path_within<'a, I>(path: I, amount: Amount, extra: Amount) -> Option<Amount>
where
    I: Iterator<Item = &'a Counter> + Clone,
{
    let mut granted_at = [Amount::default(); MAX_DEPTH];
    let mut granted = extra;
    let mut depth = 0usize;
    for counter in path.clone() {
        let got = if depth < MAX_DEPTH {
            counter.try_add_within(amount, granted)
        } else {
            None
        };
        let Some(got) = got else {
            for (i, charged) in path.take(depth).enumerate() {
                charged.give_back(amount.checked_add(granted_at[i]).unwrap_or(amount));
            }
            return None;
        };
        granted_at[depth] = got;
        granted = got;
        depth = depth.wrapping_add(1);
    }
    // A level further up granted less: trim the levels below to match.
    for (i, charged) in path.take(depth).enumerate() {
        let excess = granted_at[i].saturating_sub(granted);
        if !excess.is_zero() {
            charged.give_back(excess);
        }
    }
    Some(granted)
}

/// Spin back-off for CAS retries; under `loom` it yields to the model
/// scheduler instead, so every interleaving can be explored.
struct Backoff {
    #[cfg(not(loom))]
    inner: crossbeam_utils::Backoff,
}

impl Backoff {
    fn new() -> Self {
        Self {
            #[cfg(not(loom))]
            inner: crossbeam_utils::Backoff::new(),
        }
    }

    fn spin(&self) {
        #[cfg(not(loom))]
        self.inner.spin();
        #[cfg(loom)]
        loom::hint::spin_loop();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::MAX_BYTES;

    fn path<'a>(levels: &'a [&'a Counter]) -> impl Iterator<Item = &'a Counter> + Clone {
        levels.iter().copied()
    }

    #[test]
    fn refusal_at_each_level_rolls_back_the_levels_below() {
        for refusing in 0..3 {
            let levels = [Counter::new(), Counter::new(), Counter::new()];
            for c in &levels {
                assert!(charge_path(path(&[c]), Amount::bytes(100), Mode::Fallible).is_ok());
            }
            levels[refusing].set_max(150);
            let refs: Vec<&Counter> = levels.iter().collect();
            let err = charge_path(path(&refs), Amount::bytes(60), Mode::Fallible).unwrap_err();
            assert_eq!(
                err,
                PathRefusal {
                    depth: refusing,
                    why: LevelRefusal::Limit
                }
            );
            for (i, c) in levels.iter().enumerate() {
                assert_eq!(c.current(), 100, "level {i} after refusal at {refusing}");
                assert_eq!(c.peak(), 100, "a rolled-back charge raised a peak");
                assert_eq!(c.events().max, u64::from(i == refusing));
            }
        }
    }

    #[test]
    fn infallible_is_forced_within_overdraft_then_refused() {
        let c = Counter::new();
        c.set_max(1000);
        c.set_overdraft(100);
        let p = [&c];
        assert_eq!(
            charge_path(path(&p), Amount::bytes(1000), Mode::Infallible),
            Ok(Admitted { forced: false })
        );
        assert_eq!(
            charge_path(path(&p), Amount::bytes(100), Mode::Infallible),
            Ok(Admitted { forced: true })
        );
        assert_eq!(c.events().forced, 1);
        let err = charge_path(path(&p), Amount::bytes(1), Mode::Infallible).unwrap_err();
        assert_eq!(err.why, LevelRefusal::Limit);
        assert_eq!(c.current(), 1100);
        assert_eq!(
            c.events(),
            Events {
                max: 1,
                high: 0,
                oom_kill: 0,
                forced: 1
            }
        );
    }

    #[test]
    fn kernel_ignores_limits_but_not_overflow() {
        let c = Counter::new();
        c.set_max(0);
        let p = [&c];
        assert!(charge_path(path(&p), Amount::bytes(1 << 20), Mode::Kernel).is_ok());
        let err = charge_path(path(&p), Amount::bytes(usize::MAX), Mode::Kernel).unwrap_err();
        assert_eq!(err.why, LevelRefusal::Overflow);
        assert_eq!(c.current(), 1 << 20);
    }

    #[test]
    fn unlimited_cannot_wrap() {
        let c = Counter::new();
        let p = [&c];
        assert!(charge_path(path(&p), Amount::bytes(MAX_BYTES - 1), Mode::Fallible).is_ok());
        assert!(charge_path(path(&p), Amount::bytes(2), Mode::Infallible).is_err());
        assert_eq!(c.current(), MAX_BYTES - 1);
        assert_eq!(
            c.sub(Amount::bytes(MAX_BYTES)),
            None,
            "underflow must change nothing"
        );
        assert_eq!(c.sub(Amount::block(1)), None, "no block was charged");
        assert_eq!(c.current(), MAX_BYTES - 1);
        assert_eq!(c.sub(Amount::bytes(MAX_BYTES - 1)), Some(Amount::default()));
        assert!(c.is_empty());
    }

    #[test]
    fn cap_refuses_non_kernel_only() {
        let c = Counter::new();
        c.set_cap(100);
        let p = [&c];
        let err = charge_path(path(&p), Amount::bytes(101), Mode::Fallible).unwrap_err();
        assert_eq!(err.why, LevelRefusal::Cap);
        assert_eq!(c.events().max, 0, "the cap is not the account's max");
        assert!(charge_path(path(&p), Amount::bytes(101), Mode::Kernel).is_ok());
    }

    #[test]
    fn high_counts_charges_left_above_it() {
        let c = Counter::new();
        c.set_high(100);
        let p = [&c];
        for _ in 0..3 {
            charge_path(path(&p), Amount::bytes(60), Mode::Fallible).unwrap();
        }
        // 60 (below), 120 (above), 180 (above)
        assert_eq!(c.events().high, 2);
        assert_eq!(c.peak(), 180);
    }
    #[test]
    fn each_limit_change_applies_to_the_next_charge() {
        let c = Counter::new();
        let p = [&c];
        let charge = |bytes, mode| charge_path(path(&p), Amount::bytes(bytes), mode);
        charge(40, Mode::Fallible).unwrap();
        c.set_max(30);
        assert_eq!(c.current(), 40, "lowering max takes nothing back");
        c.set_max(50);
        assert_eq!(
            charge(20, Mode::Fallible).unwrap_err().why,
            LevelRefusal::Limit
        );
        c.set_overdraft(0);
        assert_eq!(
            charge(20, Mode::Infallible).unwrap_err().why,
            LevelRefusal::Limit
        );
        c.set_overdraft(10);
        assert_eq!(charge(20, Mode::Infallible), Ok(Admitted { forced: true }));
        c.set_max(usize::MAX);
        c.set_cap(60);
        assert_eq!(
            charge(1, Mode::Fallible).unwrap_err().why,
            LevelRefusal::Cap
        );
        c.set_cap(usize::MAX);
        c.set_high(60);
        charge(1, Mode::Fallible).unwrap();
        assert_eq!(c.current(), 61);
        assert_eq!(
            c.events(),
            Events {
                max: 2,
                high: 1,
                oom_kill: 0,
                forced: 1
            }
        );
        c.sub(Amount::bytes(61)).unwrap();
        c.reset();
        assert_eq!(
            (c.max(), c.high(), c.cap()),
            (usize::MAX, usize::MAX, usize::MAX)
        );
        assert_eq!(c.overdraft(), DEFAULT_OVERDRAFT);
    }
}

/// `loom` models of the charge protocol: every interleaving (within the
/// preemption bound) of concurrent charges, uncharges and limit changes over
/// a two-level tree. Run with
/// `RUSTFLAGS="--cfg loom" cargo test -p quota --lib --release loom`.
///
/// The limit-change models check the guarantee the way a caller sees it:
/// the setter reads `current` after the setter returns, and if that read
/// does not include a concurrent charge, the charge came after the change
/// and must have been checked against the new limit.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Two leaves under one parent; leaf `a` limited to 100, parent to 150.
    struct Tree {
        a: Counter,
        b: Counter,
        parent: Counter,
    }

    impl Tree {
        fn new() -> Arc<Self> {
            let t = Tree {
                a: Counter::new(),
                b: Counter::new(),
                parent: Counter::new(),
            };
            t.a.set_max(100);
            t.parent.set_max(150);
            Arc::new(t)
        }

        fn path(&self, leaf: &'static str) -> [&Counter; 2] {
            let leaf = if leaf == "a" { &self.a } else { &self.b };
            [leaf, &self.parent]
        }

        /// The invariant every thread checks at every step it takes, while
        /// no limit changes.
        fn check_limits(&self) {
            for c in [&self.a, &self.b, &self.parent] {
                assert!(
                    c.current() <= c.max(),
                    "{} over max {}",
                    c.current(),
                    c.max()
                );
            }
        }
    }

    fn try_charge(
        tree: &Tree,
        leaf: &'static str,
        bytes: usize,
        mode: Mode,
    ) -> Result<Admitted, PathRefusal> {
        charge_path(tree.path(leaf).into_iter(), Amount::bytes(bytes), mode)
    }

    fn charge(tree: &Tree, leaf: &'static str, bytes: usize) -> bool {
        let ok = try_charge(tree, leaf, bytes, Mode::Fallible).is_ok();
        tree.check_limits();
        ok
    }

    fn uncharge(tree: &Tree, leaf: &'static str, bytes: usize) {
        for c in tree.path(leaf) {
            assert!(c.sub(Amount::bytes(bytes)).is_some());
        }
        tree.check_limits();
    }

    fn builder(preemption_bound: usize) -> loom::model::Builder {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(preemption_bound);
        builder
    }

    #[test]
    fn loom_no_level_exceeds_max_and_no_update_is_lost() {
        builder(3).check(|| {
            let tree = Tree::new();
            // Three charges of 60 (two threads and this one) compete for a
            // parent that fits two: the one it refuses must roll back its leaf.
            let threads: Vec<_> = [("a", 60), ("b", 60)]
                .into_iter()
                .map(|(leaf, bytes)| {
                    let tree = Arc::clone(&tree);
                    thread::spawn(move || (leaf, bytes, charge(&tree, leaf, bytes)))
                })
                .collect();
            let mine = ("b", 60, charge(&tree, "b", 60));
            let mut results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            results.push(mine);
            let sum = |leaf: Option<&str>| -> usize {
                results
                    .iter()
                    .filter(|(l, _, ok)| *ok && leaf.is_none_or(|x| x == *l))
                    .map(|(_, b, _)| *b)
                    .sum()
            };
            assert_eq!(
                tree.a.current(),
                sum(Some("a")),
                "leaf a lost or doubled an update"
            );
            assert_eq!(tree.b.current(), sum(Some("b")));
            assert_eq!(
                tree.parent.current(),
                sum(None),
                "parent lost or doubled an update"
            );
            assert_eq!(
                results.iter().filter(|r| r.2).count(),
                2,
                "the parent fits two"
            );
        });
    }

    #[test]
    fn loom_charges_and_uncharges_interleave_exactly() {
        builder(3).check(|| {
            let tree = Tree::new();
            assert!(charge(&tree, "b", 100));
            let t1 = {
                let tree = Arc::clone(&tree);
                thread::spawn(move || uncharge(&tree, "b", 100))
            };
            let t2 = {
                let tree = Arc::clone(&tree);
                thread::spawn(move || charge(&tree, "a", 90))
            };
            t1.join().unwrap();
            let charged = t2.join().unwrap();
            let expect = if charged { 90 } else { 0 };
            assert_eq!(tree.parent.current(), expect);
            assert_eq!(tree.a.current(), expect);
            assert_eq!(tree.b.current(), 0);
        });
    }

    /// The counterexample of the issue: `set_max(50)` returns and its caller
    /// reads `current == 0`; a concurrent charge of 90 must then not commit
    /// unforced. A fallible charge is refused (and its leaf rolled back); an
    /// infallible one within the overdraft is forced and counted.
    #[test]
    fn loom_a_lowered_max_binds_every_charge_after_it() {
        for mode in [Mode::Fallible, Mode::Infallible] {
            builder(3).check(move || {
                let tree = Tree::new();
                tree.parent.set_max(usize::MAX);
                let charger = {
                    let tree = Arc::clone(&tree);
                    thread::spawn(move || try_charge(&tree, "b", 90, mode))
                };
                tree.parent.set_max(50);
                let seen = tree.parent.current();
                let result = charger.join().unwrap();
                if seen == 0 {
                    match (mode, result) {
                        (Mode::Fallible, Err(refusal)) => {
                            assert_eq!(refusal.depth, 1);
                            assert_eq!(refusal.why, LevelRefusal::Limit);
                        }
                        (Mode::Infallible, Ok(admitted)) => {
                            assert!(admitted.forced, "90 committed unforced over a max of 50");
                        }
                        (_, result) => {
                            panic!("{mode:?} charge of 90 after set_max(50) gave {result:?}")
                        }
                    }
                }
                let committed = result.is_ok();
                let expect = if committed { 90 } else { 0 };
                assert_eq!(tree.parent.current(), expect, "parent lost an update");
                assert_eq!(tree.b.current(), expect, "leaf not rolled back");
                let events = tree.parent.events();
                let forced = result.is_ok_and(|a| a.forced);
                assert_eq!(events.forced, u64::from(forced), "forced not counted");
                assert_eq!(events.max, u64::from(!committed), "refusal not counted");
            });
        }
    }

    /// Two charges of 40 race `set_max(50)` on their parent: those that come
    /// after it fit 50 together, so unless both came before it (the setter
    /// then reads 80), at most one commits.
    #[test]
    fn loom_a_lowered_max_binds_racing_charges_together() {
        builder(3).check(|| {
            let tree = Tree::new();
            tree.parent.set_max(usize::MAX);
            let chargers: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|leaf| {
                    let tree = Arc::clone(&tree);
                    thread::spawn(move || try_charge(&tree, leaf, 40, Mode::Fallible).is_ok())
                })
                .collect();
            tree.parent.set_max(50);
            let seen = tree.parent.current();
            let committed: Vec<bool> = chargers.into_iter().map(|t| t.join().unwrap()).collect();
            let bytes = 40 * committed.iter().filter(|c| **c).count();
            assert_eq!(tree.parent.current(), bytes, "parent lost an update");
            assert_eq!(
                tree.a.current() + tree.b.current(),
                bytes,
                "leaf not rolled back"
            );
            if seen < 80 {
                assert!(
                    bytes <= 50,
                    "{bytes} committed over a max of 50 set before one of them"
                );
            }
        });
    }

    /// `set_high(50)` returns and its caller reads `current == 0`: the
    /// concurrent charge of 90 came after it and must count a `high` event.
    #[test]
    fn loom_a_lowered_high_counts_every_charge_after_it() {
        builder(3).check(|| {
            let tree = Tree::new();
            let charger = {
                let tree = Arc::clone(&tree);
                thread::spawn(move || charge(&tree, "b", 90))
            };
            tree.parent.set_high(50);
            let seen = tree.parent.current();
            assert!(charger.join().unwrap(), "nothing refuses 90");
            let high = tree.parent.events().high;
            if seen == 0 {
                assert_eq!(
                    high, 1,
                    "a charge to 90 after set_high(50) counted no event"
                );
            }
            assert!(high <= 1);
            assert_eq!(tree.b.events().high, 0, "the leaf's high is unlimited");
        });
    }

    /// Two charges of 30 race `set_high(50)` on their parent. Unless both
    /// came before it (the setter then reads 60), the last charge to take
    /// the parent to 60 came after it and counts a `high` event. (A charge
    /// that loses a race with the change rolls back and charges again, so
    /// the other may also have reached 60 on its bytes for an instant and
    /// counted: the same caveat as for `peak`.)
    #[test]
    fn loom_a_lowered_high_counts_racing_charges() {
        builder(2).check(|| {
            let tree = Tree::new();
            let chargers: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|leaf| {
                    let tree = Arc::clone(&tree);
                    thread::spawn(move || charge(&tree, leaf, 30))
                })
                .collect();
            tree.parent.set_high(50);
            let seen = tree.parent.current();
            for charger in chargers {
                assert!(charger.join().unwrap(), "nothing refuses 30");
            }
            if seen < 60 {
                let high = tree.parent.events().high;
                assert!(
                    high >= 1,
                    "the charge to 60 after set_high(50) counted no event"
                );
            }
        });
    }

    /// The heap floor is a cap on the root for non-kernel charges. Lowering
    /// it binds every later user charge (refused as `Cap`, leaf rolled
    /// back, no `max` event), while a kernel charge passes it.
    #[test]
    fn loom_the_heap_floor_cap_binds_user_charges_not_kernel_ones() {
        builder(3).check(|| {
            let tree = Tree::new();
            tree.parent.set_max(usize::MAX);
            let user = {
                let tree = Arc::clone(&tree);
                thread::spawn(move || try_charge(&tree, "b", 60, Mode::Fallible))
            };
            tree.parent.set_cap(50);
            let seen = tree.parent.current();
            let kernel = try_charge(&tree, "a", 60, Mode::Kernel);
            let user = user.join().unwrap();
            assert_eq!(
                kernel,
                Ok(Admitted { forced: false }),
                "the cap refused the kernel"
            );
            if seen == 0 {
                assert_eq!(
                    user,
                    Err(PathRefusal {
                        depth: 1,
                        why: LevelRefusal::Cap
                    }),
                    "a user charge passed a cap set before it"
                );
            }
            let user_bytes = if user.is_ok() { 60 } else { 0 };
            assert_eq!(tree.b.current(), user_bytes, "leaf not rolled back");
            assert_eq!(tree.parent.current(), 60 + user_bytes);
            assert_eq!(tree.parent.events().max, 0, "the cap is not the max");
        });
    }
}
