//! Reading a rendered `/proc/<pid>/memquota` back into typed values, for
//! tests (the host's and the kernel's) and tools.
//!
//! The parser accepts what [`MemquotaView`](crate::MemquotaView) writes:
//! lines of `key value` separated by ASCII whitespace. Empty lines and
//! unknown keys are skipped (so files with added keys still parse); every
//! known key must appear exactly once. Limits are a decimal byte count or
//! `max`; `pids.max` is a count of at most [`PidsMax::MAX_COUNT`] or `max`;
//! other values are decimal integers.

use core::fmt;
use core::str::FromStr;

use quota::{Events, Limit};

use crate::MemquotaView;
use crate::memquota::KEYS;
use crate::pids::{PidsMax, PidsUsage};

/// The values of a `memquota` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemquotaFile {
    /// `pid`.
    pub pid: u32,
    /// `sid`.
    pub sid: u32,
    /// `current`.
    pub current: usize,
    /// `max`.
    pub max: Limit,
    /// `high`.
    pub high: Limit,
    /// `peak`.
    pub peak: usize,
    /// `allocations`.
    pub allocations: usize,
    /// `overdraft`.
    pub overdraft: usize,
    /// `events.max`, `events.high`, `events.oom_kill`, `events.forced`.
    pub events: Events,
    /// The `session.*` keys.
    pub session: SessionUsage,
    /// `pids.current` and `pids.max` (the session's).
    pub pids: PidsUsage,
}

/// The `session.*` keys of a `memquota` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionUsage {
    /// `session.current`.
    pub current: usize,
    /// `session.max`.
    pub max: Limit,
    /// `session.high`.
    pub high: Limit,
    /// `session.peak`.
    pub peak: usize,
}

/// Why a text is not a `memquota` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemquotaParseError {
    /// A line is not `key value`.
    Malformed {
        /// 1-based line number.
        line: usize,
    },
    /// A known key's value does not parse.
    BadValue {
        /// The key.
        key: &'static str,
        /// 1-based line number.
        line: usize,
    },
    /// A known key appears twice.
    Duplicate {
        /// The key.
        key: &'static str,
        /// 1-based line number of the second occurrence.
        line: usize,
    },
    /// A known key is missing.
    Missing {
        /// The key.
        key: &'static str,
    },
}

impl fmt::Display for MemquotaParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemquotaParseError::Malformed { line } => {
                write!(f, "line {line}: expected `key value`")
            }
            MemquotaParseError::BadValue { key, line } => {
                write!(f, "line {line}: bad value for `{key}`")
            }
            MemquotaParseError::Duplicate { key, line } => {
                write!(f, "line {line}: `{key}` appears twice")
            }
            MemquotaParseError::Missing { key } => write!(f, "`{key}` is missing"),
        }
    }
}

impl core::error::Error for MemquotaParseError {}

impl MemquotaFile {
    /// Parses a rendered `memquota` file.
    ///
    /// # Errors
    /// [`MemquotaParseError`] for the first line or key that is wrong.
    pub fn parse(text: &str) -> Result<Self, MemquotaParseError> {
        // Each known key's value and line number.
        let mut found: [Option<(&str, usize)>; KEYS.len()] = [None; KEYS.len()];
        for (number, line) in (1..).zip(text.lines()) {
            let mut words = line.split_ascii_whitespace();
            let (Some(key), value, None) = (words.next(), words.next(), words.next()) else {
                if line.trim().is_empty() {
                    continue;
                }
                return Err(MemquotaParseError::Malformed { line: number });
            };
            let value = value.ok_or(MemquotaParseError::Malformed { line: number })?;
            if let Some(i) = KEYS.iter().position(|k| *k == key) {
                if found[i].is_some() {
                    return Err(MemquotaParseError::Duplicate {
                        key: KEYS[i],
                        line: number,
                    });
                }
                found[i] = Some((value, number));
            }
        }
        let fields = Fields(&found);
        Ok(Self {
            pid: fields.number(0)?,
            sid: fields.number(1)?,
            current: fields.number(2)?,
            max: fields.limit(3)?,
            high: fields.limit(4)?,
            peak: fields.number(5)?,
            allocations: fields.number(6)?,
            overdraft: fields.number(7)?,
            events: Events {
                max: fields.number(8)?,
                high: fields.number(9)?,
                oom_kill: fields.number(10)?,
                forced: fields.number(11)?,
            },
            session: SessionUsage {
                current: fields.number(12)?,
                max: fields.limit(13)?,
                high: fields.limit(14)?,
                peak: fields.number(15)?,
            },
            pids: PidsUsage {
                current: fields.number(16)?,
                max: fields.pids_max(17)?,
            },
        })
    }
}

impl From<&MemquotaView> for MemquotaFile {
    /// What the file rendered from `view` says. A limit of `usize::MAX`
    /// bytes reads back as [`Limit::Unlimited`], which it is.
    fn from(view: &MemquotaView) -> Self {
        let (p, s) = (&view.process, &view.session);
        let canonical = |l: Limit| Limit::from_raw(l.to_raw());
        Self {
            pid: view.pid,
            sid: view.sid,
            current: p.current,
            max: canonical(p.max),
            high: canonical(p.high),
            peak: p.peak,
            allocations: p.blocks,
            overdraft: p.overdraft,
            events: p.events,
            session: SessionUsage {
                current: s.current,
                max: canonical(s.max),
                high: canonical(s.high),
                peak: s.peak,
            },
            pids: view.pids,
        }
    }
}

