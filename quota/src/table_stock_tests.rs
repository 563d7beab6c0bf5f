//! Unit tests of the per-CPU stock, one rule each (module docs of
//! `table_stock.rs`). The property test in `tests/model.rs` checks the
//! same rules against a sequential model on random sequences.

#![allow(
    clippy::many_single_char_names,
    reason = "tests name the table `t`, its slots `s` and stocks `k`"
)]

use super::*;
use crate::{Account, AccountFlags, FaultPolicy, Limit, NewAccount, RefusalReason, Slot};

const USER: NewAccount = NewAccount {
    flags: AccountFlags::empty(),
    tag: 0,
};

fn slots(n: usize) -> Vec<Slot> {
    (0..n).map(|_| Slot::new()).collect()
}

fn stocks(n: usize) -> Vec<Stock> {
    (0..n).map(|_| Stock::new()).collect()
}

fn current(t: &AccountTable<'_>, a: &Account<'_>) -> usize {
    t.snapshot(a.id()).unwrap().current
}

/// The raw counter word of every slot: what a charge from stock must not
/// touch.
fn words(t: &AccountTable<'_>) -> Vec<Amount> {
    t.slots.iter().map(|s| s.counter.usage()).collect()
}

/// Raises `a`'s peak (and its ancestors') to `bytes`, leaving it at 0:
/// stock is granted only below a peak.
fn raise_peak(t: &AccountTable<'_>, a: &Account<'_>, bytes: usize) {
    t.charge(a.id(), Amount::bytes(bytes), Mode::Fallible)
        .unwrap();
    t.uncharge(a.id(), Amount::bytes(bytes));
}

fn charge_on(t: &AccountTable<'_>, cpu: usize, a: &Account<'_>, bytes: usize) -> bool {
    t.charge_on(cpu, a.id(), Amount::block(bytes), Mode::Fallible)
        .is_ok()
}

#[test]
fn a_charge_or_free_from_stock_touches_no_counter() {
    let (s, k) = (slots(4), stocks(2));
    let t = AccountTable::with_stocks(&s, &k);
    let a = t.create(None, USER).unwrap();
    raise_peak(&t, &a, 1 << 20);
    assert!(charge_on(&t, 0, &a, 100), "the refill");
    assert!(!t.stocked().is_zero());
    let before = words(&t);
    for _ in 0..10 {
        assert!(charge_on(&t, 0, &a, 100));
    }
    for _ in 0..10 {
        t.uncharge_on(0, a.id(), Amount::block(100));
    }
    assert!(charge_on(&t, 0, &a, 100));
    assert_eq!(words(&t), before, "a shared counter was touched");
    assert_eq!(current(&t, &a), 200);
    assert_eq!(t.snapshot(a.id()).unwrap().blocks, 2);
}

#[test]
fn frees_credit_the_stock_up_to_twice_the_batch() {
    let (s, k) = (slots(4), stocks(1));
    let t = AccountTable::with_stocks(&s, &k);
    t.set_stock_batch(1000);
    let a = t.create(None, USER).unwrap();
    raise_peak(&t, &a, 1 << 20);
    for _ in 0..30 {
        assert!(charge_on(&t, 0, &a, 100));
    }
    for _ in 0..30 {
        t.uncharge_on(0, a.id(), Amount::block(100));
        assert!(t.stocked().bytes <= 2000, "stock past twice the batch");
    }
    assert_eq!(current(&t, &a), 0);
    assert_eq!(t.stocked().bytes, 2000);
}

#[test]
fn reports_subtract_stock_at_every_level() {
    let (s, k) = (slots(6), stocks(3));
    let t = AccountTable::with_stocks(&s, &k);
    let session = t.create(None, USER).unwrap();
    let p1 = t.create(Some(&session), USER).unwrap();
    let p2 = t.create(Some(&session), USER).unwrap();
    raise_peak(&t, &p1, 1 << 20);
    raise_peak(&t, &p2, 1 << 20);
    assert!(charge_on(&t, 0, &p1, 300));
    assert!(charge_on(&t, 1, &p2, 500));
    assert!(charge_on(&t, 2, &p2, 700));
    assert!(t.stocked().bytes > 0);
    assert_eq!(current(&t, &p1), 300);
    assert_eq!(current(&t, &p2), 1200);
    assert_eq!(current(&t, &session), 1500);
    assert_eq!(t.root_current(), 1500);
    assert_eq!(t.root_usage().blocks, 3);
    assert_eq!(t.snapshot(session.id()).unwrap().blocks, 3);
    let stats = t.stats();
    assert_eq!((stats.user_bytes, stats.kernel_bytes), (1500, 0));
    // What is held is charged, not lost: draining changes no report.
    t.drain_stocks();
    assert!(t.stocked().is_zero());
    assert_eq!(
        words(&t)[0],
        Amount {
            bytes: 1500,
            blocks: 3
        }
    );
    assert_eq!(current(&t, &session), 1500);
}

