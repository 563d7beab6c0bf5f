//! Boot parameters, from `/chosen/bootargs` (QEMU `-append`).
//!
//! `heap=SIZE` (default: a quarter of RAM), `floor=SIZE` (bytes the heap
//! keeps for the kernel; default an eighth of the heap), `emergency=SIZE`
//! (the reserve handed back for teardown; default 256K), `session_max=SIZE`
//! (each session's hard limit; default 8M; `max` for none),
//! `operator_reserve=SIZE` (bytes above the floor that only the console
//! operator's commands may use; default a 32nd of the heap),
//! `pids_max=N` (each session's process limit; default 64; `max` for none),
//! `tmp_size=SIZE` (most bytes of file data in `/tmp`; default a quarter of
//! the heap), `failslab=off|every:N|random:PPM:SEED` (fault injection for
//! the sessions' charges: every Nth, or each with probability PPM per
//! million from SEED; default off), `pressure_warn=PERCENT` and
//! `pressure_critical=PERCENT` (the shares of the heap budget the
//! sessions may use before the console warns and before new SSH sessions
//! are refused; defaults 75 and 85, 1 to 100, an optional `%`; see
//! [`crate::pressure`]). Sizes are [`procfs::parse_size`]'s grammar (K/M/G
//! suffixes).
//!
//! Contract: [`parse`] is pure and allocates nothing (the kernel calls it
//! before its heap exists). Words are whitespace-separated; a bad word never
//! fails the boot: it is reported to the caller as a [`Warning`], in the
//! order met, and the default is kept. The last valid value of a key wins.
//! No consistency between values (floor below heap, ...) is checked here,
//! except that the warning share must be below the critical one: if the
//! last values given are not, both defaults are kept, with a warning
//! reported after those of the words.

use core::fmt;

use procfs::SizeError;
use quota::{FaultPolicy, Limit};

use crate::pressure::{self, Levels, Percent};

/// The emergency reserve when `emergency=` is not given: 256 KiB.
pub const DEFAULT_EMERGENCY: usize = 256 << 10;

/// A session's hard limit when `session_max=` is not given: 8 MiB.
pub const DEFAULT_SESSION_MAX: Limit = Limit::Bytes(8 << 20);

/// A session's process limit when `pids_max=` is not given.
pub const DEFAULT_PIDS_MAX: u32 = 64;

/// The parameters in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Heap bytes.
    pub heap: usize,
    /// Heap floor.
    pub floor: usize,
    /// Emergency reserve.
    pub emergency: usize,
    /// Default hard limit of a session.
    pub session_max: Limit,
    /// Bytes above the floor kept for the console operator's commands.
    pub operator_reserve: usize,
    /// Default process limit of a session (`None`: unlimited).
    pub pids_max: Option<u32>,
    /// Most bytes of file data `/tmp` holds.
    pub tmp_size: usize,
    /// Fault injection for the sessions' charges.
    pub failslab: FaultPolicy,
    /// The memory-pressure shares of the heap budget.
    pub pressure: Levels,
}

/// A count that may be unlimited, shown as the number or `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count(pub Option<u32>);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("max"),
        }
    }
}

