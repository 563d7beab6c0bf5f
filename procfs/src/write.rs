//! Writes to `/proc/<pid>/memquota`, parsed into a [`MemquotaWrite`]
//! request: a memory limit ([`SetLimit`]) or the session's process limit
//! ([`PidsMax`]).
//!
//! The written bytes are untrusted: any length, any bytes, not necessarily
//! UTF-8. Grammar (sizes as in [`crate::size`], counts as in
//! [`crate::pids`]):
//!
//! ```text
//! write := ws* command ws*
//! command := size                 sets max       (4M, 512k, 1048576, max)
//!          | "max" ws+ size       sets max       (max 4M, max max)
//!          | "high" ws+ size      sets high      (high 3M, high max)
//!          | "pids" ws+ pids_max  sets pids.max  (pids 32, pids max)
//! ws := ASCII whitespace (space, tab, newline, CR, form feed)
//! ```
//!
//! `max` and `high` are the target process's account's (the session's on
//! the session leader); `pids.max` is always the target's *session's*.
//! Surrounding whitespace and a trailing newline (`echo 4M > ...`) are
//! fine. Keywords are lowercase. Nothing is applied here: the result is a
//! request for the kernel to authorize ([`check_write`](crate::check_write)) and apply, or a
//! [`WriteError`] whose `Display` is one line naming the offending token
//! (cut to [`Token::MAX_LEN`] bytes, escaped), so even 10 KB of junk
//! yields a short message. `0` is a valid size and a valid count: it
//! refuses every further charge (or process); whether that is allowed is
//! the permission check's business.
//!
//! [`MemquotaWrite::parse`] reads the whole grammar and is what a write to
//! the file goes through; [`SetLimit::parse`] reads only its memory half
//! (the first three forms).

use core::fmt;

use quota::{Limit, MAX_BYTES};

use crate::escape::Token;
use crate::pids::{PidsError, PidsMax};
use crate::size::{HumanSize, SizeError, parse_size};

/// A parsed write to a `memquota` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemquotaWrite {
    /// Set the target's account's `max` or `high`.
    Limit(SetLimit),
    /// Set the target's session's `pids.max`.
    PidsMax(PidsMax),
}

impl MemquotaWrite {
    /// Parses the bytes written to a `memquota` file: a memory limit as
    /// [`SetLimit::parse`] reads it, or `pids <count>` / `pids max`, with
    /// any ASCII whitespace around and between the words.
    ///
    /// # Errors
    /// [`WriteError`] naming the first token that breaks the grammar.
    pub fn parse(input: &[u8]) -> Result<Self, WriteError> {
        let mut tokens = words(input);
        if tokens.next() != Some(b"pids".as_slice()) {
            return SetLimit::parse(input).map(Self::Limit);
        }
        let count = tokens.next().ok_or(WriteError::MissingCount)?;
        let max = PidsMax::parse(count).map_err(|error| WriteError::Pids {
            token: Token::new(count),
            error,
        })?;
        if let Some(extra) = tokens.next() {
            return Err(WriteError::ExtraToken {
                token: Token::new(extra),
            });
        }
        Ok(Self::PidsMax(max))
    }
}

impl From<SetLimit> for MemquotaWrite {
    fn from(request: SetLimit) -> Self {
        Self::Limit(request)
    }
}

impl From<PidsMax> for MemquotaWrite {
    fn from(max: PidsMax) -> Self {
        Self::PidsMax(max)
    }
}

impl fmt::Display for MemquotaWrite {
    /// The canonical text of the request, which [`MemquotaWrite::parse`]
    /// reads back: `4M`, `high max`, `pids 32`, `pids max`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Limit(request) => write!(f, "{request}"),
            Self::PidsMax(max) => write!(f, "pids {max}"),
        }
    }
}

/// The whitespace-separated words of a write.
fn words(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    input
        .split(u8::is_ascii_whitespace)
        .filter(|t| !t.is_empty())
}

/// Which limit a write sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The hard limit, `max`.
    Max,
    /// The soft limit, `high`.
    High,
}

impl LimitKind {
    /// The cgroup v2 name: `max` or `high`.
    pub const fn name(self) -> &'static str {
        match self {
            LimitKind::Max => "max",
            LimitKind::High => "high",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed write: set one limit of the target's account.
///
/// A byte limit in it is at most [`quota::MAX_BYTES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SetLimit {
    kind: LimitKind,
    limit: Limit,
}

impl SetLimit {
    /// A request built in code rather than parsed; `None` if `limit` is a
    /// byte count above [`quota::MAX_BYTES`].
    pub const fn new(kind: LimitKind, limit: Limit) -> Option<Self> {
        match limit {
            Limit::Bytes(n) if n > MAX_BYTES => None,
            _ => Some(Self { kind, limit }),
        }
    }

