//! Unit tests of the tracking allocator over the system allocator. They
//! read and write headers, so they are the ones to run under Miri:
//! `cargo +nightly miri test -p quota --lib tracking`.

#![allow(
    clippy::many_single_char_names,
    reason = "tests name the table `t` and its slots `s`"
)]

use core::cell::{Cell, RefCell};
use std::alloc::System;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::*;
use crate::{
    Account, AccountFlags, Limit, NewAccount, Refusal, Scope, Slot, Stock, charge_to, fallible,
};

thread_local! {
    static SCOPE: Cell<Scope> = const { Cell::new(Scope::ROOT) };
    static KILLED: RefCell<Vec<AccountId>> = const { RefCell::new(Vec::new()) };
    static REFUSED: RefCell<Vec<Refusal>> = const { RefCell::new(Vec::new()) };
}

/// A per-thread context that records kill-pending notifications.
struct Recording;

impl Context for Recording {
    fn scope() -> Scope {
        SCOPE.with(Cell::get)
    }
    fn replace(scope: Scope) -> Scope {
        SCOPE.with(|c| c.replace(scope))
    }
    fn kill_pending(account: AccountId) {
        KILLED.with(|k| k.borrow_mut().push(account));
    }
    fn refused(refusal: Refusal) {
        REFUSED.with(|r| r.borrow_mut().push(refusal));
    }
}

fn refused() -> Vec<Refusal> {
    REFUSED.with(|r| r.borrow().clone())
}

fn killed() -> Vec<AccountId> {
    KILLED.with(|k| k.borrow().clone())
}

/// The system allocator with a byte budget, to run the inner allocator dry.
struct Limited {
    cap: AtomicUsize,
    used: AtomicUsize,
}

impl Limited {
    fn new(cap: usize) -> Self {
        Self {
            cap: AtomicUsize::new(cap),
            used: AtomicUsize::new(0),
        }
    }
}

