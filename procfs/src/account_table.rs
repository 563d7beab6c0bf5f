//! `/proc/memquota`: every account in one aligned table (also what the
//! shell's `memquota` command prints).
//!
//! ```text
//! ID  PARENT  PID  SID  CURRENT      MAX  HIGH     PEAK  EV_MAX  EV_HIGH  OOM_KILL  FORCED  KIND
//!  0       -    -    -   524288      max   max   600000       0        0         0       0  kernel
//!  4       0    5    3    40960  8388608   max    81920       2        0         0       0  session
//!  5       4    7    3    20480  4194304   max    40960       2        0         0       1  process
//! ```
//!
//! One header line, then one line per row the kernel passes, in its order.
//! `ID` and `PARENT` are account slot indices ([`quota::AccountId::index`]);
//! `PID` and `SID` are the owner's, `-` when there is none (the root and
//! other kernel accounts). Bytes are plain integers, unset limits `max`.
//! `KIND` is the caller's label (escaped to stay on one line). Columns are
//! separated by two spaces and as wide as their widest cell, numbers
//! right-aligned; `KIND` is last, so no line has trailing spaces.

use core::fmt;

use quota::{AccountSnapshot, Limit};

use crate::align::{Pad, Side};
use crate::escape::Escaped;

/// One account and what the kernel knows about its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountRow<'a> {
    /// The account.
    pub account: AccountSnapshot,
    /// The owning process, if any.
    pub pid: Option<u32>,
    /// The owning session, if any.
    pub sid: Option<u32>,
    /// A short kind or name: `kernel`, `session`, `process`, ...
    pub label: &'a str,
}

/// What `/proc/memquota` shows; `Display` renders the table.
#[derive(Clone, Copy, Debug)]
pub struct AccountTableView<'a> {
    /// The rows, in display order.
    pub rows: &'a [AccountRow<'a>],
}

const HEADERS: [&str; 12] = [
    "ID", "PARENT", "PID", "SID", "CURRENT", "MAX", "HIGH", "PEAK", "EV_MAX", "EV_HIGH",
    "OOM_KILL", "FORCED",
];
const LABEL_HEADER: &str = "KIND";
const GAP: &str = "  ";

/// One numeric cell.
enum Cell {
    Count(u64),
    Bytes(usize),
    Limit(Limit),
    Id(Option<usize>),
    Owner(Option<u32>),
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Count(n) => write!(f, "{n}"),
            Cell::Bytes(n) | Cell::Id(Some(n)) => write!(f, "{n}"),
            Cell::Limit(l) => write!(f, "{l}"),
            Cell::Owner(Some(n)) => write!(f, "{n}"),
            Cell::Id(None) | Cell::Owner(None) => f.write_str("-"),
        }
    }
}

fn cells(row: &AccountRow<'_>) -> [Cell; HEADERS.len()] {
    let a = &row.account;
    [
        Cell::Id(Some(a.id.index())),
        Cell::Id(a.parent.map(quota::AccountId::index)),
        Cell::Owner(row.pid),
        Cell::Owner(row.sid),
        Cell::Bytes(a.current),
        Cell::Limit(a.max),
        Cell::Limit(a.high),
        Cell::Bytes(a.peak),
        Cell::Count(a.events.max),
        Cell::Count(a.events.high),
        Cell::Count(a.events.oom_kill),
        Cell::Count(a.events.forced),
    ]
}

impl fmt::Display for AccountTableView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut widths = HEADERS.map(str::len);
        for row in self.rows {
            for (width, cell) in widths.iter_mut().zip(cells(row)) {
                *width = (*width).max(crate::align::display_width(&cell));
            }
        }
        for (header, width) in HEADERS.iter().zip(widths) {
            write!(f, "{}{GAP}", Pad(header, Side::Right, width))?;
        }
        writeln!(f, "{LABEL_HEADER}")?;
        for row in self.rows {
            for (cell, width) in cells(row).iter().zip(widths) {
                write!(f, "{}{GAP}", Pad(cell, Side::Right, width))?;
            }
            writeln!(f, "{}", Escaped(row.label))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use quota::{AccountId, Events};

    use super::*;
    use crate::memquota::tests::snapshot;

    fn rows() -> [AccountRow<'static>; 3] {
        let root = AccountSnapshot {
            parent: None,
            high: Limit::Unlimited,
            events: Events::default(),
            ..snapshot(0, 524_288, Limit::Unlimited)
        };
        let session = AccountSnapshot {
            events: Events {
                max: 2,
                ..Events::default()
            },
            ..snapshot(4, 40960, Limit::Bytes(8 << 20))
        };
        let process = AccountSnapshot {
            parent: Some(AccountId::from_raw(4)),
            events: Events {
                max: 2,
                forced: 1,
                ..Events::default()
            },
            ..snapshot(5, 20480, Limit::Bytes(4 << 20))
        };
        [
            AccountRow {
                account: root,
                pid: None,
                sid: None,
                label: "kernel",
            },
            AccountRow {
                account: session,
                pid: Some(5),
                sid: Some(3),
                label: "session",
            },
            AccountRow {
                account: process,
                pid: Some(7),
                sid: Some(3),
                label: "process",
            },
        ]
    }

    #[test]
    fn renders_an_aligned_table() {
        let rows = rows();
        let text = AccountTableView { rows: &rows }.to_string();
        let expected = "\
ID  PARENT  PID  SID  CURRENT      MAX  HIGH     PEAK  EV_MAX  EV_HIGH  OOM_KILL  FORCED  KIND
 0       -    -    -   524288      max   max  1048576       0        0         0       0  kernel
 4       0    5    3    40960  8388608   max    81920       2        0         0       0  session
 5       4    7    3    20480  4194304   max    40960       2        0         0       1  process
";
        assert_eq!(text, expected);
    }

    #[test]
    fn no_rows_is_just_the_header() {
        let text = AccountTableView { rows: &[] }.to_string();
        assert_eq!(
            text,
            "ID  PARENT  PID  SID  CURRENT  MAX  HIGH  PEAK  EV_MAX  EV_HIGH  OOM_KILL  FORCED  KIND\n"
        );
    }

    #[test]
    fn wide_values_widen_their_column_and_labels_are_escaped() {
        let mut rows = rows();
        rows[2].pid = Some(u32::MAX);
        rows[2].label = "bad\nlabel";
        let text = AccountTableView { rows: &rows }.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[0].starts_with("ID  PARENT         PID  SID"),
            "{text}"
        );
        assert!(
            lines[3].starts_with(" 5       4  4294967295    3"),
            "{text}"
        );
        assert!(lines[3].ends_with("  bad\\nlabel"));
        let header_end = lines[0].find("KIND").unwrap();
        assert!(lines.iter().skip(1).all(|l| l.len() > header_end));
    }
}
