//! Bytes and blocks, packed in one word so one atomic counts both.
//!
//! An account's usage is its charged bytes and the number of blocks
//! (allocations) they are in. Both live in one `u64`: bytes in the low 40
//! bits, blocks in the high 24. One compare-and-swap updates both, so the
//! allocator learns its header overhead (8 bytes a block) without a second
//! shared counter on the hot path. An account therefore holds at most
//! [`MAX_BYTES`] (1 TiB) in at most [`MAX_BLOCKS`] blocks; a charge past
//! either is refused as an overflow, never wrapped.

const _: () = assert!(usize::BITS == 64, "usage packing assumes a 64-bit usize");

const SHIFT: u32 = 40;
const BYTES_MASK: u64 = (1 << SHIFT) - 1;

/// Most bytes one account can hold.
pub const MAX_BYTES: usize = (1 << SHIFT) - 1;
/// Most blocks one account can hold.
pub const MAX_BLOCKS: usize = (1 << (64 - SHIFT)) - 1;

/// An amount to charge or uncharge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Amount {
    /// Bytes.
    pub bytes: usize,
    /// Blocks (allocations) those bytes are in.
    pub blocks: usize,
}

impl Amount {
    /// `bytes` bytes, no block: a resize of an existing block.
    #[must_use]
    #[inline]
    pub const fn bytes(bytes: usize) -> Self {
        Self { bytes, blocks: 0 }
    }

    /// One block of `bytes` bytes.
    #[must_use]
    #[inline]
    pub const fn block(bytes: usize) -> Self {
        Self { bytes, blocks: 1 }
    }

    /// The packed word, or `None` if either part is out of range.
    #[inline]
    pub(crate) fn to_word(self) -> Option<u64> {
        if self.bytes > MAX_BYTES || self.blocks > MAX_BLOCKS {
            return None;
        }
        let bytes = u64::try_from(self.bytes).ok()?;
        let blocks = u64::try_from(self.blocks).ok()?;
        Some((blocks << SHIFT) | bytes)
    }

    /// The amount a packed word holds.
    #[inline]
    pub(crate) fn from_word(word: u64) -> Self {
        let part = |x: u64| usize::try_from(x).unwrap_or(usize::MAX);
        Self {
            bytes: part(word & BYTES_MASK),
            blocks: part(word >> SHIFT),
        }
    }

    /// `self + other`, or `None` if a part would pass its maximum.
    #[inline]
    pub(crate) fn checked_add(self, other: Amount) -> Option<Amount> {
        let sum = Amount {
            bytes: self.bytes.checked_add(other.bytes)?,
            blocks: self.blocks.checked_add(other.blocks)?,
        };
        (sum.bytes <= MAX_BYTES && sum.blocks <= MAX_BLOCKS).then_some(sum)
    }

    /// Nothing: no bytes, no blocks.
    #[must_use]
    #[inline]
    pub const fn is_zero(self) -> bool {
        self.bytes == 0 && self.blocks == 0
    }

    /// `self - other` per part, stopping at 0.
    #[inline]
    pub(crate) fn saturating_sub(self, other: Amount) -> Amount {
        Amount {
            bytes: self.bytes.saturating_sub(other.bytes),
            blocks: self.blocks.saturating_sub(other.blocks),
        }
    }

    /// The smaller of each part.
    pub(crate) fn min(self, other: Amount) -> Amount {
        Amount {
            bytes: self.bytes.min(other.bytes),
            blocks: self.blocks.min(other.blocks),
        }
    }

    /// Whether both parts are at least `other`'s.
    #[inline]
    pub(crate) fn covers(self, other: Amount) -> bool {
        self.bytes >= other.bytes && self.blocks >= other.blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_refuses_out_of_range() {
        let a = Amount {
            bytes: MAX_BYTES,
            blocks: MAX_BLOCKS,
        };
        assert_eq!(Amount::from_word(a.to_word().unwrap()), a);
        assert_eq!(Amount::bytes(MAX_BYTES + 1).to_word(), None);
        assert_eq!(
            Amount {
                bytes: 0,
                blocks: MAX_BLOCKS + 1
            }
            .to_word(),
            None
        );
        assert_eq!(Amount::block(usize::MAX).to_word(), None);
        assert_eq!(Amount::block(MAX_BYTES).checked_add(Amount::bytes(1)), None);
        assert_eq!(
            Amount::block(5).checked_add(Amount::block(6)),
            Some(Amount {
                bytes: 11,
                blocks: 2
            })
        );
        assert!(Amount::block(5).covers(Amount::bytes(5)));
        assert!(!Amount::bytes(5).covers(Amount::block(5)));
    }
}
