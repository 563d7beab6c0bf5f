//! Arithmetic of the out-of-memory report a parent prints when a child is
//! killed for memory.
//!
//! Contract: [`suggested_limit`] is 1.5 × the peak, rounded up to a whole
//! MiB when that is at least 1 MiB and to a whole KiB below, so that it
//! reads as `6M` or `512K` through [`procfs::HumanSize`]. The arithmetic
//! saturates: for peaks near `usize::MAX` the result is `usize::MAX`
//! (which is then not a whole MiB). It never panics.

/// A limit that would have let a process with this `peak` (bytes) through:
/// 1.5 × `peak`, rounded up to a whole MiB (KiB below 1 MiB).
pub fn suggested_limit(peak: usize) -> usize {
    let want = peak.saturating_add(peak / 2);
    let unit = if want >= 1 << 20 { 1 << 20 } else { 1 << 10 };
    want.div_ceil(unit).saturating_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use core::fmt;
    use procfs::HumanSize;
    use proptest::prelude::*;

    const K: usize = 1 << 10;
    const M: usize = 1 << 20;

    #[test]
    fn zero_suggests_zero() {
        assert_eq!(suggested_limit(0), 0);
    }

    #[test]
    fn below_a_mib_rounds_to_kib() {
        assert_eq!(suggested_limit(1), K);
        assert_eq!(suggested_limit(682), K); // 1023
        assert_eq!(suggested_limit(683), K); // 683 + 341 = 1024
        assert_eq!(suggested_limit(684), 2 * K); // 1026
        assert_eq!(suggested_limit(1023), 2 * K); // 1534
        assert_eq!(suggested_limit(K), 2 * K); // 1536
        assert_eq!(suggested_limit(100 * K), 150 * K);
    }

    #[test]
    fn around_one_mib() {
        // 1.5 × peak just below 1 MiB: rounds up in KiB to exactly 1 MiB.
        assert_eq!(suggested_limit(699_050), M); // 1_048_575
        // 1.5 × peak exactly 1 MiB.
        assert_eq!(suggested_limit(699_051), M); // 1_048_576
        assert_eq!(suggested_limit(699_051 + 1), 2 * M);
        // A peak of 1 MiB wants 1.5 MiB: 2 MiB.
        assert_eq!(suggested_limit(M - 1), 2 * M);
        assert_eq!(suggested_limit(M), 2 * M);
        assert_eq!(suggested_limit(2 * M), 3 * M);
        assert_eq!(suggested_limit(4 * M), 6 * M);
        assert_eq!(suggested_limit(4 * M + 1), 7 * M);
    }

    #[test]
    fn saturates_at_the_top() {
        assert_eq!(suggested_limit(usize::MAX), usize::MAX);
        assert_eq!(suggested_limit(usize::MAX / 3 * 2), usize::MAX);
        // 1.5 × peak fits: rounded up to a whole MiB without saturating.
        assert_eq!(suggested_limit(usize::MAX / 2), 3 << 62);
        // The largest whole MiB that can be suggested.
        let top = usize::MAX / M * M;
        assert_eq!(suggested_limit(top / 3 * 2), top);
    }

    /// The kernel's `proc::exit::Size` as it is today, to check that
    /// `procfs::HumanSize` can replace it.
    struct KernelSize(usize);

    impl fmt::Display for KernelSize {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let n = self.0;
            for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
                if n >= 1 << shift && n.is_multiple_of(1 << shift) {
                    return write!(f, "{}{suffix}", n >> shift);
                }
            }
            write!(f, "{n}")
        }
    }

    #[test]
    fn human_size_renders_suggestions_as_the_kernel_does() {
        for (n, text) in [
            (6 * M, "6M"),
            (512 * K, "512K"),
            (100, "100"),
            (0, "0"),
            (3 << 30, "3G"),
            (M + K, "1025K"),
        ] {
            assert_eq!(HumanSize(n).to_string(), text);
            assert_eq!(KernelSize(n).to_string(), text);
        }
    }

    proptest! {
        #[test]
        fn human_size_equals_the_kernels_size(n: usize, shift in 0u32..40) {
            let aligned = n.checked_shl(shift).unwrap_or(n) & !((1usize << shift) - 1);
            for v in [n, aligned, suggested_limit(n)] {
                prop_assert_eq!(HumanSize(v).to_string(), KernelSize(v).to_string());
            }
        }

        #[test]
        fn suggestion_covers_one_and_a_half_peaks(peak in 0usize..usize::MAX / 2) {
            let s = suggested_limit(peak);
            let want = peak + peak / 2;
            prop_assert!(s >= want);
            let unit = if want >= M { M } else { K };
            prop_assert_eq!(s % unit, 0);
            prop_assert!(s - want < unit);
        }
    }
}