#[test]
fn refusals_come_exactly_at_the_limit_after_draining_other_cpus() {
    let (s, k) = (slots(4), stocks(3));
    let t = AccountTable::with_stocks(&s, &k);
    let session = t.create(None, USER).unwrap();
    let a = t.create(Some(&session), USER).unwrap();
    let b = t.create(Some(&session), USER).unwrap();
    raise_peak(&t, &a, 10_000);
    raise_peak(&t, &b, 10_000);
    t.set_max(session.id(), Limit::Bytes(10_000)).unwrap();
    assert!(charge_on(&t, 0, &a, 1000));
    assert!(charge_on(&t, 1, &b, 1000));
    assert!(t.stocked().bytes > 0);
    // Exactly the room left: admitted, although the counter (with the
    // stock of CPUs 0 and 1) has less room than that.
    let room = 10_000 - 2000;
    assert!(
        t.charge_on(2, b.id(), Amount::bytes(room), Mode::Fallible)
            .is_ok()
    );
    assert!(t.stocked().is_zero(), "CPU 2 drained the others");
    let refused = t
        .charge_on(0, a.id(), Amount::bytes(1), Mode::Fallible)
        .unwrap_err();
    assert_eq!(
        (refused.account, refused.reason),
        (session.id(), RefusalReason::Limit)
    );
    let snap = t.snapshot(session.id()).unwrap();
    assert_eq!((snap.current, snap.peak), (10_000, 10_000));
    assert_eq!(snap.events.max, 1);
}

#[test]
fn an_infallible_charge_is_forced_only_past_max_with_no_stock_left() {
    let (s, k) = (slots(4), stocks(2));
    let t = AccountTable::with_stocks(&s, &k);
    let a = t.create(None, USER).unwrap();
    raise_peak(&t, &a, 1000);
    t.set_max(a.id(), Limit::Bytes(1000)).unwrap();
    assert!(charge_on(&t, 0, &a, 100));
    assert!(t.stocked().bytes > 0);
    let fits = t
        .charge_on(1, a.id(), Amount::bytes(900), Mode::Infallible)
        .unwrap();
    assert!(!fits.forced, "forced because of stock, not usage");
    assert!(!t.kill_pending(a.id()));
    let over = t
        .charge_on(1, a.id(), Amount::bytes(1), Mode::Infallible)
        .unwrap();
    assert!(over.forced);
    assert!(t.kill_pending(a.id()));
    assert_eq!(t.snapshot(a.id()).unwrap().events.forced, 1);
}

#[test]
fn stock_is_granted_only_below_every_peak_limit_and_high() {
    let (s, k) = (slots(4), stocks(2));
    let t = AccountTable::with_stocks(&s, &k);
    t.set_stock_batch(4096);
    let a = t.create(None, USER).unwrap();
    assert!(charge_on(&t, 0, &a, 100));
    assert!(t.stocked().is_zero(), "stock past a fresh account's peak");
    t.uncharge_on(0, a.id(), Amount::block(100));
    // Peak 100: usage 0 leaves 100 - 10 for stock, half of it per CPU.
    assert!(charge_on(&t, 0, &a, 10));
    assert_eq!(t.stocked().bytes, 45);
    t.drain_stocks();
    raise_peak(&t, &a, 1 << 20);
    // A limit: half of a fair share of the room under it.
    t.set_max(a.id(), Limit::Bytes(1010)).unwrap();
    assert!(charge_on(&t, 1, &a, 10)); // usage 20: room 990 after it
    assert_eq!(t.stocked().bytes, 990 / 4);
    t.drain_stocks();
    t.set_max(a.id(), Limit::Unlimited).unwrap();
    t.set_high(a.id(), Limit::Bytes(100)).unwrap();
    assert!(charge_on(&t, 0, &a, 90));
    assert!(t.stocked().is_zero(), "no room under high");
    assert_eq!(t.snapshot(a.id()).unwrap().events.high, 1);
}

#[test]
fn lowering_a_limit_voids_granted_stock_and_raising_keeps_it() {
    let (s, k) = (slots(4), stocks(1));
    let t = AccountTable::with_stocks(&s, &k);
    let a = t.create(None, USER).unwrap();
    raise_peak(&t, &a, 1 << 20);
    t.set_max(a.id(), Limit::Bytes(1 << 30)).unwrap();
    assert!(charge_on(&t, 0, &a, 100));
    assert!(t.stocked().bytes >= 200);
    t.set_max(a.id(), Limit::Bytes(1 << 31)).unwrap();
    let before = words(&t);
    assert!(charge_on(&t, 0, &a, 100), "a raise keeps the stock");
    assert_eq!(words(&t), before, "served from stock");
    t.set_max(a.id(), Limit::Bytes(250)).unwrap();
    assert!(
        !charge_on(&t, 0, &a, 100),
        "300 > 250: stock granted before"
    );
    let snap = t.snapshot(a.id()).unwrap();
    assert_eq!((snap.current, snap.events.max), (200, 1));
    assert!(charge_on(&t, 0, &a, 50), "exactly 250");
    assert_eq!(current(&t, &a), 250);
}

