//! SSH data types (RFC 4251 §5) written and read by hand.
//!
//! Messages are decoded with `sunset::packets`; this module covers what
//! sunset does not expose: exchange-hash input, key and signature blobs, and
//! the exact byte ranges of a `publickey` request (whose signature covers
//! the request's own bytes).

use alloc::vec::Vec;

/// Appends a `uint32`.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a `string` (length-prefixed bytes).
///
/// # Panics
/// Never for the sizes this crate writes (all far below 4 GiB); a longer
/// slice is a bug and panics rather than emitting a corrupt length.
pub fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    let len = u32::try_from(s.len()).expect("SSH string over 4 GiB");
    put_u32(out, len);
    out.extend_from_slice(s);
}

/// Appends an `mpint` holding the unsigned big-endian integer `v`.
///
/// # Panics
/// Only for an integer over 4 GiB, which this crate never writes.
pub fn put_mpint(out: &mut Vec<u8>, v: &[u8]) {
    let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    let v = &v[start..];
    let pad = v.first().is_some_and(|&b| b & 0x80 != 0);
    let len = v.len() + usize::from(pad);
    put_u32(out, u32::try_from(len).expect("mpint over 4 GiB"));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(v);
}

/// A cursor over received bytes; every read checks bounds and fails with
/// `None` rather than panicking.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` at its beginning.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether everything was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Reads `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// Reads a `byte`.
    pub fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    /// Reads a `boolean`.
    pub fn bool(&mut self) -> Option<bool> {
        self.u8().map(|b| b != 0)
    }

    /// Reads a `uint32`.
    pub fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a `string`.
    pub fn string(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.bytes(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpint_strips_zeros_and_pads_high_bit() {
        let mut v = Vec::new();
        put_mpint(&mut v, &[0, 0, 0x80, 1]);
        assert_eq!(v, [0, 0, 0, 3, 0, 0x80, 1]);
        v.clear();
        put_mpint(&mut v, &[0, 0]);
        assert_eq!(v, [0, 0, 0, 0]);
        v.clear();
        put_mpint(&mut v, &[0x7f]);
        assert_eq!(v, [0, 0, 0, 1, 0x7f]);
    }

    #[test]
    fn reader_fails_cleanly_on_short_input() {
        let mut r = Reader::new(&[0, 0, 0, 9, 1, 2]);
        assert_eq!(r.string(), None);
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.string(), None);
        let mut r = Reader::new(&[0, 0, 0, 2, 7, 8, 1]);
        assert_eq!(r.string(), Some(&[7u8, 8][..]));
        assert_eq!(r.bool(), Some(true));
        assert!(r.is_empty());
        assert_eq!(r.u8(), None);
    }
}