    /// Parses a memory-limit write: `<size>` or `max <size>` (sets
    /// `max`), or `high <size>` (sets `high`), with any ASCII whitespace
    /// around and between the words; sizes as
    /// [`parse_size`](crate::parse_size). A write to the file may also be
    /// `pids <count>`: parse it with [`MemquotaWrite::parse`].
    ///
    /// # Errors
    /// [`WriteError`] naming the first token that breaks that grammar.
    pub fn parse(input: &[u8]) -> Result<Self, WriteError> {
        let mut tokens = words(input);
        let first = tokens.next().ok_or(WriteError::Empty)?;
        let (kind, size) = match first {
            b"high" => (
                LimitKind::High,
                tokens.next().ok_or(WriteError::MissingSize {
                    kind: LimitKind::High,
                })?,
            ),
            // `max` alone is the bare size "unlimited"; `max <size>` is explicit.
            b"max" => (LimitKind::Max, tokens.next().unwrap_or(first)),
            _ => (LimitKind::Max, first),
        };
        let limit = parse_size(size).map_err(|error| WriteError::Size {
            token: Token::new(size),
            error,
        })?;
        if let Some(extra) = tokens.next() {
            return Err(WriteError::ExtraToken {
                token: Token::new(extra),
            });
        }
        Ok(Self { kind, limit })
    }

    /// Which limit to set.
    pub const fn kind(self) -> LimitKind {
        self.kind
    }

    /// The value to set it to.
    pub const fn limit(self) -> Limit {
        self.limit
    }
}

impl fmt::Display for SetLimit {
    /// The canonical text of the request, which [`SetLimit::parse`] reads
    /// back: `4M`, `max`, `high 3M`, `high max`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == LimitKind::High {
            f.write_str("high ")?;
        }
        match self.limit.bytes() {
            Some(n) => write!(f, "{}", HumanSize(n)),
            None => f.write_str("max"),
        }
    }
}

/// Why a write to a `memquota` file was refused by the parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteError {
    /// Nothing but whitespace was written.
    Empty,
    /// A token where a size belongs is not one.
    Size {
        /// The token (its start, if long).
        token: Token,
        /// Which rule it breaks.
        error: SizeError,
    },
    /// `high` with no size after it.
    MissingSize {
        /// The limit named.
        kind: LimitKind,
    },
    /// A token where a process count belongs (after `pids`) is not one.
    Pids {
        /// The token (its start, if long).
        token: Token,
        /// Which rule it breaks.
        error: PidsError,
    },
    /// `pids` with no count after it.
    MissingCount,
    /// A token after a complete command (`4M 5M`).
    ExtraToken {
        /// The first extra token (its start, if long).
        token: Token,
    },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Empty => f.write_str(
                "empty write: expected a size (4M, 512K, 1048576, max), `high <size>` \
                 or `pids <count>`",
            ),
            WriteError::Size { token, error } => write!(f, "invalid size `{token}`: {error}"),
            WriteError::MissingSize { kind } => {
                write!(f, "`{kind}` needs a size after it, e.g. `{kind} 4M`")
            }
            WriteError::Pids { token, error } => {
                write!(f, "invalid process count `{token}`: {error}")
            }
            WriteError::MissingCount => {
                f.write_str("`pids` needs a count after it, e.g. `pids 32` or `pids max`")
            }
            WriteError::ExtraToken { token } => write!(
                f,
                "unexpected `{token}`: write one size, `max <size>`, `high <size>` \
                 or `pids <count>`"
            ),
        }
    }
}

impl core::error::Error for WriteError {}

#[cfg(test)]
mod tests {
    use super::*;

    const M: usize = 1 << 20;

    fn ok(input: &[u8]) -> (LimitKind, Limit) {
        let r = SetLimit::parse(input).unwrap();
        (r.kind(), r.limit())
    }

    fn err(input: &[u8]) -> WriteError {
        SetLimit::parse(input).unwrap_err()
    }

    fn size_err(input: &[u8], token: &[u8], error: SizeError) {
        assert_eq!(
            err(input),
            WriteError::Size {
                token: Token::new(token),
                error
            },
            "{}",
            String::from_utf8_lossy(input)
        );
    }

    #[test]
    fn bare_size_sets_max() {
        assert_eq!(ok(b"4M"), (LimitKind::Max, Limit::Bytes(4 * M)));
        assert_eq!(ok(b"512K"), (LimitKind::Max, Limit::Bytes(512 << 10)));
        assert_eq!(ok(b"1048576"), (LimitKind::Max, Limit::Bytes(M)));
        assert_eq!(ok(b"2G"), (LimitKind::Max, Limit::Bytes(2 << 30)));
        assert_eq!(ok(b"max"), (LimitKind::Max, Limit::Unlimited));
        assert_eq!(ok(b"0"), (LimitKind::Max, Limit::Bytes(0)));
    }

