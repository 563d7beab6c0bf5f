//! A byte ring buffer whose capacity changes only when asked, fallibly.
//!
//! Unlike `VecDeque`, growth never happens behind the caller's back (a
//! push beyond the capacity is refused), capacity is exactly what was
//! reserved, and bytes move with slice copies.

use alloc::collections::TryReserveError;
use alloc::vec::Vec;

/// A bounded FIFO of bytes.
#[derive(Debug, Default)]
pub struct Ring {
    buf: Vec<u8>,
    head: usize,
    len: usize,
}

impl Ring {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that fit without resizing.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Free room.
    pub fn room(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Changes the capacity to `cap` (at least [`Self::len`]), allocating
    /// the new storage fallibly; on failure nothing changes.
    ///
    /// # Errors
    /// The allocator's refusal.
    pub fn resize(&mut self, cap: usize) -> Result<(), TryReserveError> {
        let cap = cap.max(self.len);
        if cap == self.buf.len() {
            return Ok(());
        }
        let mut v = Vec::new();
        if cap > 0 {
            v.try_reserve_exact(cap)?;
            v.resize(cap, 0);
            let (a, b) = self.as_slices();
            v[..a.len()].copy_from_slice(a);
            v[a.len()..a.len() + b.len()].copy_from_slice(b);
        }
        self.buf = v;
        self.head = 0;
        Ok(())
    }

    /// Frees all storage.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Appends as much of `data` as fits; returns how much.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.room());
        let cap = self.buf.len();
        if n == 0 {
            return 0;
        }
        let tail = (self.head + self.len) % cap;
        let first = n.min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&data[..first]);
        self.buf[..n - first].copy_from_slice(&data[first..n]);
        self.len += n;
        n
    }

    /// The held bytes, oldest first, in up to two pieces.
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        let cap = self.buf.len();
        if self.len == 0 {
            return (&[], &[]);
        }
        let end = self.head + self.len;
        if end <= cap {
            (&self.buf[self.head..end], &[])
        } else {
            (&self.buf[self.head..], &self.buf[..end - cap])
        }
    }

    /// Drops the `n` oldest bytes (at most [`Self::len`]).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        self.head = if self.len == 0 {
            0
        } else {
            (self.head + n) % self.buf.len()
        };
    }

    /// Moves up to `out.len()` of the oldest bytes into `out`.
    pub fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let (a, b) = self.as_slices();
        let n = out.len().min(a.len() + b.len());
        let first = n.min(a.len());
        out[..first].copy_from_slice(&a[..first]);
        out[first..n].copy_from_slice(&b[..n - first]);
        self.consume(n);
        n
    }

    /// Appends up to `n` of the oldest bytes to `out` and drops them.
    pub fn pop_to_vec(&mut self, n: usize, out: &mut Vec<u8>) {
        let (a, b) = self.as_slices();
        let n = n.min(a.len() + b.len());
        let first = n.min(a.len());
        out.extend_from_slice(&a[..first]);
        out.extend_from_slice(&b[..n - first]);
        self.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn behaves_like_a_queue(ops in proptest::collection::vec((0u8..4, 0usize..50), 0..200)) {
            let mut r = Ring::default();
            let mut model = std::collections::VecDeque::new();
            let mut next = 0u8;
            for (op, n) in ops {
                match op {
                    0 => {
                        let data: Vec<u8> = (0..n).map(|_| { next = next.wrapping_add(1); next }).collect();
                        let k = r.push(&data);
                        prop_assert_eq!(k, n.min(r.capacity() - model.len()));
                        model.extend(&data[..k]);
                    }
                    1 => {
                        let mut out = vec![0; n];
                        let k = r.pop_into(&mut out);
                        let want: Vec<u8> = model.drain(..k).collect();
                        prop_assert_eq!(&out[..k], &want[..]);
                        prop_assert_eq!(k, n.min(k + model.len()));
                    }
                    2 => { r.resize(n).unwrap(); }
                    _ => {
                        let mut v = Vec::new();
                        r.pop_to_vec(n, &mut v);
                        let want: Vec<u8> = model.drain(..v.len()).collect();
                        prop_assert_eq!(v, want);
                    }
                }
                prop_assert_eq!(r.len(), model.len());
                prop_assert!(r.len() <= r.capacity());
            }
        }
    }
}
