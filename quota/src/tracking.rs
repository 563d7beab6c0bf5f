//! The tracking allocator: a `GlobalAlloc` that charges every allocation to
//! an account before asking the inner allocator for memory.
//!
//! This is the only module of the crate with `unsafe` code.
//!
//! # Block layout
//! For a request of `size` bytes aligned to `align`, the inner allocator is
//! asked for `size + h` bytes aligned to `h`, where `h = max(align, 8)` is
//! the header size. The caller's pointer is `base + h`; the 8-byte
//! [`Header`] sits just below it, at `base + h - 8`:
//!
//! ```text
//!  base                      base+h-8     base+h = returned pointer
//!  | padding (h - 8 bytes)   | Header (8) | caller's `size` bytes ... |
//! ```
//!
//! So the overhead is 8 bytes for alignments up to 8 and `align` bytes
//! above, and `size + h` is exactly what is charged. Both pointers stay
//! aligned: `base` is aligned to `h`, which is a multiple of `align` and 8.
//!
//! # Guarantees
//! - Memory is charged before it is taken from the inner allocator and
//!   uncharged after it is given back, so the root account's `current`
//!   never reads below what the heap really holds for accounts.
//! - `dealloc` credits the account in the header, whatever the context, so
//!   memory freed by another thread or after its owner died is credited to
//!   the right account.
//! - `realloc` charges only the size difference to the block's account when
//!   that is the current scope's; a block of another (or a dead) account is
//!   grown by moving it to the current account (allocate, copy, free). If a
//!   charge or the inner reallocation fails the old block is untouched.
//! - A refusal returns null, never panics; see [`Mode`] for when a charge is
//!   refused and when forced.
//! - Charges and credits go through
//!   [`AccountTable::charge_on`] and [`AccountTable::uncharge_on`] on the
//!   CPU [`Context::cpu`] names, so with a table built with per-CPU stocks
//!   most of them touch only that CPU's stock. Nothing above changes: the
//!   header is the same and every report excludes stock.

#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::marker::PhantomData;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::{
    AccountId, AccountTable, Amount, Context, EmergencySnapshot, HeapSnapshot, Limit, Mode,
    RefusalReason,
};

/// Header size for alignments up to 8.
pub const HEADER_SIZE: usize = 8;

/// Alignment of the emergency reserve block.
const EMERGENCY_ALIGN: usize = 16;

/// Tells the allocator which account a block was charged to.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Header {
    account: u32,
    /// `account ^ CHECK`: a mismatch means the header was overwritten.
    check: u32,
}

const CHECK: u32 = 0x5155_4f54; // "QUOT"

impl Header {
    #[inline]
    fn new(account: AccountId) -> Self {
        Self {
            account: account.to_raw(),
            check: account.to_raw() ^ CHECK,
        }
    }

    #[inline]
    fn account(self) -> Option<AccountId> {
        (self.account ^ CHECK == self.check).then_some(AccountId::from_raw(self.account))
    }
}

/// The header slot just below a caller's pointer.
#[allow(
    clippy::cast_ptr_alignment,
    reason = "caller pointers are 8-aligned: see the module docs"
)]
#[inline]
fn header_slot(user: *mut u8) -> *mut Header {
    user.wrapping_sub(HEADER_SIZE).cast::<Header>()
}

/// The inner layout (size + header, aligned to the header size) for a
/// caller's layout, and the header size; `None` if it would overflow.
#[inline]
fn inner_layout(layout: Layout) -> Option<(Layout, usize)> {
    let header = layout.align().max(HEADER_SIZE);
    let size = layout.size().checked_add(header)?;
    Some((Layout::from_size_align(size, header).ok()?, header))
}

/// How big the heap is and how much of it is kept for the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapConfig {
    /// Bytes the inner allocator manages.
    pub size: usize,
    /// Bytes non-kernel accounts may not take: their charges are refused
    /// (or forced, per [`Mode`]) once they would leave less than this.
    pub floor: usize,
    /// Size of the emergency reserve block (0 for none).
    pub emergency: usize,
}

/// A [`HeapConfig`] that does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `floor + emergency` exceeds `size`.
    TooSmall,
    /// The inner allocator could not provide the emergency block.
    NoEmergencyBlock,
    /// The heap was configured already.
    AlreadyConfigured,
}