    #[test]
    fn keyword_forms_set_high_or_max() {
        assert_eq!(ok(b"high 3M"), (LimitKind::High, Limit::Bytes(3 * M)));
        assert_eq!(ok(b"high max"), (LimitKind::High, Limit::Unlimited));
        assert_eq!(ok(b"max 4M"), (LimitKind::Max, Limit::Bytes(4 * M)));
        assert_eq!(ok(b"max max"), (LimitKind::Max, Limit::Unlimited));
        assert_eq!(ok(b"high\t3m"), (LimitKind::High, Limit::Bytes(3 * M)));
    }

    #[test]
    fn surrounding_whitespace_and_trailing_newline_are_fine() {
        assert_eq!(ok(b"4M\n"), (LimitKind::Max, Limit::Bytes(4 * M)));
        assert_eq!(ok(b"  4M  \r\n"), (LimitKind::Max, Limit::Bytes(4 * M)));
        assert_eq!(ok(b"\thigh   3M\n"), (LimitKind::High, Limit::Bytes(3 * M)));
    }

    #[test]
    fn empty_and_whitespace_only_writes_are_empty() {
        assert_eq!(err(b""), WriteError::Empty);
        assert_eq!(err(b"   \t\n"), WriteError::Empty);
        assert_eq!(err(b"\n"), WriteError::Empty);
    }

    #[test]
    fn bad_sizes_name_the_token() {
        size_err(b"abc", b"abc", SizeError::NotANumber);
        size_err(b"-1", b"-1", SizeError::NotANumber);
        size_err(b"4Q\n", b"4Q", SizeError::BadSuffix);
        size_err(b"high 4Q", b"4Q", SizeError::BadSuffix);
        size_err(b"max -1", b"-1", SizeError::NotANumber);
        size_err(b"MAX", b"MAX", SizeError::NotANumber);
        size_err(b"foo 3M", b"foo", SizeError::NotANumber);
    }

    #[test]
    fn overflowing_sizes_are_too_large() {
        size_err(
            b"99999999999999999999",
            b"99999999999999999999",
            SizeError::TooLarge,
        );
        size_err(b"20000000000G", b"20000000000G", SizeError::TooLarge);
        size_err(b"2000G", b"2000G", SizeError::TooLarge);
        size_err(b"high 1024G", b"1024G", SizeError::TooLarge);
    }

    #[test]
    fn extra_tokens_are_refused() {
        let extra = |t: &[u8]| WriteError::ExtraToken {
            token: Token::new(t),
        };
        assert_eq!(err(b"4M 5M"), extra(b"5M"));
        assert_eq!(err(b"4M\n5M\n"), extra(b"5M"));
        assert_eq!(err(b"high 3M 4M"), extra(b"4M"));
        assert_eq!(err(b"max 4M max"), extra(b"max"));
        assert_eq!(err(b"4 M"), extra(b"M"));
    }

    #[test]
    fn high_without_a_size_is_refused() {
        assert_eq!(
            err(b"high\n"),
            WriteError::MissingSize {
                kind: LimitKind::High
            }
        );
    }

    #[test]
    fn non_utf8_is_an_error_not_a_panic() {
        size_err(b"\xff\xfe", b"\xff\xfe", SizeError::NotANumber);
        size_err(b"4M\xff", b"4M\xff", SizeError::BadSuffix);
        assert_eq!(
            err(b"4M\xff").to_string(),
            "invalid size `4M\\xff`: unknown suffix (use K, M or G)"
        );
    }

    #[test]
    fn ten_kilobytes_of_junk_give_one_short_line() {
        let junk = vec![b'z'; 10 * 1024];
        let message = err(&junk).to_string();
        assert!(!message.contains('\n'));
        assert!(message.len() < 120, "{message}");
        assert!(message.starts_with(&format!("invalid size `{}...`", "z".repeat(32))));
    }

    #[test]
    fn messages_read_as_one_clear_line() {
        assert_eq!(
            err(b"abc").to_string(),
            "invalid size `abc`: not a number (write e.g. 4M, 512K, 1048576 or max)"
        );
        assert_eq!(
            err(b"2000G").to_string(),
            "invalid size `2000G`: too large, the most is 1099511627775 bytes \
             (write max for no limit)"
        );
        assert_eq!(
            err(b"4M 5M").to_string(),
            "unexpected `5M`: write one size, `max <size>`, `high <size>` or `pids <count>`"
        );
        assert_eq!(
            err(b"high").to_string(),
            "`high` needs a size after it, e.g. `high 4M`"
        );
    }

