//! Kernel randomness: a `ChaCha20` keystream keyed from the CPU's `RNDR`.
//!
//! [`init`] seeds the generator with 256 bits of key and 96 of nonce read
//! from `RNDR`. If the CPU has no `RNDR`, or it keeps failing, [`init`]
//! says so and the generator stays unseeded: [`fill`] then refuses, and
//! whatever needs randomness (the network, SSH keys and nonces) must not
//! start. There is no fallback to a constant or a clock.
//!
//! Each [`fill`] is followed by *fast key erasure*: the next 32 bytes of
//! keystream, mixed with a fresh `RNDR` value when one is available,
//! become the new key, so earlier output cannot be recomputed from the
//! state left behind.

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};

use crate::arch::rndr;
use crate::sync::IrqMutex;

static RNG: IrqMutex<Option<ChaCha20>> = IrqMutex::new(None);

/// `RNDR` reads tried before a seed counts as failed.
const RNDR_TRIES: usize = 16;

/// Why no random bytes can be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoEntropy {
    /// The CPU lacks `FEAT_RNG` (QEMU needs `-cpu max`).
    NoRndr,
    /// `RNDR` exists but kept reporting failure.
    RndrFailed,
    /// [`init`] has not seeded the generator.
    Unseeded,
}

impl core::fmt::Display for NoEntropy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            NoEntropy::NoRndr => "the CPU has no RNDR (FEAT_RNG)",
            NoEntropy::RndrFailed => "RNDR keeps failing",
            NoEntropy::Unseeded => "the random generator is not seeded",
        })
    }
}

fn rndr_word() -> Result<u64, NoEntropy> {
    if !rndr::available() {
        return Err(NoEntropy::NoRndr);
    }
    (0..RNDR_TRIES)
        .find_map(|_| rndr::read())
        .ok_or(NoEntropy::RndrFailed)
}

/// Seeds the generator from `RNDR` and makes it `getrandom`'s backend.
///
/// # Errors
/// [`NoEntropy`]: the caller must report it and keep everything that needs
/// randomness stopped.
pub fn init() -> Result<(), NoEntropy> {
    let mut seed = [0u8; 48];
    for chunk in seed.chunks_exact_mut(8) {
        chunk.copy_from_slice(&rndr_word()?.to_le_bytes());
    }
    let key: [u8; 32] = seed[..32].try_into().expect("32 bytes");
    let nonce: [u8; 12] = seed[32..44].try_into().expect("12 bytes");
    *RNG.lock() = Some(ChaCha20::new(&key.into(), &nonce.into()));
    seed.fill(0);
    crate::arch::getrandom_backend::set_source(|buf| fill(buf).is_ok());
    Ok(())
}

/// Fills `buf` with random bytes.
///
/// # Errors
/// [`NoEntropy::Unseeded`] if [`init`] did not succeed.
pub fn fill(buf: &mut [u8]) -> Result<(), NoEntropy> {
    let mut rng = RNG.lock();
    let cipher = rng.as_mut().ok_or(NoEntropy::Unseeded)?;
    buf.fill(0);
    cipher.apply_keystream(buf);
    let mut key = [0u8; 32];
    cipher.apply_keystream(&mut key);
    if let Ok(fresh) = rndr_word() {
        for (k, r) in key.iter_mut().zip(fresh.to_le_bytes()) {
            *k ^= r;
        }
    }
    *cipher = ChaCha20::new(&key.into(), &[0u8; 12].into());
    key.fill(0);
    Ok(())
}

/// A random `u64`.
///
/// # Errors
/// As [`fill`].
pub fn u64() -> Result<u64, NoEntropy> {
    let mut bytes = [0u8; 8];
    fill(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}