/// A word of the boot arguments that was not used. Its `Display` is the
/// whole line the kernel prints, `cmdline: ` prefix included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warning<'a> {
    /// A word without `=`.
    NotKeyValue {
        /// The word.
        word: &'a str,
    },
    /// `max` given for a key that needs a number of bytes.
    Unlimited {
        /// `heap`, `floor` or `emergency`.
        key: &'a str,
    },
    /// A known key whose value is not a size.
    BadValue {
        /// The key.
        key: &'a str,
        /// The value as written.
        value: &'a str,
        /// Why it is not a size.
        error: SizeError,
    },
    /// A key this kernel does not know.
    UnknownKey {
        /// The key.
        key: &'a str,
    },
    /// `pids_max=` that is neither a number nor `max`.
    BadCount {
        /// The value as written.
        value: &'a str,
    },
    /// `failslab=` that is not `off`, `every:N` (N ≥ 1) or
    /// `random:PPM:SEED`.
    BadFailslab {
        /// The value as written.
        value: &'a str,
    },
    /// `pressure_warn=` or `pressure_critical=` that is not a percentage
    /// from 1 to 100.
    BadPercent {
        /// The key.
        key: &'a str,
        /// The value as written.
        value: &'a str,
    },
    /// The warning share is not below the critical one: both defaults are
    /// kept.
    PressureOrder {
        /// The warning share given.
        warn: Percent,
        /// The critical share given.
        critical: Percent,
    },
}

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::NotKeyValue { word } => {
                write!(f, "cmdline: ignoring '{word}': expected key=value")
            }
            Warning::Unlimited { key } => {
                write!(f, "cmdline: {key} cannot be unlimited; keeping the default")
            }
            Warning::BadValue { key, value, error } => {
                write!(f, "cmdline: {key}={value}: {error}; keeping the default")
            }
            Warning::UnknownKey { key } => write!(f, "cmdline: unknown parameter '{key}' ignored"),
            Warning::BadCount { value } => write!(
                f,
                "cmdline: pids_max={value}: not a number of processes or max; keeping the default"
            ),
            Warning::BadFailslab { value } => write!(
                f,
                "cmdline: failslab={value}: expected off, every:N or random:PPM:SEED; keeping it off"
            ),
            Warning::BadPercent { key, value } => write!(
                f,
                "cmdline: {key}={value}: not a percentage from 1 to 100; keeping the default"
            ),
            Warning::PressureOrder { warn, critical } => write!(
                f,
                "cmdline: pressure_warn={warn} is not below pressure_critical={critical}; \
                 keeping {} and {}",
                pressure::DEFAULT_WARN,
                pressure::DEFAULT_CRITICAL
            ),
        }
    }
}

/// Parses `bootargs` against RAM of `ram_bytes`, calling `report` for each
/// word not used (in order); for those the defaults are kept.
pub fn parse<'a>(
    bootargs: &'a str,
    ram_bytes: usize,
    mut report: impl FnMut(Warning<'a>),
) -> Params {
    let mut heap = None;
    let mut floor = None;
    let mut emergency = DEFAULT_EMERGENCY;
    let mut session_max = DEFAULT_SESSION_MAX;
    let mut operator_reserve = None;
    let mut tmp_size = None;
    let mut pids_max = Some(DEFAULT_PIDS_MAX);
    let mut failslab = FaultPolicy::Off;
    let mut warn = pressure::DEFAULT_WARN;
    let mut critical = pressure::DEFAULT_CRITICAL;
    for word in bootargs.split_ascii_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            report(Warning::NotKeyValue { word });
            continue;
        };
        match key {
            "pids_max" => match parse_count(value) {
                Ok(count) => pids_max = count,
                Err(()) => report(Warning::BadCount { value }),
            },
            "failslab" => match parse_failslab(value) {
                Some(policy) => failslab = policy,
                None => report(Warning::BadFailslab { value }),
            },
            "pressure_warn" | "pressure_critical" => match Percent::parse(value) {
                Some(p) if key == "pressure_warn" => warn = p,
                Some(p) => critical = p,
                None => report(Warning::BadPercent { key, value }),
            },
            _ => {}
        }
        if matches!(
            key,
            "pids_max" | "failslab" | "pressure_warn" | "pressure_critical"
        ) {
            continue;
        }
        let size = procfs::parse_size(value.as_bytes());
        match (key, size) {
            ("heap", Ok(Limit::Bytes(n))) => heap = Some(n),
            ("floor", Ok(Limit::Bytes(n))) => floor = Some(n),
            ("emergency", Ok(Limit::Bytes(n))) => emergency = n,
            ("operator_reserve", Ok(Limit::Bytes(n))) => operator_reserve = Some(n),
            ("tmp_size", Ok(Limit::Bytes(n))) => tmp_size = Some(n),
            ("session_max", Ok(limit)) => session_max = limit,
            (
                "heap" | "floor" | "emergency" | "operator_reserve" | "tmp_size",
                Ok(Limit::Unlimited),
            ) => {
                report(Warning::Unlimited { key });
            }
            (
                "heap" | "floor" | "emergency" | "operator_reserve" | "tmp_size" | "session_max",
                Err(error),
            ) => {
                report(Warning::BadValue { key, value, error });
            }
            _ => report(Warning::UnknownKey { key }),
        }
    }
    let pressure = Levels::new(warn, critical).unwrap_or_else(|| {
        report(Warning::PressureOrder { warn, critical });
        Levels::DEFAULT
    });
    let heap = heap.unwrap_or(ram_bytes / 4);
    let floor = floor.unwrap_or(heap / 8);
    Params {
        heap,
        floor,
        emergency,
        session_max,
        operator_reserve: operator_reserve.unwrap_or(heap / 32),
        pids_max,
        tmp_size: tmp_size.unwrap_or(heap / 4),
        failslab,
        pressure,
    }
}

