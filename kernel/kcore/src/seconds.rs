//! A number of seconds as `sleep` takes it (`2`, `0.5`, `1.25`, `.5`,
//! `3.`), converted to timer ticks.
//!
//! Contract: the text is ASCII digits with at most one `.` and at most three
//! digits after it (millisecond resolution), and not just `.`; anything
//! else, and anything whose tick count does not fit in a `u64` (computed
//! as `milliseconds × ticks_per_second`, which must not overflow, then
//! divided by 1000), is `None`. The tick count is rounded down, so `0.001`
//! at 100 Hz is 0 ticks. The result is monotone in the value written.

/// Parses `text` as seconds and returns the number of ticks of a timer
/// running at `ticks_per_second`, or `None` if it is not such a number or
/// is too large.
pub fn parse_seconds(text: &str, ticks_per_second: u64) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.len() > 3 {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut millis: u64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    for _ in fraction.len()..3 {
        // At most two digits were read, so this stays below 1000.
        millis = millis.checked_mul(10)?;
    }
    let total_millis = whole.checked_mul(1000)?.checked_add(millis)?;
    Some(total_millis.checked_mul(ticks_per_second)? / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use proptest::prelude::*;

    const HZ: u64 = 100;

    fn ticks(text: &str) -> Option<u64> {
        parse_seconds(text, HZ)
    }

    #[test]
    fn whole_seconds() {
        assert_eq!(ticks("0"), Some(0));
        assert_eq!(ticks("2"), Some(200));
        assert_eq!(ticks("007"), Some(700));
        assert_eq!(ticks("3."), Some(300));
    }

    #[test]
    fn fractions_up_to_milliseconds() {
        assert_eq!(ticks("0.5"), Some(50));
        assert_eq!(ticks(".5"), Some(50));
        assert_eq!(ticks("1.25"), Some(125));
        assert_eq!(ticks("1.234"), Some(123));
        assert_eq!(ticks("0.001"), Some(0));
        assert_eq!(ticks("0.010"), Some(1));
        assert_eq!(parse_seconds("0.001", 1000), Some(1));
        assert_eq!(parse_seconds("1.5", 0), Some(0));
    }

    #[test]
    fn not_numbers() {
        for text in [
            "", ".", "..", "1.2345", "1.2.3", "-1", "+1", " 1", "1 ", "1s", "abc", "1e3", "١",
            "0x10",
        ] {
            assert_eq!(ticks(text), None, "{text:?}");
        }
    }

    #[test]
    fn overflow_is_none() {
        // Too many digits for a u64.
        assert_eq!(ticks("99999999999999999999"), None);
        // Fits in a u64, but not once in milliseconds.
        assert_eq!(ticks(&format!("{}", u64::MAX / 1000 + 1)), None);
        // Fits in milliseconds, but not multiplied by the tick rate.
        assert_eq!(ticks(&format!("{}", u64::MAX / 1000)), None);
        let most = u64::MAX / 1000 / HZ;
        assert_eq!(ticks(&format!("{most}")), Some(most * HZ));
        assert_eq!(
            parse_seconds(&format!("{}", u64::MAX / 1000), 1),
            Some(u64::MAX / 1000)
        );
    }

    fn render(millis: u64) -> alloc::string::String {
        format!("{}.{:03}", millis / 1000, millis % 1000)
    }

    proptest! {
        #[test]
        fn never_panics(text in any::<alloc::string::String>(), hz: u64) {
            let _ = parse_seconds(&text, hz);
        }

        #[test]
        fn digit_strings_never_panic(text in "[0-9.]{0,30}", hz in 0u64..10_000) {
            let _ = parse_seconds(&text, hz);
        }

        #[test]
        fn milliseconds_convert_exactly(millis in 0u64..1 << 40, hz in 1u64..10_000) {
            prop_assert_eq!(
                parse_seconds(&render(millis), hz),
                Some(millis * hz / 1000)
            );
        }

        #[test]
        fn monotone(a in 0u64..1 << 50, b in 0u64..1 << 50, hz in 1u64..10_000) {
            let (lo, hi) = (a.min(b), a.max(b));
            match (parse_seconds(&render(lo), hz), parse_seconds(&render(hi), hz)) {
                (Some(x), Some(y)) => prop_assert!(x <= y),
                // Only the larger one may be too large.
                (Some(_) | None, None) => {}
                (None, Some(_)) => prop_assert!(false, "{lo} refused but {hi} accepted"),
            }
        }
    }
}
