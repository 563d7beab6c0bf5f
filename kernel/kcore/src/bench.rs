//! `bench alloc`'s arguments and arithmetic: the words after `bench` into
//! typed [`Options`], and the figures it prints.
//!
//! Contract: [`parse`] accepts `alloc [--threads N] [--shared|--separate]
//! [--seconds S]` in any order after `alloc`, each option at most once,
//! with `1 <= N <= MAX_THREADS` and `S` (as `sleep` takes it, to the
//! millisecond) between [`MIN_MILLIS`] and [`MAX_MILLIS`]; anything else is
//! a [`BenchError`] naming the word at fault. [`per_second`] and
//! [`CpuSet`]'s rendering never panic and never overflow.

use core::fmt;

use crate::seconds::parse_seconds;

/// Most worker threads one run may start.
pub const MAX_THREADS: usize = 16;
/// Shortest run, in milliseconds.
pub const MIN_MILLIS: u64 = 100;
/// Longest run, in milliseconds.
pub const MAX_MILLIS: u64 = 60_000;
/// Threads when `--threads` is not given.
pub const DEFAULT_THREADS: usize = 1;
/// Run time when `--seconds` is not given, in milliseconds.
pub const DEFAULT_MILLIS: u64 = 3_000;

/// Which accounts the workers charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accounts {
    /// One account for all of them.
    Shared,
    /// One account each.
    Separate,
}

impl Accounts {
    /// How the report names it.
    pub fn describe(self) -> &'static str {
        match self {
            Accounts::Shared => "shared",
            Accounts::Separate => "separate",
        }
    }
}

/// One `bench alloc` run, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Worker threads, `1..=MAX_THREADS`.
    pub threads: usize,
    /// Which accounts they charge.
    pub accounts: Accounts,
    /// How long they run, `MIN_MILLIS..=MAX_MILLIS`.
    pub millis: u64,
}

/// Why the words are not a `bench alloc` run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BenchError<'a> {
    /// No benchmark named (`bench` alone).
    MissingBenchmark,
    /// A benchmark other than `alloc`.
    UnknownBenchmark(&'a str),
    /// An option this benchmark does not have, or a stray word.
    Unexpected(&'a str),
    /// An option given twice (`--shared --separate` included).
    Repeated(&'a str),
    /// An option without its value.
    MissingValue(&'static str),
    /// `--threads` not in `1..=MAX_THREADS`.
    BadThreads(&'a str),
    /// `--seconds` not a number of seconds in range.
    BadSeconds(&'a str),
}

impl fmt::Display for BenchError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::MissingBenchmark => f.write_str("which benchmark? (only 'alloc')"),
            BenchError::UnknownBenchmark(w) => write!(f, "no benchmark '{w}' (only 'alloc')"),
            BenchError::Unexpected(w) => write!(f, "unexpected argument '{w}'"),
            BenchError::Repeated(w) => write!(f, "'{w}': the accounts or count are already set"),
            BenchError::MissingValue(o) => write!(f, "{o} needs a value"),
            BenchError::BadThreads(w) => {
                write!(f, "--threads '{w}': a whole number from 1 to {MAX_THREADS}")
            }
            BenchError::BadSeconds(w) => write!(
                f,
                "--seconds '{w}': seconds from {}.{} to {} (like 2 or 0.5)",
                MIN_MILLIS / 1000,
                MIN_MILLIS % 1000 / 100,
                MAX_MILLIS / 1000
            ),
        }
    }
}

/// Parses the words after `bench` (so `["alloc", "--threads", "2"]`).
///
/// # Errors
/// The [`BenchError`] naming the first word at fault.
pub fn parse<'a>(words: &[&'a str]) -> Result<Options, BenchError<'a>> {
    let (&name, rest) = words.split_first().ok_or(BenchError::MissingBenchmark)?;
    if name != "alloc" {
        return Err(BenchError::UnknownBenchmark(name));
    }
    let (mut threads, mut accounts, mut millis) = (None, None, None);
    let mut rest = rest.iter().copied();
    while let Some(word) = rest.next() {
        match word {
            "--shared" | "--separate" => {
                if accounts.is_some() {
                    return Err(BenchError::Repeated(word));
                }
                accounts = Some(if word == "--shared" {
                    Accounts::Shared
                } else {
                    Accounts::Separate
                });
            }
            "--threads" => {
                let value = rest.next().ok_or(BenchError::MissingValue("--threads"))?;
                if threads.is_some() {
                    return Err(BenchError::Repeated(word));
                }
                threads = Some(parse_threads(value)?);
            }
            "--seconds" => {
                let value = rest.next().ok_or(BenchError::MissingValue("--seconds"))?;
                if millis.is_some() {
                    return Err(BenchError::Repeated(word));
                }
                millis = Some(parse_millis(value)?);
            }
            other => return Err(BenchError::Unexpected(other)),
        }
    }
    Ok(Options {
        threads: threads.unwrap_or(DEFAULT_THREADS),
        accounts: accounts.unwrap_or(Accounts::Shared),
        millis: millis.unwrap_or(DEFAULT_MILLIS),
    })
}

fn parse_threads(word: &str) -> Result<usize, BenchError<'_>> {
    let ok = word.bytes().all(|b| b.is_ascii_digit()) && !word.is_empty();
    match word.parse::<usize>() {
        Ok(n) if ok && (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(BenchError::BadThreads(word)),
    }
}

