//! Accounts through the real global allocator (talc in `TrackingAlloc`).

use alloc::string::String;
use alloc::vec::Vec;

use quota::{AccountFlags, Limit, NewAccount};

use super::Test;
use crate::ensure;
use crate::heap::{self, ACCOUNTS};

pub const TESTS: &[Test] = crate::tests![
    allocations_are_charged_exactly,
    fallible_refusal_changes_nothing,
    a_refusal_names_the_level_that_refused
];

/// A fresh account under `users`.
fn user_account() -> Result<quota::Account<'static>, String> {
    let spec = NewAccount {
        flags: AccountFlags::empty(),
        tag: 0,
    };
    ACCOUNTS
        .create(Some(heap::users_account()), spec)
        .map_err(|e| alloc::format!("create: {e:?}"))
}

fn allocations_are_charged_exactly() -> Result<(), String> {
    let before = heap::snapshot().used;
    let account = user_account()?;
    let id = account.id();
    let v: Vec<u8> = heap::charge_to(&account, || Vec::with_capacity(1000));
    let charged = ACCOUNTS.snapshot(id).map_or(0, |a| a.current);
    ensure!(
        charged == 1000 + quota::HEADER_SIZE,
        "charged {charged}, expected 1008"
    );
    drop(v);
    let left = ACCOUNTS.snapshot(id).map_or(usize::MAX, |a| a.current);
    ensure!(left == 0, "{left} bytes left after the free");
    drop(account);
    ensure!(
        ACCOUNTS.snapshot(id).is_none(),
        "the account was not released"
    );
    let after = heap::snapshot().used;
    ensure!(after == before, "heap used {after}, was {before}");
    Ok(())
}

fn fallible_refusal_changes_nothing() -> Result<(), String> {
    let account = user_account()?;
    let _ = ACCOUNTS.set_max(account.id(), Limit::Bytes(4096));
    let mut v: Vec<u8> = Vec::new();
    let refused = heap::charge_to(&account, || heap::fallible(|| v.try_reserve_exact(8192)));
    ensure!(refused.is_err(), "8 KiB fit a 4 KiB limit");
    let snap = ACCOUNTS.snapshot(account.id()).ok_or("account vanished")?;
    ensure!(
        snap.current == 0 && snap.events.max == 1,
        "after refusal: {snap:?}"
    );
    ensure!(
        !ACCOUNTS.kill_pending(account.id()),
        "a fallible refusal flagged a kill"
    );
    Ok(())
}

/// `heap::try_fallible`'s error says which level refused: the session
/// (an account under `users`), or a process's own limit below it.
fn a_refusal_names_the_level_that_refused() -> Result<(), String> {
    let session = user_account()?;
    let process = ACCOUNTS
        .create(
            Some(&session),
            NewAccount {
                flags: AccountFlags::empty(),
                tag: 0,
            },
        )
        .map_err(|e| alloc::format!("create: {e:?}"))?;
    let _ = ACCOUNTS.set_max(session.id(), Limit::Bytes(4096));
    let mut v: Vec<u8> = Vec::new();
    let why = heap::charge_to(&process, || {
        heap::try_fallible(|| v.try_reserve_exact(8192))
    })
    .err()
    .ok_or("8 KiB fit a 4 KiB limit")?;
    let text = alloc::format!("{why}");
    ensure!(
        text == "cannot allocate memory (over the session's limit of 4096 bytes)",
        "{text}"
    );
    let _ = ACCOUNTS.set_max(session.id(), Limit::Unlimited);
    let _ = ACCOUNTS.set_max(process.id(), Limit::Bytes(1024));
    let why = heap::charge_to(&process, || {
        heap::try_fallible(|| v.try_reserve_exact(2048))
    })
    .err()
    .ok_or("2 KiB fit a 1 KiB limit")?;
    let text = alloc::format!("{why}");
    ensure!(
        text == "cannot allocate memory (over the process's limit of 1024 bytes)",
        "{text}"
    );
    // A failure that was no refusal is not given an old one's reason.
    let why = heap::try_fallible(|| Err::<(), ()>(()))
        .err()
        .ok_or("Err is Ok")?;
    let text = alloc::format!("{why}");
    ensure!(text == "cannot allocate memory", "{text}");
    Ok(())
}