// SAFETY: forwards to `System` and only adds a refusal.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let cap = self.cap.load(Relaxed);
        if self
            .used
            .fetch_update(Relaxed, Relaxed, |u| {
                u.checked_add(layout.size()).filter(|n| *n <= cap)
            })
            .is_err()
        {
            return ptr::null_mut();
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.used.fetch_sub(layout.size(), Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// A block handed to another thread.
struct SendPtr(*mut u8);

// SAFETY: the block is plain bytes owned by whoever holds the `SendPtr`.
unsafe impl Send for SendPtr {}

const USER: NewAccount = NewAccount {
    flags: AccountFlags::empty(),
    tag: 0,
};

fn slots() -> Vec<Slot> {
    (0..8).map(|_| Slot::new()).collect()
}

/// The `n` bytes at `p`.
///
/// # Safety
/// `p` must point to `n` initialised bytes that outlive the returned slice.
unsafe fn bytes<'a>(p: *const u8, n: usize) -> &'a [u8] {
    // SAFETY: the caller's contract.
    unsafe { core::slice::from_raw_parts(p, n) }
}

fn current(t: &AccountTable<'_>, a: &Account<'_>) -> usize {
    t.snapshot(a.id()).unwrap().current
}

fn alloc<A: GlobalAlloc>(heap: &A, size: usize, align: usize) -> *mut u8 {
    // SAFETY: test layouts have non-zero size.
    unsafe { heap.alloc(Layout::from_size_align(size, align).unwrap()) }
}

fn free<A: GlobalAlloc>(heap: &A, p: *mut u8, size: usize, align: usize) {
    // SAFETY: `p` came from `alloc` on `heap` with this layout.
    unsafe { heap.dealloc(p, Layout::from_size_align(size, align).unwrap()) }
}

#[test]
fn charges_size_plus_header_and_honours_every_alignment() {
    let s = slots();
    let t = AccountTable::new(&s);
    let heap = TrackingAlloc::<_, Recording>::new(System, &t);
    let a = t.create(None, USER).unwrap();
    for shift in 0..13 {
        let align = 1usize << shift;
        for size in [1, 7, 8, 100, 4096] {
            let p = charge_to::<Recording, _>(&a, || alloc(&heap, size, align));
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0, "align {align}");
            // SAFETY: `p` has `size` writable bytes.
            unsafe { p.write_bytes(0xa5, size) };
            let header = align.max(HEADER_SIZE);
            assert_eq!(current(&t, &a), size + header, "size {size} align {align}");
            assert_eq!(heap.snapshot().header_bytes, header);
            free(&heap, p, size, align);
            assert_eq!(current(&t, &a), 0);
        }
    }
    assert_eq!(heap.snapshot().allocations, 0);
    assert_eq!(t.stats().accounting_errors, 0);
}

#[test]
fn a_refusal_is_reported_to_the_context_with_the_level_that_refused() {
    let s = slots();
    let t = AccountTable::new(&s);
    let heap = TrackingAlloc::<_, Recording>::new(System, &t);
    let session = t.create(None, USER).unwrap();
    let process = t.create(Some(&session), USER).unwrap();
    t.set_max(session.id(), Limit::Bytes(100)).unwrap();
    let p = charge_to::<Recording, _>(&process, || {
        fallible::<Recording, _>(|| alloc(&heap, 64, 8))
    });
    assert!(!p.is_null());
    assert!(refused().is_empty());
    // Growing in place and a fresh block are both refused by the session.
    let grown = charge_to::<Recording, _>(&process, || {
        // SAFETY: `p` is a live 64-byte block of this heap.
        fallible::<Recording, _>(|| unsafe {
            heap.realloc(p, Layout::from_size_align(64, 8).unwrap(), 128)
        })
    });
    assert!(grown.is_null());
    let q = charge_to::<Recording, _>(&process, || {
        fallible::<Recording, _>(|| alloc(&heap, 64, 8))
    });
    assert!(q.is_null());
    let limit = Refusal {
        account: session.id(),
        reason: RefusalReason::Limit,
    };
    assert_eq!(refused(), [limit, limit]);
    free(&heap, p, 64, 8);
    assert_eq!(current(&t, &process), 0);
}

#[test]
fn free_from_another_context_credits_the_owner() {
    let s = slots();
    let t = AccountTable::new(&s);
    let heap = TrackingAlloc::<_, Recording>::new(System, &t);
    let a = t.create(None, USER).unwrap();
    let b = t.create(None, USER).unwrap();
    let p = SendPtr(charge_to::<Recording, _>(&a, || alloc(&heap, 100, 8)));
    // Freed by another thread, in b's scope.
    std::thread::scope(|sc| {
        sc.spawn(|| charge_to::<Recording, _>(&b, || free(&heap, { p }.0, 100, 8)));
    });
    assert_eq!(
        (current(&t, &a), current(&t, &b), t.root_current()),
        (0, 0, 0)
    );
}

#[test]
fn late_free_after_the_owner_died_releases_the_account() {
    let s = slots();
    let t = AccountTable::new(&s);
    let heap = TrackingAlloc::<_, Recording>::new(System, &t);
    let a = t.create(None, USER).unwrap();
    let id = a.id();
    let p = charge_to::<Recording, _>(&a, || alloc(&heap, 40, 8));
    drop(a);
    assert_eq!(t.snapshot(id).unwrap().current, 48);
    free(&heap, p, 40, 8);
    assert!(t.snapshot(id).is_none(), "released by the last free");
    assert_eq!(t.root_current(), 0);
}

#[test]
fn fallible_refuses_and_infallible_is_forced_then_refused() {
    let s = slots();
    let t = AccountTable::new(&s);
    let heap = TrackingAlloc::<_, Recording>::new(System, &t);
    let a = t.create(None, USER).unwrap();
    t.set_max(a.id(), Limit::Bytes(1000)).unwrap();
    t.set_overdraft(a.id(), 200).unwrap();
    charge_to::<Recording, _>(&a, || {
        assert!(fallible::<Recording, _>(|| alloc(&heap, 993, 8)).is_null());
        assert_eq!(t.snapshot(a.id()).unwrap().events.max, 1);
        let p = alloc(&heap, 992, 8);
        assert!(!p.is_null());
        assert!(killed().is_empty());
        let q = alloc(&heap, 100, 8); // forced: 1100 <= 1200
        assert!(!q.is_null());
        assert_eq!(killed(), [a.id()]);
        assert!(t.kill_pending(a.id()));
        assert!(alloc(&heap, 100, 8).is_null(), "beyond the overdraft");
        free(&heap, p, 992, 8);
        free(&heap, q, 100, 8);
    });
    assert_eq!(current(&t, &a), 0);
    assert_eq!(t.snapshot(a.id()).unwrap().events.forced, 1);
}

#[test]
fn realloc_charges_only_the_delta_and_keeps_the_block_on_refusal() {
    let s = slots();
    let t = AccountTable::new(&s);
    let heap = TrackingAlloc::<_, Recording>::new(System, &t);
    let a = t.create(None, USER).unwrap();
    t.set_max(a.id(), Limit::Bytes(1000)).unwrap();
    let layout = Layout::from_size_align(100, 8).unwrap();
    charge_to::<Recording, _>(&a, || {
        let p = alloc(&heap, 100, 8);
        // SAFETY: `p` has 100 bytes.
        unsafe { p.write_bytes(7, 100) };
        // Grow within the limit: only the delta is charged.
        // SAFETY: `p` is live with `layout`.
        let p = unsafe { heap.realloc(p, layout, 500) };
        assert!(!p.is_null());
        assert_eq!(current(&t, &a), 508);
        // Grow across the limit in a fallible scope: refused, block intact.
        let layout = Layout::from_size_align(500, 8).unwrap();
        // SAFETY: as above.
        let q = fallible::<Recording, _>(|| unsafe { heap.realloc(p, layout, 2000) });
        assert!(q.is_null());
        assert_eq!(current(&t, &a), 508);
        // SAFETY: `p` is still live and its first 100 bytes were written.
        assert!(unsafe { bytes(p, 100) }.iter().all(|b| *b == 7));
        // Shrink: the difference is credited.
        // SAFETY: as above.
        let p = unsafe { heap.realloc(p, layout, 10) };
        assert_eq!(current(&t, &a), 18);
        // SAFETY: the first 10 bytes survive a shrink.
        assert!(unsafe { bytes(p, 10) }.iter().all(|b| *b == 7));
        // Grow past max in an infallible scope: forced and flagged.
        let layout = Layout::from_size_align(10, 8).unwrap();
        // SAFETY: as above.
        let p = unsafe { heap.realloc(p, layout, 1100) };
        assert!(!p.is_null());
        assert_eq!(killed(), [a.id()]);
        free(&heap, p, 1100, 8);
    });
    assert_eq!(current(&t, &a), 0);
}

#[test]
fn realloc_of_a_dead_accounts_block_moves_it_to_the_current_scope() {
    let s = slots();
    let t = AccountTable::new(&s);
    let heap = TrackingAlloc::<_, Recording>::new(System, &t);
    let a = t.create(None, USER).unwrap();
    let b = t.create(None, USER).unwrap();
    let id = a.id();
    let p = charge_to::<Recording, _>(&a, || alloc(&heap, 16, 8));
    // SAFETY: 16 writable bytes.
    unsafe { p.write_bytes(3, 16) };
    drop(a);
    let layout = Layout::from_size_align(16, 8).unwrap();
    // SAFETY: `p` is live with `layout`.
    let q = charge_to::<Recording, _>(&b, || unsafe { heap.realloc(p, layout, 64) });
    assert!(!q.is_null());
    assert!(
        t.snapshot(id).is_none(),
        "the dead account was credited and released"
    );
    assert_eq!(current(&t, &b), 72);
    // SAFETY: the first 16 bytes were copied.
    assert!(unsafe { bytes(q, 16) }.iter().all(|x| *x == 3));
    free(&heap, q, 64, 8);
    assert_eq!(t.root_current(), 0);
}

#[test]
fn sizes_that_would_overflow_are_refused_not_wrapped() {
    let s = slots();
    let t = AccountTable::new(&s);
    let heap = TrackingAlloc::<_, Recording>::new(System, &t);
    let biggest = isize::MAX as usize - 7; // a valid Layout; + header is not
    let layout = Layout::from_size_align(biggest, 8).unwrap();
    // SAFETY: a valid non-zero layout.
    assert!(unsafe { heap.alloc(layout) }.is_null());
    let p = alloc(&heap, 8, 8);
    let small = Layout::from_size_align(8, 8).unwrap();
    // The largest size `realloc`'s contract allows (it rounds up to a valid
    // layout); adding the header does not fit.
    let largest = isize::MAX as usize - 7;
    // SAFETY: `p` is live with `small`; `largest` rounded to 8 is a valid size.
    assert!(unsafe { heap.realloc(p, small, largest) }.is_null());
    assert_eq!(t.root_current(), 16, "nothing charged by the refusals");
    free(&heap, p, 8, 8);
    assert_eq!(t.root_current(), 0);
}

#[test]
fn the_heap_floor_stops_users_but_not_the_kernel() {
    let s = slots();
    let t = AccountTable::new(&s);
    let heap = TrackingAlloc::<_, Recording>::new(System, &t);
    heap.configure(HeapConfig {
        size: 10_000,
        floor: 4_000,
        emergency: 0,
    })
    .unwrap();
    let user = t.create(None, USER).unwrap();
    let kernel = t
        .create(
            None,
            NewAccount {
                flags: AccountFlags::KERNEL,
                tag: 0,
            },
        )
        .unwrap();
    let p = charge_to::<Recording, _>(&user, || {
        fallible::<Recording, _>(|| alloc(&heap, 5_992, 8))
    });
    assert!(!p.is_null());
    let q = charge_to::<Recording, _>(&user, || fallible::<Recording, _>(|| alloc(&heap, 1, 8)));
    assert!(q.is_null());
    assert_eq!(t.stats().floor_refusals, 1);
    let k = charge_to::<Recording, _>(&kernel, || {
        fallible::<Recording, _>(|| alloc(&heap, 3_000, 8))
    });
    assert!(!k.is_null(), "the floor is the kernel's");
    let snap = heap.snapshot();
    assert_eq!((snap.used, snap.free, snap.floor), (9_008, 992, 4_000));
    assert_eq!(
        (snap.table.kernel_bytes, snap.table.user_bytes),
        (3_008, 6_000),
        "{:#?}",
        t.snapshots().collect::<Vec<_>>()
    );
    free(&heap, p, 5_992, 8);
    free(&heap, k, 3_000, 8);
    assert_eq!(
        heap.configure(HeapConfig {
            size: 10,
            floor: 8,
            emergency: 8
        }),
        Err(ConfigError::TooSmall)
    );
    assert_eq!(
        heap.configure(HeapConfig {
            size: 20_000,
            floor: 0,
            emergency: 64
        }),
        Err(ConfigError::AlreadyConfigured)
    );
    let snap = heap.snapshot();
    assert_eq!(
        (snap.size, snap.emergency.capacity),
        (10_000, 0),
        "a second configure changed nothing"
    );
}

#[test]
fn the_emergency_block_rescues_an_infallible_allocation_and_refills() {
    let s = slots();
    let t = AccountTable::new(&s);
    let heap = TrackingAlloc::<_, Recording>::new(Limited::new(8_192), &t);
    heap.configure(HeapConfig {
        size: 8_192,
        floor: 0,
        emergency: 2_048,
    })
    .unwrap();
    assert_eq!(heap.snapshot().emergency.held, 2_048);
    let k = t
        .create(
            None,
            NewAccount {
                flags: AccountFlags::KERNEL,
                tag: 0,
            },
        )
        .unwrap();
    // Fill the inner allocator: kernel charges are not limited by quota.
    let big = charge_to::<Recording, _>(&k, || alloc(&heap, 6_000, 8));
    assert!(!big.is_null());
    // A fallible request does not touch the reserve.
    let f = charge_to::<Recording, _>(&k, || fallible::<Recording, _>(|| alloc(&heap, 1_000, 8)));
    assert!(f.is_null());
    assert_eq!(heap.snapshot().emergency.releases, 0);
    assert_eq!(
        t.root_current(),
        6_008,
        "a failed inner allocation is uncharged"
    );
    // An infallible one gets it.
    let rescued = charge_to::<Recording, _>(&k, || alloc(&heap, 1_000, 8));
    assert!(!rescued.is_null());
    let e = heap.snapshot().emergency;
    assert_eq!((e.held, e.releases), (0, 1));
    // No refill while pressure lasts, then a refill once it has passed.
    assert!(!heap.refill_emergency());
    free(&heap, big, 6_000, 8);
    assert!(heap.refill_emergency());
    let e = heap.snapshot().emergency;
    assert_eq!((e.held, e.refills), (2_048, 1));
    free(&heap, rescued, 1_000, 8);
    assert_eq!(t.root_current(), 0);
}

#[test]
fn zeroed_allocations_are_zero_and_corrupt_headers_are_counted() {
    let s = slots();
    let t = AccountTable::new(&s);
    let heap = TrackingAlloc::<_, Recording>::new(System, &t);
    let layout = Layout::from_size_align(256, 32).unwrap();
    // SAFETY: a valid non-zero layout.
    let p = unsafe { heap.alloc_zeroed(layout) };
    // SAFETY: 256 readable bytes.
    assert!(unsafe { bytes(p, 256) }.iter().all(|b| *b == 0));
    // Simulate an underflowing write into the header.
    // SAFETY: the 8 bytes below `p` are the header, inside the block.
    unsafe { p.wrapping_sub(4).write(0xff) };
    // SAFETY: `p` is live with `layout`.
    unsafe { heap.dealloc(p, layout) };
    assert_eq!(t.stats().accounting_errors, 1);
    assert_eq!(t.root_current(), 288, "a corrupt header credits nothing");
}

#[test]
fn growing_another_accounts_block_moves_it_to_the_grower() {
    let s = slots();
    let t = AccountTable::new(&s);
    let heap = TrackingAlloc::<_, Recording>::new(System, &t);
    let owner = t.create(None, USER).unwrap();
    let grower = t.create(None, USER).unwrap();
    t.set_max(grower.id(), Limit::Bytes(100)).unwrap();
    t.set_overdraft(grower.id(), 1000).unwrap();
    let p = charge_to::<Recording, _>(&owner, || alloc(&heap, 16, 8));
    // SAFETY: 16 writable bytes.
    unsafe { p.write_bytes(9, 16) };
    let layout = Layout::from_size_align(16, 8).unwrap();
    // SAFETY: `p` is live with `layout`.
    let q = charge_to::<Recording, _>(&grower, || unsafe { heap.realloc(p, layout, 200) });
    assert!(!q.is_null());
    assert_eq!((current(&t, &owner), current(&t, &grower)), (0, 208));
    assert_eq!(
        killed(),
        [grower.id()],
        "the grower went over its limit, not the owner"
    );
    // SAFETY: the first 16 bytes were copied.
    assert!(unsafe { bytes(q, 16) }.iter().all(|x| *x == 9));
    // Shrinking someone else's block happens in place and credits its owner.
    let layout = Layout::from_size_align(200, 8).unwrap();
    // SAFETY: `q` is live with `layout`.
    let r = charge_to::<Recording, _>(&owner, || unsafe { heap.realloc(q, layout, 50) });
    assert_eq!((current(&t, &owner), current(&t, &grower)), (0, 58));
    free(&heap, r, 50, 8);
    assert_eq!(t.root_current(), 0);
}

#[test]
fn realloc_of_blocks_aligned_above_the_header_keeps_alignment_and_data() {
    let s = slots();
    let t = AccountTable::new(&s);
    let heap = TrackingAlloc::<_, Recording>::new(System, &t);
    for align in [16usize, 64, 4096] {
        let p = alloc(&heap, 24, align);
        // SAFETY: 24 writable bytes.
        unsafe { p.write_bytes(5, 24) };
        let small = Layout::from_size_align(24, align).unwrap();
        // SAFETY: `p` is live with `small`.
        let q = unsafe { heap.realloc(p, small, 4000) };
        assert!(!q.is_null());
        assert_eq!(q as usize % align, 0, "align {align}");
        assert_eq!(t.root_current(), 4000 + align, "header of {align} bytes");
        // SAFETY: the first 24 bytes were kept.
        assert!(unsafe { bytes(q, 24) }.iter().all(|b| *b == 5));
        let big = Layout::from_size_align(4000, align).unwrap();
        // SAFETY: `q` is live with `big`.
        let r = unsafe { heap.realloc(q, big, 8) };
        assert!(!r.is_null());
        assert_eq!(r as usize % align, 0, "align {align}");
        assert_eq!(t.root_current(), 8 + align);
        // SAFETY: the first 8 bytes survive a shrink.
        assert!(unsafe { bytes(r, 8) }.iter().all(|b| *b == 5));
        free(&heap, r, 8, align);
    }
    assert_eq!(t.root_current(), 0);
    assert_eq!(heap.snapshot().header_bytes, 0);
}

#[test]
fn stock_backed_blocks_keep_8_byte_headers_and_exact_reports() {
    let s = slots();
    let k: Vec<Stock> = (0..2).map(|_| Stock::new()).collect();
    let t = AccountTable::with_stocks(&s, &k);
    let heap = TrackingAlloc::<_, Recording>::new(System, &t);
    let a = t.create(None, USER).unwrap();
    // Stock is granted only below a peak.
    t.charge(a.id(), Amount::bytes(1 << 20), Mode::Fallible)
        .unwrap();
    t.uncharge(a.id(), Amount::bytes(1 << 20));
    let sizes: Vec<usize> = (1..=40).collect();
    let blocks: Vec<*mut u8> =
        charge_to::<Recording, _>(&a, || sizes.iter().map(|&n| alloc(&heap, n, 8)).collect());
    assert!(!t.stocked().is_zero(), "the blocks should come from stock");
    for (&p, &n) in blocks.iter().zip(&sizes) {
        assert!(!p.is_null());
        // SAFETY: `p` has `n` writable bytes.
        unsafe { p.write_bytes(0x5a, n) };
    }
    let charged: usize = sizes.iter().map(|n| n + HEADER_SIZE).sum();
    assert_eq!(current(&t, &a), charged);
    let heap_view = heap.snapshot();
    assert_eq!(heap_view.used, charged);
    assert_eq!(heap_view.allocations, sizes.len());
    assert_eq!(heap_view.header_bytes, sizes.len() * HEADER_SIZE);
    // Grow and shrink one block through the stock.
    let grown = charge_to::<Recording, _>(&a, || {
        // SAFETY: `blocks[0]` is live with layout (1, 8).
        unsafe { heap.realloc(blocks[0], Layout::from_size_align(1, 8).unwrap(), 100) }
    });
    assert!(!grown.is_null());
    assert_eq!(current(&t, &a), charged + 99);
    free(&heap, grown, 100, 8);
    for (&p, &n) in blocks.iter().zip(&sizes).skip(1) {
        free(&heap, p, n, 8);
    }
    assert_eq!(current(&t, &a), 0);
    assert_eq!(heap.snapshot().allocations, 0);
    t.drain_stocks();
    assert!(t.stocked().is_zero());
    assert_eq!(t.stats().accounting_errors, 0);
}
