//! Generation-checked account ids.
//!
//! An [`AccountId`] packs a slot index (low 16 bits) and the slot's
//! generation (high 16 bits) into a `u32`, small enough that an allocation
//! header can hold it. A slot's generation advances each time the slot is
//! released, so an id kept past its account's release no longer matches.

/// Identifies one account in an [`AccountTable`](crate::AccountTable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(u32);

impl AccountId {
    /// The root account (slot 0), which always exists and is a kernel account.
    pub const ROOT: AccountId = AccountId(0);

    pub(crate) const fn new(index: u16, generation: u16) -> Self {
        Self(((generation as u32) << 16) | index as u32)
    }

    /// The slot index.
    #[must_use]
    pub const fn index(self) -> usize {
        (self.0 & 0xffff) as usize
    }

    /// The generation of the slot this id was issued for.
    #[must_use]
    pub const fn generation(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The packed form, as stored in allocation headers.
    #[must_use]
    pub const fn to_raw(self) -> u32 {
        self.0
    }

    /// An id from its packed form. The result may name no live account;
    /// every table operation checks.
    #[must_use]
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::AccountId;

    #[test]
    fn packs_index_and_generation() {
        let id = AccountId::new(0x1234, 0xbeef);
        assert_eq!(id.index(), 0x1234);
        assert_eq!(id.generation(), 0xbeef);
        assert_eq!(AccountId::from_raw(id.to_raw()), id);
        assert_eq!(AccountId::ROOT.index(), 0);
    }
}
