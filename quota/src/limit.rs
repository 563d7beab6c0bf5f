//! Byte limits: a number of bytes, or unlimited.
//!
//! Stored in an `AtomicUsize` as the raw value, with `usize::MAX` meaning
//! unlimited. Because a counter can never exceed `usize::MAX` (charges use
//! `checked_add`), "unlimited" and "`usize::MAX` bytes" admit exactly the same
//! charges, so the encoding loses nothing.

use core::fmt;

/// A hard or soft limit, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// At most this many bytes.
    Bytes(usize),
    /// No limit (`max` in cgroup v2 files).
    Unlimited,
}

impl Limit {
    /// The raw value stored in an account: `usize::MAX` for unlimited.
    #[must_use]
    pub const fn to_raw(self) -> usize {
        match self {
            Limit::Bytes(n) => n,
            Limit::Unlimited => usize::MAX,
        }
    }

    /// The limit a raw stored value stands for.
    #[must_use]
    pub const fn from_raw(raw: usize) -> Self {
        if raw == usize::MAX {
            Limit::Unlimited
        } else {
            Limit::Bytes(raw)
        }
    }

    /// The number of bytes, or `None` for unlimited.
    #[must_use]
    pub const fn bytes(self) -> Option<usize> {
        match Self::from_raw(self.to_raw()) {
            Limit::Bytes(n) => Some(n),
            Limit::Unlimited => None,
        }
    }

    /// Whether `bytes` fits within this limit.
    #[must_use]
    pub const fn admits(self, bytes: usize) -> bool {
        bytes <= self.to_raw()
    }
}

impl fmt::Display for Limit {
    /// Renders bytes as a plain integer and unlimited as `max`, the cgroup v2
    /// convention.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bytes() {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("max"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Limit;

    #[test]
    fn raw_round_trip_and_unlimited_edge() {
        assert_eq!(Limit::from_raw(Limit::Bytes(7).to_raw()), Limit::Bytes(7));
        assert_eq!(Limit::from_raw(Limit::Unlimited.to_raw()), Limit::Unlimited);
        // usize::MAX bytes is the same limit as unlimited.
        assert_eq!(Limit::Bytes(usize::MAX).bytes(), None);
        assert!(Limit::Unlimited.admits(usize::MAX));
        assert!(!Limit::Bytes(10).admits(11));
        assert_eq!(Limit::Unlimited.to_string(), "max");
        assert_eq!(Limit::Bytes(4096).to_string(), "4096");
    }
}
