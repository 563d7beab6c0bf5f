//! `/proc/cmdline`: the kernel's command line, as one line.
//!
//! The text is the kernel's own (trusted), written as given with a newline
//! added unless it already ends in one.

use core::fmt;

/// What `/proc/cmdline` shows; `Display` renders the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdlineView<'a>(pub &'a str);

impl fmt::Display for CmdlineView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)?;
        if self.0.ends_with('\n') {
            Ok(())
        } else {
            f.write_str("\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CmdlineView;

    #[test]
    fn ends_with_exactly_one_newline() {
        assert_eq!(CmdlineView("quiet heap=8M").to_string(), "quiet heap=8M\n");
        assert_eq!(CmdlineView("quiet\n").to_string(), "quiet\n");
        assert_eq!(CmdlineView("").to_string(), "\n");
    }
}
