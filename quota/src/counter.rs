//! One level of the account tree, and the charge protocol across levels.
//!
//! A [`Counter`] holds one account's byte counter, limits, peak and events.
//! [`charge_path`] charges a path of counters leaf→root, each level with an
//! atomic compare-and-swap that checks the limit against the exact value it
//! replaces, and rolls back the levels already charged when a level refuses.
//!
//! Guarantees (checked by the `loom` model at the end of this file and by
//! the property test against a sequential model in `tests/model.rs`):
//! - No level's `current` is ever observed above its `max` except through a
//!   forced charge, which is bounded by `max + overdraft` (and counted in
//!   `events.forced` when it commits; a forced level that is then rolled
//!   back was over `max` only for that instant).
//! - A charge is applied at every level of its path or, after rollback, at
//!   none: no update is lost or counted twice. An uncharge of more than is
//!   charged changes nothing, not even for an instant.
//! - `peak` is the highest `current` a committed charge produced. Run
//!   sequentially, a charge that is rolled back never raises a peak; under
//!   concurrency a committed charge's value may include another charge's
//!   bytes that are rolled back an instant later (the peak was real, if
//!   brief).
//! - All arithmetic is checked: a charge past [`MAX_BYTES`](crate::MAX_BYTES) bytes or
//!   [`MAX_BLOCKS`](crate::MAX_BLOCKS) blocks is refused, even in an
//!   unlimited account and even for kernel accounts; nothing wraps.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use crate::usage::Amount;

/// Deepest account tree a charge walks; deeper accounts cannot be created.
pub const MAX_DEPTH: usize = 16;

/// Bytes a non-kernel account may be forced over its limit, by default.
pub const DEFAULT_OVERDRAFT: usize = 64 * 1024;

/// How a refused charge is handled (rule 6 of `ARCHITECTURE.md`).
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
    /// The extra cap given for this level (the heap floor, at the root).
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

/// One account's counter, limits, peak and events.
pub(crate) struct Counter {
    /// The packed [`Amount`] charged: bytes and blocks.
    current: CachePadded<AtomicU64>,
    peak: AtomicUsize,
    max: AtomicUsize,
    high: AtomicUsize,
    overdraft: AtomicUsize,
    events: [AtomicU64; Event::COUNT],
}

