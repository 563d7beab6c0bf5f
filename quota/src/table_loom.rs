//! `loom` models of the account lifecycle: release racing the last free,
//! creation racing release and reusing the slot with the next generation,
//! and a limit set or a kill recorded through an id whose account is being
//! released. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p quota --lib --release loom`.

use loom::thread;

use super::*;
use crate::Events;

const USER: NewAccount = NewAccount {
    flags: AccountFlags::empty(),
    tag: 0,
};

/// A table of the root and one more slot, so a new account can only reuse
/// the slot of the one before it. Leaked: loom threads need `'static`, and
/// each model run leaks a few hundred bytes.
fn table() -> &'static AccountTable<'static> {
    let slots: &'static [Slot] = Box::leak(Box::new([Slot::new(), Slot::new()]));
    Box::leak(Box::new(AccountTable::new(slots)))
}

fn builder(preemption_bound: usize) -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    builder
}

/// Creates an account in `table`'s only slot: now if it is free, or else
/// once `wait` (whatever holds the old account) is done.
fn create_after<T>(
    table: &'static AccountTable<'static>,
    early: Result<Account<'static>, CreateError>,
    wait: thread::JoinHandle<T>,
) -> (Account<'static>, T) {
    let done = wait.join().unwrap();
    let account = match early {
        Ok(account) => account,
        Err(e) => {
            assert_eq!(e, CreateError::TableFull);
            table
                .create(None, USER)
                .expect("the old account is released once nothing holds it")
        }
    };
    (account, done)
}

/// The owner drops its handle while another thread frees the last block,
/// and this thread creates a new account as soon as the slot is free: the
/// old account is released exactly once, and the new one gets the next
/// generation and a fresh counter, whatever the order.
#[test]
fn loom_release_races_creation_and_generation_reuse() {
    builder(3).check(|| {
        let table = table();
        let old_account = table.create(None, USER).unwrap();
        let old = old_account.id();
        table.set_max(old, Limit::Bytes(100)).unwrap();
        table
            .charge(old, Amount::block(10), Mode::Fallible)
            .unwrap();
        let freer = thread::spawn(move || table.uncharge(old, Amount::block(10)));
        drop(old_account);
        let early = table.create(None, USER);
        let (new_account, ()) = create_after(table, early, freer);
        let new = new_account.id();
        assert_eq!(new.index(), old.index());
        assert_eq!(new.generation(), old.generation().wrapping_add(1));
        assert!(
            table.snapshot(old).is_none(),
            "the old id still names an account"
        );
        let snap = table.snapshot(new).unwrap();
        assert_eq!(
            (snap.current, snap.blocks, snap.peak, snap.children),
            (0, 0, 0, 0)
        );
        assert_eq!(snap.max, Limit::Unlimited, "the old account's max survived");
        assert_eq!(snap.events, Events::default());
        let root = table.snapshot(AccountId::ROOT).unwrap();
        assert_eq!((root.current, root.children), (0, 1), "root miscounted");
        let stats = table.stats();
        assert_eq!((stats.live, stats.orphaned), (2, 0));
        assert_eq!(stats.accounting_errors, 0);
        assert_eq!(table.set_max(old, Limit::Bytes(1)), Err(StaleAccount(old)));
        drop(new_account);
        assert_eq!(table.stats().live, 1, "the new account was not released");
    });
}

/// A limit set and a kill recorded through an id while its owner drops it
/// and a new account takes the slot either land on the old account or are
/// refused as stale: they never reach the new account.
#[test]
fn loom_a_limit_or_kill_through_a_stale_id_never_reaches_the_next_account() {
    builder(3).check(|| {
        let table = table();
        let old_account = table.create(None, USER).unwrap();
        let old = old_account.id();
        let setter = thread::spawn(move || {
            let set = table.set_max(old, Limit::Bytes(50));
            let killed = table.record_oom_kill(old);
            (set, killed)
        });
        drop(old_account);
        let early = table.create(None, USER);
        let (new_account, (set, killed)) = create_after(table, early, setter);
        assert!(set.is_ok() || set == Err(StaleAccount(old)));
        assert!(killed.is_ok() || killed == Err(StaleAccount(old)));
        let snap = table.snapshot(new_account.id()).unwrap();
        assert_eq!(
            snap.max,
            Limit::Unlimited,
            "a limit set through a stale id reached the slot's next account"
        );
        assert_eq!(
            snap.events.oom_kill, 0,
            "a kill recorded through a stale id reached the slot's next account"
        );
        drop(new_account);
        assert_eq!(table.stats().live, 1);
    });
}