/// A `GlobalAlloc` wrapper charging every allocation to the account of the
/// current [`Context`]. See the module documentation.
pub struct TrackingAlloc<'t, A: GlobalAlloc, C: Context> {
    inner: A,
    table: &'t AccountTable<'t>,
    size: AtomicUsize,
    floor: AtomicUsize,
    /// Header bytes beyond the first 8 (blocks aligned above 8).
    extra_header_bytes: AtomicUsize,
    emergency_block: AtomicPtr<u8>,
    emergency_capacity: AtomicUsize,
    emergency_releases: AtomicU64,
    emergency_refills: AtomicU64,
    /// `configure` has run.
    configured: core::sync::atomic::AtomicBool,
    context: PhantomData<fn() -> C>,
}

impl<'t, A: GlobalAlloc, C: Context> TrackingAlloc<'t, A, C> {
    /// Wraps `inner`, charging to accounts of `table`. Until
    /// [`configure`](Self::configure) the heap floor does not apply.
    pub const fn new(inner: A, table: &'t AccountTable<'t>) -> Self {
        Self {
            inner,
            table,
            size: AtomicUsize::new(0),
            floor: AtomicUsize::new(0),
            extra_header_bytes: AtomicUsize::new(0),
            emergency_block: AtomicPtr::new(ptr::null_mut()),
            emergency_capacity: AtomicUsize::new(0),
            emergency_releases: AtomicU64::new(0),
            emergency_refills: AtomicU64::new(0),
            configured: core::sync::atomic::AtomicBool::new(false),
            context: PhantomData,
        }
    }

    /// The account table.
    pub fn table(&self) -> &'t AccountTable<'t> {
        self.table
    }

    /// The inner allocator.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// Sets the heap size, the floor and the emergency reserve, and takes
    /// the reserve block from the inner allocator. Non-kernel accounts may
    /// then bring the heap's charged bytes to `size - floor - emergency`.
    /// Only the first successful call configures: the reserve's size may
    /// not change under a block taken with it.
    ///
    /// # Errors
    /// [`ConfigError::TooSmall`] if the parts do not fit (nothing is set),
    /// [`ConfigError::AlreadyConfigured`] on a second call (nothing
    /// changes), [`ConfigError::NoEmergencyBlock`] if the block cannot be
    /// had (the floor is set; there is no reserve).
    pub fn configure(&self, config: HeapConfig) -> Result<(), ConfigError> {
        let budget = config
            .size
            .checked_sub(config.floor)
            .and_then(|b| b.checked_sub(config.emergency))
            .ok_or(ConfigError::TooSmall)?;
        if self.configured.swap(true, Relaxed) {
            return Err(ConfigError::AlreadyConfigured);
        }
        self.size.store(config.size, Relaxed);
        self.floor.store(config.floor, Relaxed);
        self.table.set_heap_budget(Limit::Bytes(budget));
        self.emergency_capacity.store(config.emergency, Relaxed);
        if config.emergency == 0 || self.take_emergency_block() {
            Ok(())
        } else {
            Err(ConfigError::NoEmergencyBlock)
        }
    }

    fn emergency_layout(&self) -> Option<Layout> {
        let capacity = self.emergency_capacity.load(Relaxed);
        if capacity == 0 {
            return None;
        }
        Layout::from_size_align(capacity, EMERGENCY_ALIGN).ok()
    }

    fn take_emergency_block(&self) -> bool {
        let Some(layout) = self.emergency_layout() else {
            return false;
        };
        // SAFETY: `layout` has a non-zero size (capacity > 0).
        let block = unsafe { self.inner.alloc(layout) };
        if block.is_null() {
            return false;
        }
        if self
            .emergency_block
            .compare_exchange(ptr::null_mut(), block, Relaxed, Relaxed)
            .is_err()
        {
            // SAFETY: `block` was just allocated by `inner` with `layout` and
            // was not published anywhere.
            unsafe { self.inner.dealloc(block, layout) };
        }
        true
    }

    fn release_emergency_block(&self) -> bool {
        let block = self.emergency_block.swap(ptr::null_mut(), Relaxed);
        let Some(layout) = self.emergency_layout() else {
            return false;
        };
        if block.is_null() {
            return false;
        }
        // SAFETY: a non-null `emergency_block` was allocated by `inner` with
        // the current capacity (set once, by the first `configure`, before
        // any block is taken), and the swap gave this call sole ownership.
        unsafe { self.inner.dealloc(block, layout) };
        true
    }

    /// Gives the emergency block back to the heap, so teardown after an
    /// out-of-memory can proceed. Returns whether a block was held.
    pub fn release_emergency(&self) -> bool {
        let released = self.release_emergency_block();
        if released {
            let _ = self
                .emergency_releases
                .fetch_update(Relaxed, Relaxed, |n| n.checked_add(1));
        }
        released
    }

