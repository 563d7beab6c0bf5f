//! Unit tests of the account table: lifecycle, tree charging and policy.

#![allow(
    clippy::many_single_char_names,
    reason = "tests name the table `t` and its slots `s`"
)]

use super::*;
use crate::{Amount, Events, MAX_DEPTH};

fn slots(n: usize) -> Vec<Slot> {
    (0..n).map(|_| Slot::new()).collect()
}

const USER: NewAccount = NewAccount {
    flags: AccountFlags::empty(),
    tag: 0,
};

fn kernel(tag: u64) -> NewAccount {
    NewAccount {
        flags: AccountFlags::KERNEL,
        tag,
    }
}

#[test]
fn rollback_on_refusal_at_each_level_of_root_session_process() {
    let s = slots(8);
    let t = AccountTable::new(&s);
    let users = t.create(None, USER).unwrap();
    let session = t.create(Some(&users), USER).unwrap();
    let process = t.create(Some(&session), USER).unwrap();
    let levels = [process.id(), session.id(), users.id(), AccountId::ROOT];
    t.charge(process.id(), Amount::bytes(100), Mode::Fallible)
        .unwrap();
    for (depth, &refusing) in levels.iter().enumerate() {
        if refusing == AccountId::ROOT {
            t.set_heap_budget(Limit::Bytes(150));
        } else {
            t.set_max(refusing, Limit::Bytes(150)).unwrap();
        }
        let err = t
            .charge(process.id(), Amount::bytes(60), Mode::Fallible)
            .unwrap_err();
        let reason = if refusing == AccountId::ROOT {
            RefusalReason::HeapFloor
        } else {
            RefusalReason::Limit
        };
        assert_eq!(
            err,
            Refusal {
                account: refusing,
                reason
            },
            "depth {depth}"
        );
        for &id in &levels {
            let snap = t.snapshot(id).unwrap();
            assert_eq!(
                snap.current, 100,
                "level {id:?} after refusal at depth {depth}"
            );
            assert_eq!(snap.peak, 100);
        }
        if refusing == AccountId::ROOT {
            t.set_heap_budget(Limit::Unlimited);
        } else {
            t.set_max(refusing, Limit::Unlimited).unwrap();
        }
    }
    assert_eq!(t.stats().floor_refusals, 1);
    assert_eq!(t.snapshot(session.id()).unwrap().events.max, 1);
    t.uncharge(process.id(), Amount::bytes(100));
    assert_eq!(t.root_current(), 0);
}

#[test]
fn slot_is_released_only_when_dropped_and_uncharged() {
    let s = slots(4);
    let t = AccountTable::new(&s);
    let a = t.create(None, USER).unwrap();
    let id = a.id();
    t.charge(id, Amount::bytes(64), Mode::Fallible).unwrap();
    drop(a);
    let snap = t.snapshot(id).expect("an orphan with bytes stays");
    assert!(snap.orphaned);
    assert_eq!(t.stats().orphaned, 1);
    // A dead account cannot be charged by exact charges or configured.
    assert_eq!(
        t.charge_exact(id, Amount::bytes(1), Mode::Fallible)
            .unwrap_err()
            .reason,
        RefusalReason::Stale
    );
    assert_eq!(t.set_max(id, Limit::Bytes(1)), Err(StaleAccount(id)));
    // The late free is credited to it, and releases it.
    t.uncharge(id, Amount::bytes(64));
    assert!(t.snapshot(id).is_none());
    assert_eq!(t.root_current(), 0);
    assert_eq!(t.snapshot(AccountId::ROOT).unwrap().children, 0);
    // The slot is reused with a new generation; the old id stays dead.
    let b = t.create(None, USER).unwrap();
    assert_eq!(b.id().index(), id.index());
    assert_ne!(b.id().generation(), id.generation());
    assert!(t.snapshot(id).is_none());
    assert_eq!(t.stats().accounting_errors, 0);
}