struct Fields<'a, 't>(&'a [Option<(&'t str, usize)>; KEYS.len()]);

impl Fields<'_, '_> {
    fn get(&self, i: usize) -> Result<(&str, usize), MemquotaParseError> {
        self.0[i].ok_or(MemquotaParseError::Missing { key: KEYS[i] })
    }

    fn number<T: FromStr>(&self, i: usize) -> Result<T, MemquotaParseError> {
        let (value, line) = self.get(i)?;
        let bad = || MemquotaParseError::BadValue { key: KEYS[i], line };
        // Plain decimal digits only: `FromStr` would also take a leading `+`.
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        value.parse().map_err(|_| bad())
    }

    fn pids_max(&self, i: usize) -> Result<PidsMax, MemquotaParseError> {
        let (value, line) = self.get(i)?;
        PidsMax::parse(value.as_bytes())
            .map_err(|_| MemquotaParseError::BadValue { key: KEYS[i], line })
    }

    fn limit(&self, i: usize) -> Result<Limit, MemquotaParseError> {
        if self.get(i)?.0 == "max" {
            Ok(Limit::Unlimited)
        } else {
            self.number(i).map(Limit::from_raw)
        }
    }
}

#[cfg(test)]
mod tests {
    use quota::Limit;

    use super::*;
    use crate::memquota::tests::{PIDS, snapshot};

    fn view() -> MemquotaView {
        MemquotaView {
            pid: 7,
            sid: 3,
            process: snapshot(5, 20480, Limit::Bytes(4 << 20)),
            session: snapshot(4, 40960, Limit::Unlimited),
            pids: PIDS,
        }
    }

    #[test]
    fn reads_back_what_was_rendered() {
        let v = view();
        let file = MemquotaFile::parse(&v.to_string()).unwrap();
        assert_eq!(file, MemquotaFile::from(&v));
        assert_eq!(file.max, Limit::Bytes(4 << 20));
        assert_eq!(file.high, Limit::Unlimited);
        assert_eq!(file.session.max, Limit::Unlimited);
        assert_eq!(file.pids.current, 4);
        assert_eq!(file.pids.max, PidsMax::new(32).unwrap());
    }

    #[test]
    fn pids_max_reads_back_unlimited_and_refuses_non_counts() {
        let mut v = view();
        v.pids.max = PidsMax::UNLIMITED;
        let file = MemquotaFile::parse(&v.to_string()).unwrap();
        assert_eq!(file.pids.max, PidsMax::UNLIMITED);
        for bad in ["pids.max 4M", "pids.max 4194305", "pids.max -1"] {
            let text = v.to_string().replace("pids.max max", bad);
            assert_eq!(
                MemquotaFile::parse(&text),
                Err(MemquotaParseError::BadValue {
                    key: "pids.max",
                    line: 18
                }),
                "{bad}"
            );
        }
        let text = v.to_string().replace("pids.current 4", "pids.current max");
        assert_eq!(
            MemquotaFile::parse(&text),
            Err(MemquotaParseError::BadValue {
                key: "pids.current",
                line: 17
            })
        );
    }

    #[test]
    fn find_field_reads_the_pids_keys() {
        let text = view().to_string();
        assert_eq!(crate::find_field(&text, "pids.current"), Some("4"));
        assert_eq!(crate::find_field(&text, "pids.max"), Some("32"));
        assert_eq!(crate::find_field(&text, "max"), Some("4194304"));
    }

    #[test]
    fn skips_blank_lines_and_unknown_keys() {
        let text = format!("future.key 9\n\n{}\n", view());
        assert_eq!(
            MemquotaFile::parse(&text).unwrap(),
            MemquotaFile::from(&view())
        );
    }

    #[test]
    fn missing_key_is_named() {
        let text = view().to_string().replace("session.peak 81920\n", "");
        assert_eq!(
            MemquotaFile::parse(&text),
            Err(MemquotaParseError::Missing {
                key: "session.peak"
            })
        );
        let text = view().to_string().replace("pids.max 32\n", "");
        assert_eq!(
            MemquotaFile::parse(&text),
            Err(MemquotaParseError::Missing { key: "pids.max" })
        );
    }

    #[test]
    fn duplicate_key_is_named() {
        let text = format!("{}max 5\n", view());
        assert_eq!(
            MemquotaFile::parse(&text),
            Err(MemquotaParseError::Duplicate {
                key: "max",
                line: 19
            })
        );
    }

    #[test]
    fn bad_values_and_lines_are_refused() {
        let text = view().to_string().replace("high max", "high 4M");
        assert_eq!(
            MemquotaFile::parse(&text),
            Err(MemquotaParseError::BadValue {
                key: "high",
                line: 5
            })
        );
        let text = view().to_string().replace("pid 7", "pid");
        assert_eq!(
            MemquotaFile::parse(&text),
            Err(MemquotaParseError::Malformed { line: 1 })
        );
        let text = view().to_string().replace("sid 3", "sid 3 4");
        assert_eq!(
            MemquotaFile::parse(&text),
            Err(MemquotaParseError::Malformed { line: 2 })
        );
    }

    #[test]
    fn usize_max_bytes_reads_back_as_unlimited() {
        let mut v = view();
        v.process.max = Limit::Bytes(usize::MAX);
        let file = MemquotaFile::parse(&v.to_string()).unwrap();
        assert_eq!(file.max, Limit::Unlimited);
        assert_eq!(file, MemquotaFile::from(&v));
    }
}