    /// Takes the emergency block again once pressure has passed: when the
    /// bytes charged leave room for it above the floor. Returns whether
    /// the block is held afterwards.
    pub fn refill_emergency(&self) -> bool {
        if !self.emergency_block.load(Relaxed).is_null() {
            return true;
        }
        let capacity = self.emergency_capacity.load(Relaxed);
        let room = self
            .size
            .load(Relaxed)
            .saturating_sub(self.floor.load(Relaxed));
        let used = self.table.root_current();
        if capacity == 0 || used.saturating_add(capacity) > room || !self.take_emergency_block() {
            return false;
        }
        let _ = self
            .emergency_refills
            .fetch_update(Relaxed, Relaxed, |n| n.checked_add(1));
        true
    }

    /// The heap as this allocator sees it.
    pub fn snapshot(&self) -> HeapSnapshot {
        let size = self.size.load(Relaxed);
        let used = self.table.root_current();
        let capacity = self.emergency_capacity.load(Relaxed);
        let held = if self.emergency_block.load(Relaxed).is_null() {
            0
        } else {
            capacity
        };
        let allocations = self.table.root_usage().blocks;
        HeapSnapshot {
            size,
            used,
            free: size.saturating_sub(used).saturating_sub(held),
            floor: self.floor.load(Relaxed),
            emergency: EmergencySnapshot {
                capacity,
                held,
                releases: self.emergency_releases.load(Relaxed),
                refills: self.emergency_refills.load(Relaxed),
            },
            header_bytes: allocations
                .saturating_mul(HEADER_SIZE)
                .saturating_add(self.extra_header_bytes.load(Relaxed)),
            allocations,
            table: self.table.stats(),
        }
    }

    /// Asks `inner` for a block; if it has none and the caller cannot handle
    /// failure, gives the emergency block back and asks once more.
    fn inner_alloc(&self, layout: Layout, zeroed: bool, mode: Mode) -> *mut u8 {
        let attempt = || {
            if zeroed {
                // SAFETY: `layout` comes from `inner_layout`: its size is at
                // least the header size, never zero.
                unsafe { self.inner.alloc_zeroed(layout) }
            } else {
                // SAFETY: as above.
                unsafe { self.inner.alloc(layout) }
            }
        };
        let block = attempt();
        if block.is_null() && mode != Mode::Fallible && self.release_emergency() {
            return attempt();
        }
        block
    }

    /// Counts header bytes beyond the first 8 (the root's block count
    /// covers those); only blocks aligned above 8 have them.
    #[inline]
    fn count_block(&self, header: usize) {
        if header > HEADER_SIZE {
            self.extra_header_bytes
                .fetch_add(header.wrapping_sub(HEADER_SIZE), Relaxed);
        }
    }

    #[inline]
    fn uncount_block(&self, header: usize) {
        if header > HEADER_SIZE {
            self.extra_header_bytes
                .fetch_sub(header.wrapping_sub(HEADER_SIZE), Relaxed);
        }
    }

    #[inline]
    fn allocate(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        let Some((inner, header)) = inner_layout(layout) else {
            return ptr::null_mut();
        };
        let scope = C::scope();
        let cpu = C::cpu();
        let amount = Amount::block(inner.size());
        let charged = match self
            .table
            .charge_on(cpu, scope.account, amount, scope.mode())
        {
            Ok(charged) => charged,
            Err(refusal) => {
                C::refused(refusal);
                return ptr::null_mut();
            }
        };
        if charged.forced {
            C::kill_pending(charged.account);
        }
        let base = self.inner_alloc(inner, zeroed, scope.mode());
        if base.is_null() {
            self.table.uncharge_on(cpu, charged.account, amount);
            return ptr::null_mut();
        }
        self.count_block(header);
        // `base` is a fresh block of `size + header` bytes aligned to
        // `header` (≥ 8): `user` is within it (or one past its end when
        // `size` is 0) and the header slot below `user` is inside it.
        let user = base.wrapping_add(header);
        // SAFETY: the header slot is in bounds, 8-aligned (see above), and
        // not yet shared with anyone.
        unsafe { header_slot(user).write(Header::new(charged.account)) };
        user
    }

    /// Reads the header below a caller's pointer.
    ///
    /// # Safety
    /// `ptr` must have been returned by this allocator and not freed.
    #[inline]
    unsafe fn header(ptr: *mut u8) -> Header {
        // SAFETY: by the caller's contract `ptr` came from `allocate`, which
        // wrote an 8-aligned header in the 8 bytes below it.
        unsafe { header_slot(ptr).read() }
    }

