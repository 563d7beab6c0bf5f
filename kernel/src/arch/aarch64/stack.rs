//! Kernel thread stacks with an unmapped guard page beneath them.
//!
//! A stack is one heap block (charged, like any allocation, to the scope
//! that creates it) holding, from low to high addresses: up to a page of
//! alignment slack, the guard page, then the stack itself. While the stack
//! lives its guard page is unmapped, so a stack that grows past its end
//! faults at once, on the guard page, instead of overwriting the heap
//! block below. The fault handler recognises the address
//! ([`GuardedStack::guard_contains`]). Dropping the stack maps the page
//! back before the block returns to the heap.
//!
//! Outside the paged part of RAM ([`super::mmu::PAGED_BYTES`]) no page can
//! be unmapped; such a stack has no guard and relies on the canary word at
//! its bottom, checked at every switch.

use alloc::alloc::{Layout, alloc, dealloc};
use core::ptr::NonNull;

use super::mmu::{self, PAGE};

/// Written at the bottom of every stack.
const CANARY: u128 = 0x5354_4143_4b5f_4341_4e41_5259_2121_2121;

/// A thread stack and its guard page.
pub struct GuardedStack {
    block: NonNull<u8>,
    layout: Layout,
    /// The guard page's address.
    guard: usize,
    /// Whether the guard page is unmapped.
    guarded: bool,
}

// SAFETY: a `GuardedStack` owns its heap block; nothing in it is tied to
// the thread or CPU that created it.
unsafe impl Send for GuardedStack {}
// SAFETY: shared references only read addresses and, volatile, the canary.
unsafe impl Sync for GuardedStack {}

impl GuardedStack {
    /// A stack of at least `bytes` (a multiple of 16), or `None` if the
    /// allocator refuses the block (run this in a `fallible` scope to get
    /// a refusal rather than a forced charge).
    pub fn new(bytes: usize) -> Option<GuardedStack> {
        let size = bytes
            .checked_next_multiple_of(16)?
            .checked_add(2 * PAGE + 16)?;
        let layout = Layout::from_size_align(size, 16).ok()?;
        // SAFETY: `layout` has a non-zero size.
        let block = NonNull::new(unsafe { alloc(layout) })?;
        let guard = (block.as_ptr() as usize).next_multiple_of(PAGE);
        // The block is ours alone; the guard page lies inside it (it starts
        // at most a page in and ends before `bytes` of stack above it).
        let guarded = mmu::unmap_page(guard);
        let stack = GuardedStack {
            block,
            layout,
            guard,
            guarded,
        };
        let bottom = stack.bottom() as *mut u128;
        // SAFETY: `bottom` is 16-aligned (a page boundary) and inside the
        // block, above the guard page, so mapped and ours to write.
        unsafe { bottom.write_volatile(CANARY) };
        Some(stack)
    }

    /// The lowest usable address (just above the guard page).
    fn bottom(&self) -> usize {
        self.guard + PAGE
    }

    /// The initial stack pointer: the block's end, rounded down to 16.
    pub fn top(&self) -> usize {
        (self.block.as_ptr() as usize + self.layout.size()) & !15
    }

    /// Bytes of the heap block (what the stack is charged, before the
    /// allocator's header).
    pub fn block_bytes(&self) -> usize {
        self.layout.size()
    }

    /// Whether `addr` is in this stack's guard page (a fault there is an
    /// overflow).
    pub fn guard_contains(&self, addr: usize) -> bool {
        self.guarded && (self.guard..self.guard + PAGE).contains(&addr)
    }

    /// Whether the bottom word still holds the canary.
    pub fn canary_intact(&self) -> bool {
        let bottom = self.bottom() as *const u128;
        // SAFETY: `bottom` is mapped, aligned and inside the block; volatile
        // because the hardware, not Rust, writes the stack.
        unsafe { bottom.read_volatile() == CANARY }
    }
}

impl Drop for GuardedStack {
    fn drop(&mut self) {
        if self.guarded {
            mmu::map_page(self.guard);
        }
        // SAFETY: `block` was allocated with `layout` by `new`, and its
        // guard page is mapped again, so the allocator may use all of it.
        unsafe { dealloc(self.block.as_ptr(), self.layout) };
    }
}