#[test]
fn fault_injection_sees_every_charge() {
    let (s, k) = (slots(4), stocks(1));
    let t = AccountTable::with_stocks(&s, &k);
    let a = t.create(None, USER).unwrap();
    raise_peak(&t, &a, 1 << 20);
    assert!(charge_on(&t, 0, &a, 100));
    assert!(!t.stocked().is_zero());
    t.set_fault_target(a.id(), true).unwrap();
    t.set_fault_policy(FaultPolicy::EveryNth(1));
    let r = t
        .charge_on(0, a.id(), Amount::block(100), Mode::Fallible)
        .unwrap_err();
    assert_eq!(r.reason, RefusalReason::Injected);
    t.set_fault_policy(FaultPolicy::Off);
    assert!(charge_on(&t, 0, &a, 100));
}

#[test]
fn dropping_an_account_returns_its_stock_from_every_cpu() {
    let (s, k) = (slots(4), stocks(3));
    let t = AccountTable::with_stocks(&s, &k);
    let a = t.create(None, USER).unwrap();
    let id = a.id();
    raise_peak(&t, &a, 1 << 20);
    for cpu in 0..3 {
        assert!(charge_on(&t, cpu, &a, 100));
        t.uncharge_on(cpu, id, Amount::block(100));
    }
    assert!(t.stocked().bytes > 0);
    drop(a);
    assert!(t.stocked().is_zero());
    assert!(t.snapshot(id).is_none(), "not released");
    assert_eq!(words(&t)[0], Amount::default());
    // A late free of a dead account's block goes up the tree.
    let b = t.create(None, USER).unwrap();
    raise_peak(&t, &b, 1 << 20);
    assert!(charge_on(&t, 0, &b, 100));
    assert!(charge_on(&t, 0, &b, 100));
    let id = b.id();
    drop(b);
    t.uncharge_on(0, id, Amount::block(100));
    assert!(t.snapshot(id).is_some(), "one block still charged");
    t.uncharge_on(0, id, Amount::block(100));
    assert!(t.snapshot(id).is_none());
    assert!(t.stocked().is_zero());
    assert_eq!(t.stats().accounting_errors, 0);
}

#[test]
fn a_cpu_holds_one_accounts_stock_and_returns_it_for_another() {
    let (s, k) = (slots(4), stocks(1));
    let t = AccountTable::with_stocks(&s, &k);
    let a = t.create(None, USER).unwrap();
    let b = t.create(None, USER).unwrap();
    raise_peak(&t, &a, 1 << 20);
    raise_peak(&t, &b, 1 << 20);
    assert!(charge_on(&t, 0, &a, 100));
    assert!(t.stocked().bytes > 0);
    assert!(charge_on(&t, 0, &b, 100));
    assert_eq!(
        t.slots[a.id().index()].counter.usage(),
        Amount::block(100),
        "a's stock went back"
    );
    // Frees of `a` on that CPU now go up the tree.
    t.uncharge_on(0, a.id(), Amount::block(100));
    assert_eq!(t.slots[a.id().index()].counter.usage(), Amount::default());
}

#[test]
fn batch_zero_or_a_cpu_without_a_slot_charges_through_the_tree() {
    let (s, k) = (slots(4), stocks(1));
    let t = AccountTable::with_stocks(&s, &k);
    let a = t.create(None, USER).unwrap();
    raise_peak(&t, &a, 1 << 20);
    assert!(charge_on(&t, 5, &a, 100), "CPU 5 has no slot");
    assert!(t.stocked().is_zero());
    t.set_stock_batch(0);
    assert!(charge_on(&t, 0, &a, 100));
    assert!(t.stocked().is_zero());
    assert_eq!(
        words(&t)[0],
        Amount {
            bytes: 200,
            blocks: 2
        }
    );
    let plain_slots = slots(2);
    let plain = AccountTable::new(&plain_slots);
    assert_eq!((plain.stock_cpus(), plain.stock_batch()), (0, 0));
    assert!(
        plain
            .charge_on(0, AccountId::ROOT, Amount::block(8), Mode::Kernel)
            .is_ok()
    );
    assert_eq!(plain.root_current(), 8);
}

#[test]
fn kernel_accounts_use_stock_and_stay_exact() {
    let (s, k) = (slots(4), stocks(1));
    let t = AccountTable::with_stocks(&s, &k);
    t.charge(AccountId::ROOT, Amount::bytes(1 << 20), Mode::Kernel)
        .unwrap();
    t.uncharge(AccountId::ROOT, Amount::bytes(1 << 20));
    for _ in 0..100 {
        t.charge_on(0, AccountId::ROOT, Amount::block(64), Mode::Infallible)
            .unwrap();
    }
    assert!(t.stocked().bytes > 0);
    let root = t.snapshot(AccountId::ROOT).unwrap();
    assert_eq!((root.current, root.blocks), (6400, 100));
    assert_eq!(root.events.forced, 0);
    assert_eq!(root.peak, 1 << 20);
}