    /// Moves a block to the current context: allocate anew (charged to the
    /// current scope), copy, free the old block (crediting its account).
    /// Used when a block grows and its account is gone (stale), or is not
    /// the current scope's (whoever grows a block pays for it).
    ///
    /// # Safety
    /// As for [`GlobalAlloc::realloc`].
    unsafe fn realloc_by_copy(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        let new = self.allocate(new_layout, false);
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct, and at least
            // `min(old, new)` bytes long.
            unsafe { ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` is a live block of ours with layout `layout`,
            // and nothing refers to it after this.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

impl<A: GlobalAlloc, C: Context> Drop for TrackingAlloc<'_, A, C> {
    /// Gives the emergency block back. Blocks still allocated are the
    /// callers' to free; a `static` global allocator is never dropped.
    fn drop(&mut self) {
        self.release_emergency_block();
    }
}

// SAFETY: blocks come from `inner`, which upholds `GlobalAlloc`'s contract;
// each caller pointer is `base + header` inside a block of `size + header`
// bytes aligned to `max(align, 8)`, so it is aligned to the caller's
// `align` and has `size` usable bytes. `dealloc` and `realloc` recompute the
// same inner layout from the caller's layout, as `GlobalAlloc` requires the
// caller to pass the layout the block was allocated with.
unsafe impl<A: GlobalAlloc, C: Context> GlobalAlloc for TrackingAlloc<'_, A, C> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocate(layout, false)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.allocate(layout, true)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some((inner, header)) = inner_layout(layout) else {
            return;
        };
        // SAFETY: the caller passes a live block of ours with its layout.
        let owner = unsafe { Self::header(ptr) }.account();
        // SAFETY: `ptr - header` is the block's base, allocated by `inner`
        // with exactly `inner` (recomputed from the same caller layout).
        unsafe { self.inner.dealloc(ptr.wrapping_sub(header), inner) };
        self.uncount_block(header);
        match owner {
            Some(account) => {
                self.table
                    .uncharge_on(C::cpu(), account, Amount::block(inner.size()));
            }
            None => self.table.record_accounting_error(),
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some((old_inner, header)) = inner_layout(layout) else {
            return ptr::null_mut();
        };
        let Some(new_total) = new_size.checked_add(header) else {
            return ptr::null_mut();
        };
        if Layout::from_size_align(new_total, header).is_err() {
            return ptr::null_mut();
        }
        // SAFETY: the caller passes a live block of ours with its layout.
        let Some(account) = (unsafe { Self::header(ptr) }).account() else {
            self.table.record_accounting_error();
            return ptr::null_mut();
        };
        let old_total = old_inner.size();
        let scope = C::scope();
        let cpu = C::cpu();
        let mode = scope.mode();
        let grow = new_total.saturating_sub(old_total);
        if grow > 0 && account != scope.account {
            // Growing a block charged to someone else: whoever grows it
            // pays for the new block, and a forced charge flags them, not
            // the block's first owner.
            // SAFETY: forwarded from this function's own contract.
            return unsafe { self.realloc_by_copy(ptr, layout, new_size) };
        }
        if grow > 0 {
            match self
                .table
                .charge_exact_on(cpu, account, Amount::bytes(grow), mode)
            {
                Ok(charged) if charged.forced => C::kill_pending(account),
                Ok(_) => {}
                Err(r) if r.reason == RefusalReason::Stale => {
                    // SAFETY: forwarded from this function's own contract.
                    return unsafe { self.realloc_by_copy(ptr, layout, new_size) };
                }
                Err(refusal) => {
                    C::refused(refusal);
                    return ptr::null_mut();
                }
            }
        }
        // SAFETY: `ptr - header` is the block's base, allocated by `inner`
        // with `old_inner`; `new_total` is non-zero and, as checked above,
        // fits a valid layout with the same alignment.
        let attempt = || unsafe {
            self.inner
                .realloc(ptr.wrapping_sub(header), old_inner, new_total)
        };
        let mut base = attempt();
        if base.is_null() && mode != Mode::Fallible && self.release_emergency() {
            base = attempt();
        }
        if base.is_null() {
            if grow > 0 {
                self.table.uncharge_on(cpu, account, Amount::bytes(grow));
            }
            return ptr::null_mut();
        }
        let shrink = old_total.saturating_sub(new_total);
        if shrink > 0 {
            self.table.uncharge_on(cpu, account, Amount::bytes(shrink));
        }
        // `base` is the moved block of `new_size + header` bytes; its first
        // `min(old, new)` bytes, header included, were copied, so `base +
        // header` is the caller's data.
        base.wrapping_add(header)
    }
}

#[cfg(test)]
#[path = "tracking_tests.rs"]
mod tests;
