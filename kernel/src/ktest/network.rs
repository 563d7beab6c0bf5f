//! Randomness and the network, from inside: `RNDR`, the CSPRNG over it,
//! the virtio-net card and its address, and a listener whose account cannot pay.

use alloc::string::String;

use super::Test;
use crate::ensure;
use crate::heap::{self, ACCOUNTS};
use crate::net::tcp::{Buffers, NetError, listen};

pub const TESTS: &[Test] = crate::tests![
    rndr_gives_different_values,
    rng_fills_differ,
    getrandom_is_served_by_the_kernel_rng,
    the_virtio_net_card_was_found,
    an_account_that_cannot_pay_refuses_the_connection
];

fn rndr_gives_different_values() -> Result<(), String> {
    ensure!(
        crate::arch::rndr::available(),
        "no RNDR: QEMU must run with -cpu max"
    );
    let a = crate::arch::rndr::read();
    let b = crate::arch::rndr::read();
    ensure!(a.is_some() && b.is_some(), "RNDR failed: {a:?} {b:?}");
    ensure!(a != b, "RNDR gave {a:?} twice");
    Ok(())
}

fn rng_fills_differ() -> Result<(), String> {
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    crate::rng::fill(&mut a).map_err(|e| alloc::format!("{e}"))?;
    crate::rng::fill(&mut b).map_err(|e| alloc::format!("{e}"))?;
    ensure!(a != b, "two fills gave the same bytes");
    ensure!(a.iter().any(|&x| x != 0), "a fill gave zeros");
    Ok(())
}

/// What sunset (through `getrandom` 0.4's custom backend) will call.
fn getrandom_is_served_by_the_kernel_rng() -> Result<(), String> {
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    getrandom::fill(&mut a).map_err(|e| alloc::format!("getrandom: {e}"))?;
    getrandom::fill(&mut b).map_err(|e| alloc::format!("getrandom: {e}"))?;
    ensure!(a != b && a != [0; 32], "getrandom gave {a:?} then {b:?}");
    Ok(())
}

fn the_virtio_net_card_was_found() -> Result<(), String> {
    crate::net::wait_up().map_err(|e| alloc::format!("waiting for an address: {e:?}"))?;
    let card = crate::net::card();
    ensure!(card.is_some(), "no virtio-net card was started");
    let card = card.expect("checked");
    ensure!(card.intid >= 32, "interrupt {} is not an SPI", card.intid);
    ensure!(card.mac != [0; 6], "MAC address is zero");
    Ok(())
}

fn an_account_that_cannot_pay_refuses_the_connection() -> Result<(), String> {
    let account = heap::new_user_account(16 << 10).map_err(|e| alloc::format!("create: {e:?}"))?;
    let mut listener = listen(2200, 1).map_err(|e| alloc::format!("listen: {e}"))?;
    let buffers = Buffers {
        rx: 64 << 10,
        tx: 64 << 10,
    };
    let refused = listener.accept(&account, buffers);
    ensure!(
        matches!(refused, Err(NetError::NoMemory)),
        "accept over the limit gave {:?}",
        refused.map(|_| ())
    );
    let left = ACCOUNTS
        .snapshot(account.id())
        .map_or(usize::MAX, |a| a.current);
    ensure!(left == 0, "{left} bytes left charged after the refusal");
    Ok(())
}