macro_rules! counter_new {
    () => {
        Counter {
            current: CachePadded::new(AtomicU64::new(0)),
            peak: AtomicUsize::new(0),
            max: AtomicUsize::new(usize::MAX),
            high: AtomicUsize::new(usize::MAX),
            overdraft: AtomicUsize::new(DEFAULT_OVERDRAFT),
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

    /// Resets every field to [`Counter::new`]'s values; `current` must be 0.
    pub(crate) fn reset(&self) {
        debug_assert!(self.is_empty());
        self.peak.store(0, Relaxed);
        self.max.store(usize::MAX, Relaxed);
        self.high.store(usize::MAX, Relaxed);
        self.overdraft.store(DEFAULT_OVERDRAFT, Relaxed);
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
    pub(crate) fn set_max(&self, raw: usize) {
        self.max.store(raw, Relaxed);
    }
    pub(crate) fn set_high(&self, raw: usize) {
        self.high.store(raw, Relaxed);
    }
    pub(crate) fn set_overdraft(&self, bytes: usize) {
        self.overdraft.store(bytes, Relaxed);
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

    /// Tries to add `amount` at this level. `cap` is an extra limit for
    /// non-kernel charges (the heap floor at the root, `usize::MAX` below).
    /// Returns whether the charge was forced and the bytes it produced.
    fn try_add(
        &self,
        amount: Amount,
        mode: Mode,
        cap: usize,
    ) -> Result<(bool, usize), LevelRefusal> {
        let max = self.max.load(Relaxed);
        let overdraft = self.overdraft.load(Relaxed);
        let backoff = Backoff::new();
        let mut cur = self.current.load(Relaxed);
        loop {
            let sum = Amount::from_word(cur)
                .checked_add(amount)
                .ok_or(LevelRefusal::Overflow)?;
            let word = sum.to_word().ok_or(LevelRefusal::Overflow)?;
            let new = sum.bytes;
            let forced = match mode {
                Mode::Kernel => false,
                _ if new <= max && new <= cap => false,
                Mode::Infallible
                    if new <= max.saturating_add(overdraft)
                        && new <= cap.saturating_add(overdraft) =>
                {
                    true
                }
                _ if new > max => return Err(LevelRefusal::Limit),
                _ => return Err(LevelRefusal::Cap),
            };
            match self
                .current
                .compare_exchange_weak(cur, word, Relaxed, Relaxed)
            {
                Ok(_) => return Ok((forced, new)),
                Err(actual) => {
                    cur = actual;
                    backoff.spin();
                }
            }
        }
    }

    /// Removes the packed `word` an earlier `try_add` at this level added.
    fn rollback(&self, word: u64) {
        self.current.fetch_sub(word, Relaxed);
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

    /// Records a committed charge that took this level to `new`.
    fn commit(&self, new: usize, forced: bool) {
        if new > self.peak.load(Relaxed) {
            self.peak.fetch_max(new, Relaxed);
        }
        if new > self.high.load(Relaxed) {
            self.count(Event::High);
        }
        if forced {
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
/// Each item is a level's counter and its extra cap. On refusal the levels
/// already charged are rolled back, the refusing level counts an
/// [`Event::Max`] if its own limit refused, and nothing else changes.
/// Paths longer than [`MAX_DEPTH`] are refused at the level past it.
pub(crate) fn charge_path<'a, I>(
    path: I,
    amount: Amount,
    mode: Mode,
) -> Result<Admitted, PathRefusal>
where
    I: Iterator<Item = (&'a Counter, usize)> + Clone,
{
    let Some(word) = amount.to_word() else {
        return Err(PathRefusal {
            depth: 0,
            why: LevelRefusal::Overflow,
        });
    };
    let mut reached = [0usize; MAX_DEPTH];
    let mut forced_levels = 0u32;
    let mut depth = 0usize;
    for (counter, cap) in path.clone() {
        let attempt = if depth < MAX_DEPTH {
            counter.try_add(amount, mode, cap)
        } else {
            Err(LevelRefusal::Overflow)
        };
        match attempt {
            Ok((forced, new)) => {
                reached[depth] = new;
                if forced {
                    forced_levels |= 1 << depth;
                }
                depth = depth.wrapping_add(1);
            }
            Err(why) => {
                if why == LevelRefusal::Limit {
                    counter.count(Event::Max);
                }
                for (charged, _) in path.take(depth) {
                    charged.rollback(word);
                }
                return Err(PathRefusal { depth, why });
            }
        }
    }
    for (i, (counter, _)) in path.take(depth).enumerate() {
        counter.commit(reached[i], forced_levels & (1 << i) != 0);
    }
    Ok(Admitted {
        forced: forced_levels != 0,
    })
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

    fn path<'a>(levels: &'a [&'a Counter]) -> impl Iterator<Item = (&'a Counter, usize)> + Clone {
        levels.iter().map(|c| (*c, usize::MAX))
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
        let p = [(&c, 100usize)];
        let err = charge_path(p.iter().copied(), Amount::bytes(101), Mode::Fallible).unwrap_err();
        assert_eq!(err.why, LevelRefusal::Cap);
        assert_eq!(c.events().max, 0, "the cap is not the account's max");
        assert!(charge_path(p.iter().copied(), Amount::bytes(101), Mode::Kernel).is_ok());
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
}

/// `loom` model of the charge/rollback protocol: every interleaving of
/// concurrent charges and uncharges over a two-level tree. Run with
/// `RUSTFLAGS="--cfg loom" cargo test -p quota --lib --release loom`.
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

        fn path(&self, leaf: &'static str) -> [(&Counter, usize); 2] {
            let leaf = if leaf == "a" { &self.a } else { &self.b };
            [(leaf, usize::MAX), (&self.parent, usize::MAX)]
        }

        /// The invariant every thread checks at every step it takes.
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

    fn charge(tree: &Tree, leaf: &'static str, bytes: usize) -> bool {
        let ok = charge_path(
            tree.path(leaf).into_iter(),
            Amount::bytes(bytes),
            Mode::Fallible,
        )
        .is_ok();
        tree.check_limits();
        ok
    }

    fn uncharge(tree: &Tree, leaf: &'static str, bytes: usize) {
        for (c, _) in tree.path(leaf) {
            assert!(c.sub(Amount::bytes(bytes)).is_some());
        }
        tree.check_limits();
    }

    #[test]
    fn loom_no_level_exceeds_max_and_no_update_is_lost() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
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
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
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
}