#[test]
fn a_parent_outlives_its_children() {
    let s = slots(4);
    let t = AccountTable::new(&s);
    let session = t.create(None, USER).unwrap();
    let process = t.create(Some(&session), USER).unwrap();
    let (sid, pid) = (session.id(), process.id());
    drop(session);
    assert!(t.snapshot(sid).unwrap().orphaned, "a child pins its parent");
    t.charge(pid, Amount::bytes(10), Mode::Fallible).unwrap();
    drop(process);
    assert!(t.snapshot(sid).is_some() && t.snapshot(pid).is_some());
    t.uncharge(pid, Amount::bytes(10));
    assert!(
        t.snapshot(pid).is_none() && t.snapshot(sid).is_none(),
        "both released"
    );
    assert_eq!(t.stats().live, 1, "only the root is left");
}

#[test]
fn a_pin_holds_off_release_and_reuse() {
    let s = slots(2);
    let t = AccountTable::new(&s);
    let a = t.create(None, USER).unwrap();
    let id = a.id();
    let pin = t.pin(id, false).unwrap();
    drop(a);
    assert!(t.snapshot(id).unwrap().orphaned, "released under a pin");
    assert_eq!(t.create(None, USER).unwrap_err(), CreateError::TableFull);
    assert_eq!(
        t.set_max(id, Limit::Bytes(1)),
        Err(StaleAccount(id)),
        "an orphan takes no limits"
    );
    t.record_oom_kill(id).unwrap();
    drop(pin);
    assert!(t.snapshot(id).is_none(), "the last unpin releases");
    let b = t.create(None, USER).unwrap();
    assert_eq!(b.id().index(), id.index());
    assert_eq!(t.set_max(id, Limit::Bytes(1)), Err(StaleAccount(id)));
    assert_eq!(t.record_oom_kill(id), Err(StaleAccount(id)));
    let snap = t.snapshot(b.id()).unwrap();
    assert_eq!(snap.max, Limit::Unlimited);
    assert_eq!(snap.events, Events::default());
    assert_eq!(t.stats().heap_budget, Limit::Unlimited);
    t.set_heap_budget(Limit::Bytes(10));
    assert_eq!(t.stats().heap_budget, Limit::Bytes(10));
}

#[test]
fn dead_ids_charge_the_root_and_bad_uncharges_change_nothing() {
    let s = slots(4);
    let t = AccountTable::new(&s);
    let a = t.create(None, USER).unwrap();
    let id = a.id();
    drop(a);
    let c = t.charge(id, Amount::bytes(32), Mode::Fallible).unwrap();
    assert_eq!(c.account, AccountId::ROOT);
    assert_eq!(t.stats().misattributed, 1);
    t.uncharge(id, Amount::bytes(32)); // stale id
    t.uncharge(AccountId::ROOT, Amount::bytes(33)); // more than charged
    assert_eq!(t.root_current(), 32);
    assert_eq!(t.stats().accounting_errors, 2);
    t.uncharge(AccountId::ROOT, Amount::bytes(32));
    assert_eq!(t.root_current(), 0);
}

#[test]
fn kernel_accounts_are_never_refused_by_quota() {
    let s = slots(4);
    let t = AccountTable::new(&s);
    let k = t.create(None, kernel(1)).unwrap();
    t.set_max(k.id(), Limit::Bytes(0)).unwrap();
    t.set_heap_budget(Limit::Bytes(0));
    let c = t
        .charge(k.id(), Amount::bytes(4096), Mode::Fallible)
        .unwrap();
    assert!(!c.forced);
    assert!(!t.kill_pending(k.id()));
    assert_eq!(
        t.charge(k.id(), Amount::bytes(usize::MAX), Mode::Infallible)
            .unwrap_err()
            .reason,
        RefusalReason::Overflow
    );
    t.uncharge(k.id(), Amount::bytes(4096));
}