fn parse_millis(word: &str) -> Result<u64, BenchError<'_>> {
    match parse_seconds(word, 1000) {
        Some(ms) if (MIN_MILLIS..=MAX_MILLIS).contains(&ms) => Ok(ms),
        _ => Err(BenchError::BadSeconds(word)),
    }
}

/// `count` events in `millis` milliseconds as events per second, rounded
/// down; 0 for an empty interval, saturating at `u64::MAX`.
pub fn per_second(count: u64, millis: u64) -> u64 {
    let rate = u128::from(count)
        .saturating_mul(1000)
        .checked_div(u128::from(millis))
        .unwrap_or(0);
    u64::try_from(rate).unwrap_or(u64::MAX)
}

/// The CPUs a thread was seen on, one bit per CPU number (numbers from 32
/// up share bit 31's place: they are counted as "31 or above").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuSet(pub u32);

impl CpuSet {
    /// The set with `cpu` added.
    #[must_use]
    pub fn with(self, cpu: usize) -> Self {
        Self(self.0 | 1u32 << cpu.min(31))
    }

    /// The CPUs in either set.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// How many CPUs it holds.
    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// Whether it holds none.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// `0,1` (or `none`).
impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        for cpu in (0..32u32).filter(|&c| self.0 & (1 << c) != 0) {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{cpu}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use proptest::prelude::*;

    fn words(line: &str) -> alloc::vec::Vec<&str> {
        line.split_whitespace().collect()
    }

    #[test]
    fn defaults() {
        assert_eq!(
            parse(&words("alloc")),
            Ok(Options {
                threads: 1,
                accounts: Accounts::Shared,
                millis: 3000
            })
        );
    }

    #[test]
    fn every_option_in_any_order() {
        let want = Ok(Options {
            threads: 2,
            accounts: Accounts::Separate,
            millis: 500,
        });
        assert_eq!(
            parse(&words("alloc --threads 2 --separate --seconds 0.5")),
            want
        );
        assert_eq!(
            parse(&words("alloc --seconds 0.5 --separate --threads 2")),
            want
        );
        assert_eq!(
            parse(&words("alloc --threads 16 --shared --seconds 60")),
            Ok(Options {
                threads: 16,
                accounts: Accounts::Shared,
                millis: 60_000
            })
        );
    }

    #[test]
    fn bad_words_are_named() {
        use BenchError::*;
        assert_eq!(parse(&[]), Err(MissingBenchmark));
        assert_eq!(parse(&words("free")), Err(UnknownBenchmark("free")));
        assert_eq!(parse(&words("alloc --fast")), Err(Unexpected("--fast")));
        assert_eq!(parse(&words("alloc 2")), Err(Unexpected("2")));
        assert_eq!(
            parse(&words("alloc --threads")),
            Err(MissingValue("--threads"))
        );
        assert_eq!(
            parse(&words("alloc --seconds")),
            Err(MissingValue("--seconds"))
        );
        for bad in [
            "0",
            "17",
            "-1",
            "+2",
            "two",
            "1.5",
            "99999999999999999999999",
        ] {
            let line = format!("alloc --threads {bad}");
            assert_eq!(parse(&words(&line)), Err(BadThreads(bad)), "{bad}");
        }
        for bad in ["0", "0.05", "60.001", "61", "x", "-1", "1e3", "."] {
            let line = format!("alloc --seconds {bad}");
            assert_eq!(parse(&words(&line)), Err(BadSeconds(bad)), "{bad}");
        }
        assert_eq!(
            parse(&words("alloc --shared --separate")),
            Err(Repeated("--separate"))
        );
        assert_eq!(
            parse(&words("alloc --threads 1 --threads 2")),
            Err(Repeated("--threads"))
        );
        assert_eq!(
            parse(&words("alloc --seconds 1 --seconds 2")),
            Err(Repeated("--seconds"))
        );
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(
            format!("{}", BenchError::BadSeconds("0")),
            "--seconds '0': seconds from 0.1 to 60 (like 2 or 0.5)"
        );
        assert_eq!(
            format!("{}", BenchError::BadThreads("0")),
            "--threads '0': a whole number from 1 to 16"
        );
    }

    #[test]
    fn rates() {
        assert_eq!(per_second(0, 1000), 0);
        assert_eq!(per_second(1500, 500), 3000);
        assert_eq!(per_second(7, 0), 0);
        assert_eq!(per_second(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn cpu_sets() {
        assert_eq!(format!("{}", CpuSet::default()), "none");
        let set = CpuSet::default().with(0).with(3).with(0);
        assert_eq!(format!("{set}"), "0,3");
        assert_eq!(set.len(), 2);
        assert_eq!(set.union(CpuSet::default().with(1)).len(), 3);
        assert_eq!(CpuSet::default().with(1000), CpuSet(1 << 31));
    }

    proptest! {
        #[test]
        fn never_panics(line in "(alloc|x)( (--threads|--seconds|--shared|--separate|[0-9.]{1,4}|-x)){0,6}") {
            let _ = parse(&words(&line));
        }

        #[test]
        fn accepted_values_are_in_range(line in "alloc( (--threads|--seconds|[0-9.]{1,6})){0,4}") {
            if let Ok(o) = parse(&words(&line)) {
                prop_assert!((1..=MAX_THREADS).contains(&o.threads));
                prop_assert!((MIN_MILLIS..=MAX_MILLIS).contains(&o.millis));
            }
        }
    }
}
