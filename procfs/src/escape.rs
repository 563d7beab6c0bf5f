//! Safe quoting of untrusted text inside one-line output.
//!
//! - [`Token`] keeps the first [`Token::MAX_LEN`] bytes of a token from a
//!   write, so an error can name it without allocating and without echoing
//!   10 KB of junk back. It displays printable ASCII as itself and every
//!   other byte (control bytes, non-ASCII, non-UTF-8) as `\xNN`, followed
//!   by `...` if it was cut; so it is always one line of at most
//!   `4 * MAX_LEN + 3` characters.
//! - [`Escaped`] displays a `&str` (a process name, an account label) with
//!   `\` as `\\`, newline as `\n`, tab as `\t` and other control
//!   characters as `\xNN`, so it cannot break a line-oriented file.

use core::fmt::{self, Write};

/// The start of an untrusted token, kept for an error message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    buf: [u8; Token::MAX_LEN],
    len: u8,
    truncated: bool,
}

impl Token {
    /// Most bytes of a token kept (and shown).
    pub const MAX_LEN: usize = 32;

    /// Keeps the first [`Self::MAX_LEN`] bytes of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let kept = &bytes[..bytes.len().min(Self::MAX_LEN)];
        let mut buf = [0; Self::MAX_LEN];
        buf[..kept.len()].copy_from_slice(kept);
        Self {
            buf,
            len: u8::try_from(kept.len()).unwrap_or(u8::MAX),
            truncated: kept.len() < bytes.len(),
        }
    }

    /// The bytes kept.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// Whether the token was longer than what is kept.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.as_bytes() {
            if b.is_ascii_graphic() || b == b' ' {
                f.write_char(char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// A `&str` displayed so that it stays on one line.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() => write!(f, "\\x{:02x}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_keeps_short_input_whole() {
        let t = Token::new(b"4Q");
        assert_eq!(t.as_bytes(), b"4Q");
        assert!(!t.is_truncated());
        assert_eq!(t.to_string(), "4Q");
    }

    #[test]
    fn token_truncates_and_marks_long_input() {
        let t = Token::new(&[b'a'; 10_000]);
        assert_eq!(t.as_bytes().len(), Token::MAX_LEN);
        assert!(t.is_truncated());
        assert_eq!(t.to_string(), format!("{}...", "a".repeat(32)));
    }

    #[test]
    fn token_escapes_control_and_non_ascii_bytes() {
        assert_eq!(Token::new(b"a\nb\xff\x00").to_string(), "a\\x0ab\\xff\\x00");
    }

    #[test]
    fn escaped_keeps_text_on_one_line() {
        assert_eq!(Escaped("sh").to_string(), "sh");
        assert_eq!(
            Escaped("a\nb\\c\td\u{7}é").to_string(),
            "a\\nb\\\\c\\td\\x07é"
        );
    }
}