#[test]
fn forced_charge_flags_the_charged_account_for_killing() {
    let s = slots(4);
    let t = AccountTable::new(&s);
    let session = t.create(None, USER).unwrap();
    let process = t.create(Some(&session), USER).unwrap();
    t.set_max(session.id(), Limit::Bytes(1000)).unwrap();
    t.set_overdraft(session.id(), 500).unwrap();
    t.charge(process.id(), Amount::bytes(1000), Mode::Infallible)
        .unwrap();
    assert!(!t.kill_pending(process.id()));
    let c = t
        .charge(process.id(), Amount::bytes(400), Mode::Infallible)
        .unwrap();
    assert!(c.forced);
    assert!(t.kill_pending(process.id()));
    assert!(
        !t.kill_pending(session.id()),
        "the level over its limit is not the one killed"
    );
    assert_eq!(
        t.snapshot(session.id()).unwrap().events,
        Events {
            max: 0,
            high: 0,
            oom_kill: 0,
            forced: 1
        }
    );
    // Beyond the overdraft even an infallible charge is refused.
    let r = t
        .charge(process.id(), Amount::bytes(200), Mode::Infallible)
        .unwrap_err();
    assert_eq!(
        r,
        Refusal {
            account: session.id(),
            reason: RefusalReason::Limit
        }
    );
    t.record_oom_kill(session.id()).unwrap();
    assert_eq!(t.snapshot(session.id()).unwrap().events.oom_kill, 1);
    t.uncharge(process.id(), Amount::bytes(1400));
}

#[test]
fn max_below_current_is_accepted_and_refuses_until_usage_falls() {
    let s = slots(4);
    let t = AccountTable::new(&s);
    let a = t.create(None, USER).unwrap();
    t.charge(a.id(), Amount::bytes(500), Mode::Fallible)
        .unwrap();
    t.set_max(a.id(), Limit::Bytes(100)).unwrap();
    assert!(t.charge(a.id(), Amount::bytes(1), Mode::Fallible).is_err());
    t.uncharge(a.id(), Amount::bytes(450));
    assert!(t.charge(a.id(), Amount::bytes(50), Mode::Fallible).is_ok());
    t.uncharge(a.id(), Amount::bytes(100));
}

#[test]
fn fault_injection_hits_targets_and_their_descendants_only() {
    let s = slots(8);
    let t = AccountTable::new(&s);
    let target = t.create(None, USER).unwrap();
    let child = t.create(Some(&target), USER).unwrap();
    let other = t.create(None, USER).unwrap();
    let k = t.create(None, kernel(0)).unwrap();
    t.set_fault_target(target.id(), true).unwrap();
    t.set_fault_target(k.id(), true).unwrap();
    t.set_fault_policy(FaultPolicy::EveryNth(1));
    let r = t
        .charge(child.id(), Amount::bytes(8), Mode::Fallible)
        .unwrap_err();
    assert_eq!(r.reason, RefusalReason::Injected);
    assert!(
        t.charge(other.id(), Amount::bytes(8), Mode::Fallible)
            .is_ok()
    );
    assert!(
        t.charge(k.id(), Amount::bytes(8), Mode::Fallible).is_ok(),
        "kernel accounts are never injected"
    );
    // Infallible: forced, counted, and flagged, but within limits.
    let c = t
        .charge(child.id(), Amount::bytes(8), Mode::Infallible)
        .unwrap();
    assert!(c.forced && t.kill_pending(child.id()));
    assert_eq!(t.snapshot(child.id()).unwrap().events.forced, 1);
    assert_eq!(t.stats().faults_injected, 2);
    t.set_fault_policy(FaultPolicy::Off);
    assert!(
        t.charge(child.id(), Amount::bytes(8), Mode::Fallible)
            .is_ok()
    );
    for (id, n) in [(child.id(), 16), (other.id(), 8), (k.id(), 8)] {
        t.uncharge(id, Amount::bytes(n));
    }
    assert_eq!(t.root_current(), 0);
}