/// `N` or `max` (`Ok(None)`); `Err` for anything else.
fn parse_count(value: &str) -> Result<Option<u32>, ()> {
    if value == "max" {
        return Ok(None);
    }
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    value.parse().map(Some).map_err(|_| ())
}

/// `off`, `every:N` (N ≥ 1) or `random:PPM:SEED`.
fn parse_failslab(value: &str) -> Option<FaultPolicy> {
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let mut parts = value.split(':');
    let policy = match parts.next()? {
        "off" => FaultPolicy::Off,
        "every" => FaultPolicy::EveryNth(number(parts.next()?).filter(|n| *n >= 1)?),
        "random" => FaultPolicy::Probability {
            per_million: u32::try_from(number(parts.next()?)?)
                .ok()
                .filter(|p| *p <= 1_000_000)?,
            seed: number(parts.next()?)?,
        },
        _ => return None,
    };
    parts.next().is_none().then_some(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    const RAM: usize = 128 << 20;

    fn run(bootargs: &str) -> (Params, Vec<Warning<'_>>) {
        let mut warnings = Vec::new();
        let params = parse(bootargs, RAM, |w| warnings.push(w));
        (params, warnings)
    }

    #[test]
    fn defaults() {
        let (params, warnings) = run("");
        assert_eq!(
            params,
            Params {
                heap: 32 << 20,
                floor: 4 << 20,
                emergency: 256 << 10,
                session_max: Limit::Bytes(8 << 20),
                operator_reserve: 1 << 20,
                pids_max: Some(64),
                tmp_size: 8 << 20,
                failslab: FaultPolicy::Off,
                pressure: Levels::DEFAULT,
            }
        );
        assert!(warnings.is_empty());
        assert_eq!(
            (
                params.pressure.warn().get(),
                params.pressure.critical().get()
            ),
            (75, 85)
        );
    }

    #[test]
    fn every_key_is_read() {
        let (params, warnings) = run(
            "heap=64M floor=2M emergency=512K session_max=max operator_reserve=3M \
             pids_max=max tmp_size=1M failslab=random:10000:42 pressure_warn=30 \
             pressure_critical=40%",
        );
        assert_eq!(
            params,
            Params {
                heap: 64 << 20,
                floor: 2 << 20,
                emergency: 512 << 10,
                session_max: Limit::Unlimited,
                operator_reserve: 3 << 20,
                pids_max: None,
                tmp_size: 1 << 20,
                failslab: FaultPolicy::Probability {
                    per_million: 10_000,
                    seed: 42
                },
                pressure: Levels::new(percent(30), percent(40)).unwrap(),
            }
        );
        assert!(warnings.is_empty());
        assert_eq!(run(" session_max=1G ").0.session_max, Limit::Bytes(1 << 30));
    }

    #[test]
    fn process_limits_and_fault_injection() {
        assert_eq!(run("pids_max=7").0.pids_max, Some(7));
        assert_eq!(
            run("failslab=every:100").0.failslab,
            FaultPolicy::EveryNth(100)
        );
        assert_eq!(
            run("failslab=every:5 failslab=off").0.failslab,
            FaultPolicy::Off
        );
        for bad in [
            "every:0",
            "every:",
            "every:x",
            "random:2000000:1",
            "random:5",
            "random:5:1:2",
            "sometimes",
            "",
        ] {
            let word = alloc::format!("failslab={bad}");
            let (params, warnings) = run(&word);
            assert_eq!(params.failslab, FaultPolicy::Off, "{bad}");
            assert_eq!(warnings, vec![Warning::BadFailslab { value: bad }], "{bad}");
        }
        for bad in ["-1", "", "4M", "99999999999", "1.5"] {
            let word = alloc::format!("pids_max={bad}");
            let (params, warnings) = run(&word);
            assert_eq!(params.pids_max, Some(DEFAULT_PIDS_MAX), "{bad}");
            assert_eq!(warnings, vec![Warning::BadCount { value: bad }], "{bad}");
        }
        assert_eq!(
            run("tmp_size=max").1,
            vec![Warning::Unlimited { key: "tmp_size" }]
        );
    }

    fn percent(n: u8) -> Percent {
        Percent::new(n).unwrap()
    }

    #[test]
    fn pressure_levels() {
        let levels = |args| run(args).0.pressure;
        assert_eq!(
            levels("pressure_warn=50"),
            Levels::new(percent(50), percent(85)).unwrap()
        );
        assert_eq!(
            levels("pressure_critical=100 pressure_warn=1%"),
            Levels::new(percent(1), percent(100)).unwrap()
        );
        // The last values decide: 90 then 80 is below 85.
        assert_eq!(
            levels("pressure_warn=90 pressure_warn=80"),
            Levels::new(percent(80), percent(85)).unwrap()
        );
        for bad in ["0", "101", "", "x", "50.5", "-1", "max", "4M"] {
            for key in ["pressure_warn", "pressure_critical"] {
                let word = alloc::format!("{key}={bad}");
                let (params, warnings) = run(&word);
                assert_eq!(params.pressure, Levels::DEFAULT, "{word}");
                assert_eq!(
                    warnings,
                    vec![Warning::BadPercent { key, value: bad }],
                    "{word}"
                );
            }
        }
        assert_eq!(
            run("pressure_warn=abc").1[0].to_string(),
            "cmdline: pressure_warn=abc: not a percentage from 1 to 100; keeping the default"
        );
    }

    #[test]
    fn a_warning_share_not_below_the_critical_one_keeps_both_defaults() {
        for (args, warn, critical) in [
            ("pressure_warn=90", 90, 85),
            ("pressure_critical=70", 75, 70),
            ("pressure_warn=60 pressure_critical=60", 60, 60),
        ] {
            let (params, warnings) = run(args);
            assert_eq!(params.pressure, Levels::DEFAULT, "{args}");
            assert_eq!(
                warnings,
                vec![Warning::PressureOrder {
                    warn: percent(warn),
                    critical: percent(critical)
                }],
                "{args}"
            );
        }
        // Reported after the words' own warnings.
        let (_, warnings) = run("pressure_warn=95 bogus");
        let lines: Vec<_> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "cmdline: ignoring 'bogus': expected key=value".to_string(),
                "cmdline: pressure_warn=95% is not below pressure_critical=85%; \
                 keeping 75% and 85%"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn floor_defaults_to_an_eighth_of_the_heap_given() {
        let (params, _) = run("heap=16M");
        assert_eq!(params.floor, 2 << 20);
    }

    #[test]
    fn the_last_value_wins() {
        assert_eq!(run("heap=1M heap=2M").0.heap, 2 << 20);
        assert_eq!(run("heap=2M heap=bad").0.heap, 2 << 20);
    }

    #[test]
    fn warnings_come_in_order_with_todays_text() {
        let (params, warnings) =
            run("quiet heap=max floor=4Q emergency= session_max=x foo=1 =2 a=b=c");
        assert_eq!(params, run("").0);
        let lines: Vec<_> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "cmdline: ignoring 'quiet': expected key=value".to_string(),
                "cmdline: heap cannot be unlimited; keeping the default".to_string(),
                "cmdline: floor=4Q: unknown suffix (use K, M or G); keeping the default"
                    .to_string(),
                "cmdline: emergency=: not a number (write e.g. 4M, 512K, 1048576 or max); \
                 keeping the default"
                    .to_string(),
                "cmdline: session_max=x: not a number (write e.g. 4M, 512K, 1048576 or max); \
                 keeping the default"
                    .to_string(),
                "cmdline: unknown parameter 'foo' ignored".to_string(),
                "cmdline: unknown parameter '' ignored".to_string(),
                "cmdline: unknown parameter 'a' ignored".to_string(),
            ]
        );
        assert_eq!(
            warnings[3],
            Warning::BadValue {
                key: "emergency",
                value: "",
                error: SizeError::NotANumber
            }
        );
    }

    #[test]
    fn too_large_values_are_refused() {
        let (params, warnings) = run("heap=99999999999G");
        assert_eq!(params.heap, RAM / 4);
        assert_eq!(
            warnings,
            vec![Warning::BadValue {
                key: "heap",
                value: "99999999999G",
                error: SizeError::TooLarge
            }]
        );
    }

    #[test]
    fn tiny_and_huge_ram() {
        assert_eq!(parse("", 0, |_| {}).heap, 0);
        assert_eq!(parse("", 7, |_| {}).floor, 0);
        let params = parse("", usize::MAX, |_| {});
        assert_eq!(params.heap, usize::MAX / 4);
        assert_eq!(params.floor, usize::MAX / 4 / 8);
    }
}
