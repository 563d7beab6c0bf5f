//! `loom` models of the per-CPU stock protocol: consume, credit, refill,
//! the gate's drain of other CPUs' slots, the epoch that voids stock when a
//! limit is lowered, and the drain when an account is dropped. Each thread
//! is one CPU with its own stock slot; the tree is the root and two leaves
//! (`a`, `b`), with the heap budget (a cap on the root, which every user
//! charge must fit, like a shared parent's `max`) or a leaf's `max` as the
//! limit. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p quota --lib --release loom`.
//!
//! Every thread checks, after each of its steps, that no counter is above
//! its limit: counters include stock, so this bounds usage too ("no
//! escape"). At the end, reports must be exact: usage as charged, and
//! peaks that include no stock.

use loom::thread;

use crate::{
    Account, AccountFlags, AccountId, AccountTable, Amount, Limit, Mode, NewAccount, Slot, Stock,
};

const USER: NewAccount = NewAccount {
    flags: AccountFlags::empty(),
    tag: 0,
};

/// The heap budget (a cap on the root) in the models that use it.
const CAP: usize = 100;

fn builder(preemption_bound: usize) -> Model {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    Model(builder)
}

/// A loom builder that also reports how many interleavings it explored.
struct Model(loom::model::Builder);

impl Model {
    fn check(self, f: impl Fn() + Sync + Send + 'static) {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        RUNS.store(0, std::sync::atomic::Ordering::Relaxed);
        self.0.check(move || {
            RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            f();
        });
        eprintln!(
            "{} interleavings",
            RUNS.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
}

/// The root and two leaves, with `cpus` stock slots and a batch of 64
/// bytes, and every peak raised to `peak` (stock is granted only below a
/// peak). Leaked: loom threads need `'static`.
struct World {
    table: &'static AccountTable<'static>,
    a: Account<'static>,
    b: Account<'static>,
}

impl World {
    fn new(cpus: usize) -> Self {
        Self::with_peak(cpus, 100)
    }

    fn with_peak(cpus: usize, peak: usize) -> Self {
        let slots: &'static [Slot] = Box::leak(Box::new([Slot::new(), Slot::new(), Slot::new()]));
        let stocks: &'static [Stock] = Box::leak((0..cpus).map(|_| Stock::new()).collect());
        let table: &'static AccountTable<'static> =
            Box::leak(Box::new(AccountTable::with_stocks(slots, stocks)));
        table.set_stock_batch(64);
        let a = table.create(None, USER).unwrap();
        let b = table.create(None, USER).unwrap();
        for id in [a.id(), b.id()] {
            table
                .charge(id, Amount::bytes(peak), Mode::Fallible)
                .unwrap();
            table.uncharge(id, Amount::bytes(peak));
        }
        World { table, a, b }
    }

    /// Every counter within its limit (`max`, and the cap on the root).
    fn check_limits(table: &AccountTable<'_>) {
        for (i, slot) in table.slots.iter().enumerate() {
            let c = &slot.counter;
            let limit = c.max().min(c.cap());
            assert!(
                c.current() <= limit,
                "slot {i} holds {} over its limit {limit}",
                c.current()
            );
        }
    }

    fn usage(&self, account: &Account<'_>) -> usize {
        self.table.snapshot(account.id()).unwrap().current
    }
}

fn charge(table: &AccountTable<'_>, cpu: usize, account: AccountId, bytes: usize) -> bool {
    let ok = table
        .charge_on(cpu, account, Amount::bytes(bytes), Mode::Fallible)
        .is_ok();
    World::check_limits(table);
    ok
}

fn uncharge(table: &AccountTable<'_>, cpu: usize, account: AccountId, bytes: usize) {
    table.uncharge_on(cpu, account, Amount::bytes(bytes));
    World::check_limits(table);
}

/// CPU 0 holds stock for `a` and allocates and frees from it while CPU 1
/// charges `b` an amount that fits the cap only once CPU 0's stock is
/// back: the charge must not be refused (usage never passes the cap), no
/// counter passes the cap, and usage and peaks come out exact.
#[test]
fn loom_stock_on_another_cpu_never_causes_a_refusal() {
    builder(3).check(|| {
        let w = World::new(2);
        let t = w.table;
        t.set_heap_budget(Limit::Bytes(CAP));
        let (a, b) = (w.a.id(), w.b.id());
        assert!(charge(t, 0, a, 10));
        assert!(!t.stocked().is_zero(), "the model needs stock on CPU 0");
        let cpu0 = thread::spawn(move || {
            let ok = charge(t, 0, a, 10);
            if ok {
                uncharge(t, 0, a, 10);
            }
            ok
        });
        let admitted = charge(t, 1, b, 80);
        assert!(cpu0.join().unwrap(), "10 more bytes always fit");
        assert!(admitted, "refused while usage was at most {CAP}");
        assert_eq!((w.usage(&w.a), w.usage(&w.b)), (10, 80));
        assert_eq!(t.root_current(), 90);
        uncharge(t, 1, b, 80);
        uncharge(t, 0, a, 10);
        t.drain_stocks();
        assert_eq!(t.slots[0].counter.current(), 0, "an update was lost");
    });
}

/// CPU 0's charge runs a refill (its stock is empty) while CPU 1 charges
/// an amount that fits only if that refill's stock is not counted: CPU 1
/// waits for the refill in transit, drains it, and is admitted.
#[test]
fn loom_a_refill_in_transit_does_not_cause_a_refusal() {
    builder(3).check(|| {
        let w = World::new(2);
        let t = w.table;
        t.set_heap_budget(Limit::Bytes(CAP));
        let (a, b) = (w.a.id(), w.b.id());
        let cpu0 = thread::spawn(move || charge(t, 0, a, 10));
        let admitted = charge(t, 1, b, 85);
        assert!(cpu0.join().unwrap(), "10 bytes always fit");
        assert!(admitted, "refused while usage was at most 95");
        assert_eq!(t.root_current(), 95);
        let root = t.snapshot(AccountId::ROOT).unwrap();
        assert_eq!(root.peak, 100, "from the set-up");
        uncharge(t, 1, b, 85);
        uncharge(t, 0, a, 10);
        t.drain_stocks();
        assert_eq!(t.slots[0].counter.current(), 0, "an update was lost");
    });
}

/// CPU 0 holds stock for `a` and allocates and frees from it while CPU 1
/// charges `a` past its peak: the new peak is `a`'s usage at that charge,
/// which CPU 0's stock is not part of.
#[test]
fn loom_a_new_peak_includes_no_stock() {
    builder(3).check(|| {
        let w = World::with_peak(2, 40);
        let t = w.table;
        let a = w.a.id();
        assert!(charge(t, 0, a, 5));
        assert!(!t.stocked().is_zero(), "the model needs stock on CPU 0");
        let cpu0 = thread::spawn(move || {
            assert!(charge(t, 0, a, 5));
            uncharge(t, 0, a, 5);
        });
        assert!(charge(t, 1, a, 40));
        cpu0.join().unwrap();
        assert_eq!(w.usage(&w.a), 45);
        let peak = t.snapshot(a).unwrap().peak;
        assert!(
            peak == 45 || peak == 50,
            "a's peak {peak} is not a usage it had"
        );
    });
}

/// `set_max(a, 15)` returns and its caller reads `a`'s usage: if that does
/// not include CPU 0's concurrent charge of 20, the charge came after the
/// change and must have been refused, although CPU 0 held stock for `a`
/// granted under the old limit.
#[test]
fn loom_a_lowered_max_voids_stock_granted_before_it() {
    builder(3).check(|| {
        let w = World::new(1);
        let t = w.table;
        let a = w.a.id();
        t.set_max(a, Limit::Bytes(100)).unwrap();
        assert!(charge(t, 0, a, 10));
        assert!(t.stocked().bytes >= 20, "the model needs stock for 20");
        let cpu0 =
            thread::spawn(move || t.charge_on(0, a, Amount::bytes(20), Mode::Fallible).is_ok());
        t.set_max(a, Limit::Bytes(15)).unwrap();
        let seen = w.usage(&w.a);
        let admitted = cpu0.join().unwrap();
        if seen == 10 {
            assert!(!admitted, "a charge after set_max(15) took a to 30");
        }
        let expect = if admitted { 30 } else { 10 };
        assert_eq!(w.usage(&w.a), expect);
        assert_eq!(t.snapshot(a).unwrap().events.max, u64::from(!admitted));
    });
}

/// CPU 0 frees the last block of `a` (crediting its stock) while `a`'s
/// owner drops it: whichever comes last, the stock goes back and `a` is
/// released, leaving nothing charged anywhere.
#[test]
fn loom_dropping_an_account_returns_its_stock_and_releases_it() {
    builder(3).check(|| {
        let World { table: t, a, b } = World::new(1);
        let id = a.id();
        assert!(charge(t, 0, id, 10));
        let cpu0 = thread::spawn(move || uncharge(t, 0, id, 10));
        drop(a);
        cpu0.join().unwrap();
        assert!(t.snapshot(id).is_none(), "a was not released");
        assert!(t.stocked().is_zero(), "a's stock outlived it");
        assert_eq!(t.slots[0].counter.current(), 0);
        assert_eq!(t.stats().live, 2);
        drop(b);
    });
}

/// CPU 0 holds 55 bytes of stock for `a` (none in use); CPUs 1 and 2
/// (no stock slots) each charge `b` 50, which fits the cap only once that
/// stock is back, and together exactly fill it. Both must be admitted:
/// whichever drains the stock, the other sees it in transit or returned.
#[test]
fn loom_two_charges_racing_for_one_stock_are_both_admitted() {
    builder(3).check(|| {
        let w = World::new(1);
        let t = w.table;
        t.set_heap_budget(Limit::Bytes(CAP));
        let (a, b) = (w.a.id(), w.b.id());
        assert!(charge(t, 0, a, 10));
        uncharge(t, 0, a, 10);
        assert!(
            t.slots[0].counter.current() > CAP - 50,
            "the model needs stock that hides the room"
        );
        let cpu1 = thread::spawn(move || charge(t, 1, b, 50));
        let cpu2 = charge(t, 2, b, 50);
        assert!(
            cpu1.join().unwrap() && cpu2,
            "refused while usage was at most {CAP}"
        );
        assert_eq!(t.root_current(), CAP);
        assert!(t.stocked().is_zero());
    });
}

/// Three CPUs: CPU 0 and CPU 1 each hold stock (for `a` and `b`) and use
/// it, while CPU 2 charges `b` an amount that fits the cap only with both
/// stocks back.
#[test]
fn loom_two_cpus_stock_is_drained_for_a_third() {
    builder(2).check(|| {
        let w = World::new(3);
        let t = w.table;
        t.set_heap_budget(Limit::Bytes(CAP));
        let (a, b) = (w.a.id(), w.b.id());
        assert!(charge(t, 0, a, 10));
        assert!(charge(t, 1, b, 10));
        let cpus: Vec<_> = [(0, a), (1, b)]
            .into_iter()
            .map(|(cpu, id)| thread::spawn(move || charge(t, cpu, id, 5)))
            .collect();
        let admitted = charge(t, 2, b, 70);
        for cpu in cpus {
            assert!(cpu.join().unwrap());
        }
        assert!(admitted, "refused while usage was at most 100");
        assert_eq!(t.root_current(), 100);
        assert_eq!(t.snapshot(AccountId::ROOT).unwrap().peak, 100);
    });
}