#[test]
fn full_table_and_deep_trees_are_refused() {
    let s = slots(3);
    let t = AccountTable::new(&s);
    let a = t.create(None, USER).unwrap();
    let _b = t.create(None, USER).unwrap();
    assert_eq!(t.create(None, USER).unwrap_err(), CreateError::TableFull);
    drop(a);
    assert!(
        t.create(None, USER).is_ok(),
        "the released slot is free again"
    );

    let s = slots(MAX_DEPTH + 2);
    let t = AccountTable::new(&s);
    let mut chain: Vec<Account<'_>> = Vec::new();
    loop {
        match t.create(chain.last(), USER) {
            Ok(a) => chain.push(a),
            Err(e) => {
                assert_eq!(e, CreateError::TooDeep);
                break;
            }
        }
    }
    assert_eq!(
        chain.len(),
        MAX_DEPTH - 1,
        "root plus {} levels",
        MAX_DEPTH - 1
    );
    t.charge(chain.last().unwrap().id(), Amount::bytes(1), Mode::Fallible)
        .unwrap();
    assert!(
        chain
            .iter()
            .all(|a| t.snapshot(a.id()).unwrap().current == 1)
    );
    t.uncharge(chain.last().unwrap().id(), Amount::bytes(1));
    while let Some(a) = chain.pop() {
        drop(a);
    }
    assert_eq!(t.stats().live, 1);
}

#[test]
fn foreign_parents_are_refused() {
    let (s1, s2) = (slots(2), slots(2));
    let (t1, t2) = (AccountTable::new(&s1), AccountTable::new(&s2));
    let a = t1.create(None, USER).unwrap();
    assert_eq!(
        t2.create(Some(&a), USER).unwrap_err(),
        CreateError::ForeignParent
    );
}

#[test]
fn stats_split_kernel_and_user_bytes() {
    let s = slots(8);
    let t = AccountTable::new(&s);
    let k = t.create(None, kernel(0)).unwrap();
    let users = t.create(None, USER).unwrap();
    let session = t
        .create(
            Some(&users),
            NewAccount {
                flags: AccountFlags::empty(),
                tag: 7,
            },
        )
        .unwrap();
    t.charge(k.id(), Amount::bytes(1000), Mode::Fallible)
        .unwrap();
    t.charge(session.id(), Amount::bytes(300), Mode::Fallible)
        .unwrap();
    t.charge(AccountId::ROOT, Amount::bytes(5), Mode::Fallible)
        .unwrap();
    let stats = t.stats();
    assert_eq!((stats.kernel_bytes, stats.user_bytes), (1005, 300));
    assert_eq!(stats.live, 4);
    let snaps: Vec<AccountSnapshot> = t.snapshots().collect();
    assert_eq!(snaps.len(), 4);
    let s7 = snaps.iter().find(|s| s.tag == 7).unwrap();
    assert_eq!(
        (s7.parent, s7.depth, s7.current),
        (Some(users.id()), 2, 300)
    );
    t.uncharge(k.id(), Amount::bytes(1000));
    t.uncharge(session.id(), Amount::bytes(300));
    t.uncharge(AccountId::ROOT, Amount::bytes(5));
}

#[test]
fn kernel_accounts_may_not_hide_under_limited_ones() {
    let s = slots(4);
    let t = AccountTable::new(&s);
    let session = t.create(None, USER).unwrap();
    t.set_max(session.id(), Limit::Bytes(1000)).unwrap();
    assert_eq!(
        t.create(Some(&session), kernel(0)).unwrap_err(),
        CreateError::KernelUnderUser
    );
    let k = t.create(None, kernel(0)).unwrap();
    assert!(
        t.create(Some(&k), kernel(1)).is_ok(),
        "kernel under kernel is fine"
    );
}

#[test]
fn a_tag_can_be_replaced_and_a_released_id_is_refused() {
    let s = slots(4);
    let t = AccountTable::new(&s);
    let a = t
        .create(
            None,
            NewAccount {
                flags: AccountFlags::empty(),
                tag: 7,
            },
        )
        .unwrap();
    assert_eq!(t.snapshot(a.id()).unwrap().tag, 7);
    t.set_tag(a.id(), 9).unwrap();
    assert_eq!(t.snapshot(a.id()).unwrap().tag, 9);
    let id = a.id();
    drop(a);
    assert!(t.set_tag(id, 1).is_err());
}