    #[test]
    fn display_is_the_canonical_write() {
        let text = |kind, limit| SetLimit::new(kind, limit).unwrap().to_string();
        assert_eq!(text(LimitKind::Max, Limit::Bytes(4 * M)), "4M");
        assert_eq!(text(LimitKind::Max, Limit::Unlimited), "max");
        assert_eq!(
            text(LimitKind::High, Limit::Bytes(3 * M + 1)),
            "high 3145729"
        );
        assert_eq!(text(LimitKind::High, Limit::Unlimited), "high max");
    }

    #[test]
    fn new_refuses_byte_limits_above_max_bytes() {
        assert!(SetLimit::new(LimitKind::Max, Limit::Bytes(MAX_BYTES)).is_some());
        assert!(SetLimit::new(LimitKind::Max, Limit::Bytes(MAX_BYTES + 1)).is_none());
        assert!(SetLimit::new(LimitKind::High, Limit::Unlimited).is_some());
    }

    fn pids(input: &[u8]) -> Result<MemquotaWrite, WriteError> {
        MemquotaWrite::parse(input)
    }

    fn count(n: u32) -> MemquotaWrite {
        MemquotaWrite::PidsMax(PidsMax::new(n).unwrap())
    }

    #[test]
    fn pids_writes_set_the_session_pids_max() {
        assert_eq!(pids(b"pids 32"), Ok(count(32)));
        assert_eq!(pids(b"  pids\t0\n"), Ok(count(0)));
        assert_eq!(
            pids(b"pids max\n"),
            Ok(MemquotaWrite::PidsMax(PidsMax::UNLIMITED))
        );
        assert_eq!(
            pids(b"pids 4194304"),
            Ok(count(PidsMax::MAX_COUNT)),
            "the most is allowed"
        );
    }

    #[test]
    fn memory_writes_parse_the_same_through_memquota_write() {
        for input in [&b"4M"[..], b"max", b"max 4M", b"high 3M\n", b"0"] {
            assert_eq!(
                pids(input),
                SetLimit::parse(input).map(MemquotaWrite::Limit),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(pids(b""), Err(WriteError::Empty));
        assert_eq!(pids(b"4M 5M"), Err(err(b"4M 5M")));
    }

    #[test]
    fn bad_pids_writes_name_the_token() {
        let bad = |t: &[u8], error| WriteError::Pids {
            token: Token::new(t),
            error,
        };
        assert_eq!(pids(b"pids"), Err(WriteError::MissingCount));
        assert_eq!(pids(b"pids \n"), Err(WriteError::MissingCount));
        assert_eq!(pids(b"pids -1"), Err(bad(b"-1", PidsError::NotACount)));
        assert_eq!(pids(b"pids 4M"), Err(bad(b"4M", PidsError::NotACount)));
        assert_eq!(pids(b"pids MAX"), Err(bad(b"MAX", PidsError::NotACount)));
        assert_eq!(
            pids(b"pids 99999999999999999999"),
            Err(bad(b"99999999999999999999", PidsError::TooLarge))
        );
        assert_eq!(
            pids(b"pids 4194305"),
            Err(bad(b"4194305", PidsError::TooLarge))
        );
        assert_eq!(
            pids(b"pids 3 4"),
            Err(WriteError::ExtraToken {
                token: Token::new(b"4")
            })
        );
        // Only the memory grammar: `pids` is not a size.
        size_err(b"pids 32", b"pids", SizeError::NotANumber);
        // `PIDS` is not the keyword.
        assert_eq!(
            pids(b"PIDS 3"),
            Err(WriteError::Size {
                token: Token::new(b"PIDS"),
                error: SizeError::NotANumber
            })
        );
    }

    #[test]
    fn pids_messages_read_as_one_clear_line() {
        let text = |input: &[u8]| pids(input).unwrap_err().to_string();
        assert_eq!(
            text(b"pids"),
            "`pids` needs a count after it, e.g. `pids 32` or `pids max`"
        );
        assert_eq!(
            text(b"pids 4M"),
            "invalid process count `4M`: not a process count \
             (write a whole number such as 32, or max)"
        );
        assert_eq!(
            text(b"pids 99999999999999999999"),
            "invalid process count `99999999999999999999`: too large, the most is 4194304 \
             (write max for no limit)"
        );
        assert_eq!(
            text(b"pids 3 4"),
            "unexpected `4`: write one size, `max <size>`, `high <size>` or `pids <count>`"
        );
    }

    #[test]
    fn memquota_write_display_is_the_canonical_write() {
        let cases = [
            (count(32), "pids 32"),
            (MemquotaWrite::PidsMax(PidsMax::UNLIMITED), "pids max"),
            (
                SetLimit::new(LimitKind::High, Limit::Bytes(3 * M))
                    .unwrap()
                    .into(),
                "high 3M",
            ),
        ];
        for (request, text) in cases {
            assert_eq!(request.to_string(), text);
            assert_eq!(pids(text.as_bytes()), Ok(request));
        }
    }
}
