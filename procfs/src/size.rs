//! Sizes as a user writes them: `4M`, `512k`, `1048576`, `max`.
//!
//! Grammar of one size token (no whitespace inside):
//!
//! ```text
//! size   := "max" | digits [suffix]
//! digits := one or more of 0-9 (leading zeros allowed)
//! suffix := K | k | M | m | G | g        (x 1024, 1024^2, 1024^3)
//! ```
//!
//! `max` means unlimited ([`Limit::Unlimited`]). A number is a byte count
//! and must be at most [`quota::MAX_BYTES`] (1 TiB - 1), the most one
//! account can hold: anything above it would be "unlimited" in effect, and
//! on a kernel whose heap is a few MiB it is far more likely a typo than a
//! wish, so it is refused as [`SizeError::TooLarge`] (write `max` for no
//! limit). Overflowing numbers are refused the same way, never wrapped. A
//! sign, a decimal point, spaces, `B`/`iB` suffixes and `T` are not part of
//! the grammar.
//!
//! [`HumanSize`] renders a byte count in the shortest form this grammar
//! reads back exactly (`4194304` as `4M`, `4097` as `4097`).

use core::fmt;

use quota::{Limit, MAX_BYTES};

/// Why a token is not a size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SizeError {
    /// It does not start with a digit and is not `max` (`abc`, `-1`, `+5`).
    NotANumber,
    /// The digits are followed by something other than one `K`, `M` or `G`
    /// (`4Q`, `4MB`, `1.5G`).
    BadSuffix,
    /// The value is above [`quota::MAX_BYTES`], or overflows.
    TooLarge,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeError::NotANumber => {
                f.write_str("not a number (write e.g. 4M, 512K, 1048576 or max)")
            }
            SizeError::BadSuffix => f.write_str("unknown suffix (use K, M or G)"),
            SizeError::TooLarge => write!(
                f,
                "too large, the most is {MAX_BYTES} bytes (write max for no limit)"
            ),
        }
    }
}

impl core::error::Error for SizeError {}

/// Parses one size token.
///
/// # Errors
/// [`SizeError`] says which rule of the grammar the token breaks.
pub fn parse_size(token: &[u8]) -> Result<Limit, SizeError> {
    if token == b"max" {
        return Ok(Limit::Unlimited);
    }
    let digits_end = token
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(token.len());
    let (digits, suffix) = token.split_at(digits_end);
    if digits.is_empty() {
        return Err(SizeError::NotANumber);
    }
    let shift = match suffix {
        b"" => 0,
        b"K" | b"k" => 10,
        b"M" | b"m" => 20,
        b"G" | b"g" => 30,
        _ => return Err(SizeError::BadSuffix),
    };
    let mut value: u64 = 0;
    for &d in digits {
        let digit = char::from(d).to_digit(10).ok_or(SizeError::NotANumber)?;
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or(SizeError::TooLarge)?;
    }
    let bytes = value
        .checked_mul(1 << shift)
        .and_then(|v| usize::try_from(v).ok())
        .filter(|&v| v <= MAX_BYTES)
        .ok_or(SizeError::TooLarge)?;
    Ok(Limit::Bytes(bytes))
}

/// A byte count displayed in the shortest exact form [`parse_size`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HumanSize(pub usize);

impl fmt::Display for HumanSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (shift, suffix) in [(30, 'G'), (20, 'M'), (10, 'K')] {
            if n != 0 && n.trailing_zeros() >= shift {
                return write!(f, "{}{suffix}", n >> shift);
            }
        }
        write!(f, "{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: usize = 1 << 10;
    const M: usize = 1 << 20;
    const G: usize = 1 << 30;

    fn ok(s: &str) -> Limit {
        parse_size(s.as_bytes()).unwrap()
    }

    fn err(s: &str) -> SizeError {
        parse_size(s.as_bytes()).unwrap_err()
    }

    #[test]
    fn plain_integers_are_bytes() {
        assert_eq!(ok("0"), Limit::Bytes(0));
        assert_eq!(ok("1048576"), Limit::Bytes(M));
        assert_eq!(ok("007"), Limit::Bytes(7));
    }

    #[test]
    fn suffixes_are_powers_of_1024_in_either_case() {
        assert_eq!(ok("512K"), Limit::Bytes(512 * K));
        assert_eq!(ok("512k"), Limit::Bytes(512 * K));
        assert_eq!(ok("4M"), Limit::Bytes(4 * M));
        assert_eq!(ok("4m"), Limit::Bytes(4 * M));
        assert_eq!(ok("2G"), Limit::Bytes(2 * G));
        assert_eq!(ok("2g"), Limit::Bytes(2 * G));
    }

    #[test]
    fn max_is_unlimited_and_lowercase_only() {
        assert_eq!(ok("max"), Limit::Unlimited);
        assert_eq!(err("MAX"), SizeError::NotANumber);
        assert_eq!(err("maximum"), SizeError::NotANumber);
    }

    #[test]
    fn non_numbers_are_refused() {
        for s in ["", "abc", "-1", "+5", "M", " 4M", "high"] {
            assert_eq!(err(s), SizeError::NotANumber, "{s:?}");
        }
    }

    #[test]
    fn unknown_suffixes_are_refused() {
        for s in [
            "4Q", "4MB", "4KiB", "1.5G", "4T", "4MM", "4M ", "4\n", "4\u{e9}",
        ] {
            assert_eq!(err(s), SizeError::BadSuffix, "{s:?}");
        }
        // The suffix is judged before the number, so a long bad token is a
        // suffix error, not an overflow.
        assert_eq!(err("99999999999999999999Q"), SizeError::BadSuffix);
    }

    #[test]
    fn values_up_to_max_bytes_are_accepted() {
        assert_eq!(ok(&MAX_BYTES.to_string()), Limit::Bytes(MAX_BYTES));
        assert_eq!(ok("1023G"), Limit::Bytes(1023 * G));
    }

    #[test]
    fn values_above_max_bytes_or_overflowing_are_too_large() {
        for s in [
            "1024G",
            "2000G",
            "1099511627776",
            "99999999999999999999",
            "20000000000G",
            "18446744073709551615",
            "18446744073709551616",
            "17179869184G",
        ] {
            assert_eq!(err(s), SizeError::TooLarge, "{s:?}");
        }
    }

    #[test]
    fn human_size_uses_the_largest_exact_suffix() {
        assert_eq!(HumanSize(0).to_string(), "0");
        assert_eq!(HumanSize(1).to_string(), "1");
        assert_eq!(HumanSize(K).to_string(), "1K");
        assert_eq!(HumanSize(4 * M).to_string(), "4M");
        assert_eq!(HumanSize(4 * M + K).to_string(), "4097K");
        assert_eq!(HumanSize(3 * G).to_string(), "3G");
        assert_eq!(HumanSize(4097).to_string(), "4097");
    }

    #[test]
    fn error_text_is_one_line() {
        for e in [
            SizeError::NotANumber,
            SizeError::BadSuffix,
            SizeError::TooLarge,
        ] {
            assert!(!e.to_string().contains('\n'));
        }
    }
}
