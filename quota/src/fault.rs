//! Fault injection for charges, in the spirit of Linux's failslab.
//!
//! A policy refuses every Nth charge, or each charge with a seeded
//! probability, for accounts flagged
//! [`FAULT_TARGET`](crate::AccountFlags::FAULT_TARGET) (or under one). An
//! injected fault is handled exactly like a limit refusal: a fallible charge
//! fails and an infallible one is forced and flags its account kill-pending.
//! Kernel accounts are never injected. The pseudo-random sequence is a
//! deterministic function of the seed, so a failing run can be replayed.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Which charges to refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPolicy {
    /// Inject nothing.
    Off,
    /// Refuse the Nth, 2Nth, 3Nth... targeted charge (`N` ≥ 1).
    EveryNth(u64),
    /// Refuse each targeted charge with probability `per_million` / 10⁶.
    Probability {
        /// Chance of refusal in millionths (values above 10⁶ mean always).
        per_million: u32,
        /// Seed of the pseudo-random sequence.
        seed: u64,
    },
}

const OFF: u32 = 0;
const EVERY_NTH: u32 = 1;
const PROBABILITY: u32 = 2;

pub(crate) struct FaultInjector {
    kind: AtomicU32,
    every: AtomicU64,
    per_million: AtomicU32,
    seed: AtomicU64,
    /// Targeted charges seen since the policy was set.
    seen: AtomicU64,
    /// Faults injected since the table was created.
    injected: AtomicU64,
}

impl FaultInjector {
    pub(crate) const fn new() -> Self {
        Self {
            kind: AtomicU32::new(OFF),
            every: AtomicU64::new(1),
            per_million: AtomicU32::new(0),
            seed: AtomicU64::new(0),
            seen: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        }
    }

    /// Installs `policy`, restarting its sequence.
    pub(crate) fn set(&self, policy: FaultPolicy) {
        self.kind.store(OFF, Relaxed);
        self.seen.store(0, Relaxed);
        match policy {
            FaultPolicy::Off => {}
            FaultPolicy::EveryNth(n) => {
                self.every.store(n.max(1), Relaxed);
                self.kind.store(EVERY_NTH, Relaxed);
            }
            FaultPolicy::Probability { per_million, seed } => {
                self.per_million.store(per_million, Relaxed);
                self.seed.store(seed, Relaxed);
                self.kind.store(PROBABILITY, Relaxed);
            }
        }
    }

    pub(crate) fn policy(&self) -> FaultPolicy {
        match self.kind.load(Relaxed) {
            EVERY_NTH => FaultPolicy::EveryNth(self.every.load(Relaxed)),
            PROBABILITY => FaultPolicy::Probability {
                per_million: self.per_million.load(Relaxed),
                seed: self.seed.load(Relaxed),
            },
            _ => FaultPolicy::Off,
        }
    }

    /// Whether any policy is active: the cheap check on the charge path.
    pub(crate) fn armed(&self) -> bool {
        self.kind.load(Relaxed) != OFF
    }

    pub(crate) fn injected(&self) -> u64 {
        self.injected.load(Relaxed)
    }

    /// Decides the fate of one targeted charge: `true` injects a fault.
    pub(crate) fn decide(&self) -> bool {
        let seen = self.seen.fetch_add(1, Relaxed).wrapping_add(1);
        let fail = match self.kind.load(Relaxed) {
            EVERY_NTH => seen.is_multiple_of(self.every.load(Relaxed).max(1)),
            PROBABILITY => {
                let draw = splitmix64(self.seed.load(Relaxed).wrapping_add(seen)) % 1_000_000;
                draw < u64::from(self.per_million.load(Relaxed))
            }
            _ => false,
        };
        if fail {
            let _ = self
                .injected
                .fetch_update(Relaxed, Relaxed, |n| n.checked_add(1));
        }
        fail
    }
}

/// The `SplitMix64` finaliser: the `seen`-th output of a seeded sequence.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_fails_exactly_the_multiples() {
        let f = FaultInjector::new();
        f.set(FaultPolicy::EveryNth(3));
        let fails: Vec<bool> = (0..9).map(|_| f.decide()).collect();
        assert_eq!(
            fails,
            [false, false, true, false, false, true, false, false, true]
        );
        assert_eq!(f.injected(), 3);
        assert_eq!(f.policy(), FaultPolicy::EveryNth(3));
    }

    #[test]
    fn probability_is_seeded_and_roughly_right() {
        let f = FaultInjector::new();
        let policy = FaultPolicy::Probability {
            per_million: 250_000,
            seed: 42,
        };
        f.set(policy);
        let a: Vec<bool> = (0..4000).map(|_| f.decide()).collect();
        f.set(policy);
        let b: Vec<bool> = (0..4000).map(|_| f.decide()).collect();
        assert_eq!(a, b, "same seed, same sequence");
        let hits = a.iter().filter(|x| **x).count();
        assert!((800..1200).contains(&hits), "{hits} of 4000 at p = 0.25");
    }

    #[test]
    fn off_never_fails() {
        let f = FaultInjector::new();
        assert!(!f.armed());
        assert!((0..100).all(|_| !f.decide()));
    }
}
