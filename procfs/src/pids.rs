//! Process limits: a session's `pids.max`, in cgroup v2's vocabulary.
//!
//! A session may have at most `pids.max` live processes; `pids.current`
//! counts them. Grammar of one `pids.max` token (no whitespace inside):
//!
//! ```text
//! pids_max := "max" | digits        digits: one or more of 0-9 (leading zeros allowed)
//! ```
//!
//! `max` means no limit. A count must be at most [`PidsMax::MAX_COUNT`]
//! (Linux's `PID_MAX_LIMIT`, 2²²): far more processes than this kernel can
//! run, so anything larger is a typo rather than a wish and is refused as
//! [`PidsError::TooLarge`] (write `max` for no limit); overflowing numbers
//! are refused the same way, never wrapped. Size suffixes (`4M`), signs and
//! decimal points are not counts. `0` is a valid limit: the session may
//! start no further process.
//!
//! [`PidsMax`] is valid by construction: it holds a count of at most
//! [`PidsMax::MAX_COUNT`] or "unlimited", and orders unlimited above every
//! count, so "may lower, never raise" is `requested <= current`.

use core::fmt;

/// A session's process limit: a count, or unlimited (`max`).
///
/// Ordered by how much it admits: every count is below
/// [`PidsMax::UNLIMITED`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PidsMax(
    // A count of at most `MAX_COUNT`, or `u32::MAX` for unlimited.
    u32,
);

impl PidsMax {
    /// The largest count a limit may be (2²², Linux's `PID_MAX_LIMIT`).
    pub const MAX_COUNT: u32 = 1 << 22;

    /// No limit (`max`).
    pub const UNLIMITED: Self = Self(u32::MAX);

    /// At most `count` live processes; `None` if `count` is above
    /// [`Self::MAX_COUNT`].
    pub const fn new(count: u32) -> Option<Self> {
        if count <= Self::MAX_COUNT {
            Some(Self(count))
        } else {
            None
        }
    }

    /// `count` processes if `Some`, unlimited if `None`; `None` for a count
    /// above [`Self::MAX_COUNT`].
    pub const fn from_count(count: Option<u32>) -> Option<Self> {
        match count {
            Some(n) => Self::new(n),
            None => Some(Self::UNLIMITED),
        }
    }

    /// Parses one token: `max` or a decimal count.
    ///
    /// # Errors
    /// [`PidsError`] says which rule of the grammar the token breaks.
    pub fn parse(token: &[u8]) -> Result<Self, PidsError> {
        if token == b"max" {
            return Ok(Self::UNLIMITED);
        }
        if token.is_empty() || !token.iter().all(u8::is_ascii_digit) {
            return Err(PidsError::NotACount);
        }
        let mut value: u32 = 0;
        for &d in token {
            let digit = char::from(d).to_digit(10).ok_or(PidsError::NotACount)?;
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(digit))
                .ok_or(PidsError::TooLarge)?;
        }
        Self::new(value).ok_or(PidsError::TooLarge)
    }

    /// The count, or `None` for unlimited.
    pub const fn count(self) -> Option<u32> {
        if self.0 == u32::MAX {
            None
        } else {
            Some(self.0)
        }
    }

    /// Whether a session of `live` processes is within this limit (so a
    /// new process may start if `admits(current + 1)`).
    pub const fn admits(self, live: u32) -> bool {
        live <= self.0
    }

    /// The value for an `AtomicU32`: the count, or `u32::MAX` for unlimited.
    pub const fn to_raw(self) -> u32 {
        self.0
    }

    /// The limit [`Self::to_raw`] gave `raw`; `None` if no limit has it.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        if raw == u32::MAX {
            Some(Self::UNLIMITED)
        } else {
            Self::new(raw)
        }
    }
}

impl fmt::Display for PidsMax {
    /// The count as a plain integer, unlimited as `max`; [`PidsMax::parse`]
    /// reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.count() {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("max"),
        }
    }
}

/// Why a token is not a `pids.max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PidsError {
    /// It is not `max` and not only decimal digits (`-1`, `4M`, `abc`).
    NotACount,
    /// The count is above [`PidsMax::MAX_COUNT`], or overflows.
    TooLarge,
}

impl fmt::Display for PidsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidsError::NotACount => {
                f.write_str("not a process count (write a whole number such as 32, or max)")
            }
            PidsError::TooLarge => write!(
                f,
                "too large, the most is {} (write max for no limit)",
                PidsMax::MAX_COUNT
            ),
        }
    }
}

impl core::error::Error for PidsError {}

/// A session's process count and limit, as `/proc/<pid>/memquota` shows
/// them (`pids.current`, `pids.max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PidsUsage {
    /// Live processes in the session (`pids.current`).
    pub current: u32,
    /// The session's limit (`pids.max`).
    pub max: PidsMax,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> PidsMax {
        PidsMax::parse(s.as_bytes()).unwrap()
    }

    fn err(s: &str) -> PidsError {
        PidsMax::parse(s.as_bytes()).unwrap_err()
    }

    #[test]
    fn counts_and_max_parse() {
        assert_eq!(ok("0").count(), Some(0));
        assert_eq!(ok("32").count(), Some(32));
        assert_eq!(ok("007").count(), Some(7));
        assert_eq!(ok("4194304").count(), Some(PidsMax::MAX_COUNT));
        assert_eq!(ok("max"), PidsMax::UNLIMITED);
        assert_eq!(ok("max").count(), None);
    }

    #[test]
    fn non_counts_are_refused() {
        for s in [
            "", "-1", "+5", "4M", "4k", "1.5", "abc", "MAX", "maximum", " 3", "3\n",
        ] {
            assert_eq!(err(s), PidsError::NotACount, "{s:?}");
        }
    }

    #[test]
    fn counts_above_the_most_or_overflowing_are_too_large() {
        for s in [
            "4194305",
            "4294967295",
            "4294967296",
            "99999999999999999999",
        ] {
            assert_eq!(err(s), PidsError::TooLarge, "{s:?}");
        }
        assert_eq!(PidsMax::new(PidsMax::MAX_COUNT + 1), None);
        assert_eq!(PidsMax::from_count(Some(u32::MAX)), None);
    }

    #[test]
    fn unlimited_is_above_every_count() {
        let most = PidsMax::new(PidsMax::MAX_COUNT).unwrap();
        assert!(PidsMax::new(0).unwrap() < PidsMax::new(1).unwrap());
        assert!(most < PidsMax::UNLIMITED);
        assert!(PidsMax::UNLIMITED.admits(u32::MAX));
        assert!(PidsMax::new(3).unwrap().admits(3));
        assert!(!PidsMax::new(3).unwrap().admits(4));
    }

    #[test]
    fn display_and_raw_read_back() {
        for limit in [
            PidsMax::new(0).unwrap(),
            PidsMax::new(32).unwrap(),
            PidsMax::UNLIMITED,
        ] {
            assert_eq!(PidsMax::parse(limit.to_string().as_bytes()), Ok(limit));
            assert_eq!(PidsMax::from_raw(limit.to_raw()), Some(limit));
        }
        assert_eq!(PidsMax::UNLIMITED.to_string(), "max");
        assert_eq!(PidsMax::from_raw(PidsMax::MAX_COUNT + 1), None);
    }

    #[test]
    fn error_text_is_one_line() {
        assert_eq!(
            PidsError::TooLarge.to_string(),
            "too large, the most is 4194304 (write max for no limit)"
        );
        assert!(!PidsError::NotACount.to_string().contains('\n'));
    }
}
