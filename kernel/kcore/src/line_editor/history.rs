//! The editor's history: past lines in one buffer whose capacity is
//! reserved once, so that after the first line is remembered the history
//! holds the same number of bytes however many lines follow. (The kernel
//! checks that a shell's usage returns exactly to its baseline: a history
//! that grew line by line would look like a leak, and would be one in all
//! but name.)

use alloc::vec::Vec;

use super::HISTORY_LEN;

/// Bytes of history kept: lines and their separators. The oldest lines
/// are dropped to make room; a line longer than this is not kept.
pub const HISTORY_BYTES: usize = 4096;

/// Past lines, oldest first, each followed by `\n` (lines never hold one).
#[derive(Debug)]
pub(super) struct History {
    buf: Vec<u8>,
    count: usize,
}

impl History {
    pub(super) const fn new() -> Self {
        History {
            buf: Vec::new(),
            count: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// Entry `index`, oldest first.
    pub(super) fn get(&self, index: usize) -> Option<&str> {
        let bytes = self.buf.split(|&b| b == b'\n').nth(index)?;
        (index < self.count).then(|| core::str::from_utf8(bytes).unwrap_or(""))
    }

    pub(super) fn last(&self) -> Option<&str> {
        self.get(self.count.checked_sub(1)?)
    }

    /// Appends `line` (without a newline), dropping the oldest lines to
    /// make room. False, and nothing changed, if the buffer could not be
    /// had or the line cannot fit at all.
    pub(super) fn push(&mut self, line: &str) -> bool {
        let Some(need) = line.len().checked_add(1).filter(|n| *n <= HISTORY_BYTES) else {
            return false;
        };
        if line.as_bytes().contains(&b'\n') {
            return false;
        }
        if self.buf.capacity() < HISTORY_BYTES && self.buf.try_reserve_exact(HISTORY_BYTES).is_err()
        {
            return false;
        }
        while self.count >= HISTORY_LEN || HISTORY_BYTES.saturating_sub(self.buf.len()) < need {
            let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
                break;
            };
            self.buf.drain(..=end);
            self.count = self.count.saturating_sub(1);
        }
        // Within the capacity reserved above: no allocation.
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
        self.count = self.count.saturating_add(1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines_within_its_bytes_and_count() {
        let mut h = History::new();
        for i in 0..100 {
            assert!(h.push(&alloc::format!("line {i}")));
        }
        assert_eq!(h.len(), HISTORY_LEN);
        assert_eq!(h.last(), Some("line 99"));
        assert_eq!(h.get(0), Some("line 68"));
        assert_eq!(h.get(HISTORY_LEN), None);
        let capacity = h.buf.capacity();
        let long = "x".repeat(1000);
        for _ in 0..10 {
            assert!(h.push(&long));
        }
        assert_eq!(h.buf.capacity(), capacity, "the buffer never grows");
        assert!(h.buf.len() <= HISTORY_BYTES);
        assert_eq!(h.last(), Some(long.as_str()));
        assert!(!h.push(&"y".repeat(HISTORY_BYTES)));
        assert!(!h.push("a\nb"));
    }
}
