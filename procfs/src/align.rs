//! Column alignment for values whose `Display` ignores width flags.
//!
//! `quota::Limit` and most hand-written `Display` impls write with `write!`,
//! which ignores `{:>12}`. [`Pad`] measures a value by formatting it into a
//! counter (no allocation) and writes the padding itself. A value wider
//! than its column is written whole, pushing the rest of the line right.

use core::fmt::{self, Write};

/// The number of `char`s `value` displays as.
pub(crate) fn display_width(value: &dyn fmt::Display) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 = self.0.saturating_add(s.chars().count());
            Ok(())
        }
    }
    let mut count = Count(0);
    // Counting cannot fail; a `Display` impl that fails just counts short.
    let _ = write!(count, "{value}");
    count.0
}

/// Which side of its column a value sits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Left,
    Right,
}

/// `value` padded with spaces to `width` chars.
pub(crate) struct Pad<'a>(pub &'a dyn fmt::Display, pub Side, pub usize);

impl fmt::Display for Pad<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Pad(value, side, width) = *self;
        let fill = width.saturating_sub(display_width(value));
        if side == Side::Right {
            spaces(f, fill)?;
        }
        write!(f, "{value}")?;
        if side == Side::Left {
            spaces(f, fill)?;
        }
        Ok(())
    }
}

fn spaces(f: &mut fmt::Formatter<'_>, n: usize) -> fmt::Result {
    (0..n).try_for_each(|_| f.write_char(' '))
}

#[cfg(test)]
mod tests {
    use quota::Limit;

    use super::*;

    #[test]
    fn width_counts_chars() {
        assert_eq!(display_width(&12345), 5);
        assert_eq!(display_width(&"é"), 1);
        assert_eq!(display_width(&Limit::Unlimited), 3);
    }

    #[test]
    fn pads_on_either_side_and_never_cuts() {
        assert_eq!(Pad(&Limit::Unlimited, Side::Right, 5).to_string(), "  max");
        assert_eq!(Pad(&"ab", Side::Left, 4).to_string(), "ab  ");
        assert_eq!(Pad(&123_456, Side::Right, 3).to_string(), "123456");
    }
}
