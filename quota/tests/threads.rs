//! Real threads hammering one account tree through `TrackingAlloc` over a
//! real `talc` arena, with blocks freed by threads other than the one that
//! allocated them, each thread on a CPU with a charge stock (two threads
//! share one CPU's stock, as a migrated thread would). At the end every
//! account is back to 0 and the arena's counters equal those at the start;
//! throughout, no account is seen above its `max`, current or peak.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;

use quota::{
    Account, AccountFlags, AccountTable, HeapConfig, Limit, NewAccount, Slot, Stock, ThreadLocal,
    TrackingAlloc, charge_to, fallible,
};
use talc::TalcLock;
use talc::source::Claim;

type Talc = TalcLock<spin::Mutex<()>, Claim>;

const ARENA: usize = 8 << 20;
const THREADS: usize = 4;
const OPS: usize = 50_000;
/// CPUs with a stock: thread `i` runs on CPU `i % CPUS`.
const CPUS: usize = 3;

const USER: NewAccount = NewAccount {
    flags: AccountFlags::empty(),
    tag: 0,
};

/// A block owned by the test, movable between threads.
struct Block(*mut u8, Layout);
// SAFETY: a block is plain bytes owned by whoever holds the `Block`.
unsafe impl Send for Block {}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn threads_over_talc_return_every_account_and_the_arena_to_baseline() {
    let slots: Vec<Slot> = (0..32).map(|_| Slot::new()).collect();
    let stocks: Vec<Stock> = (0..CPUS).map(|_| Stock::new()).collect();
    let table = AccountTable::with_stocks(&slots, &stocks);
    table.set_stock_batch(8 << 10);
    let heap = heap_over_talc(&table);
    let baseline = *heap.inner().lock().counters();

    let users = table.create(None, USER).unwrap();
    let sessions: Vec<Account<'_>> = (0..2)
        .map(|_| table.create(Some(&users), USER).unwrap())
        .collect();
    // Session 0 is tight, so its processes meet refusals all the time.
    table
        .set_max(sessions[0].id(), Limit::Bytes(96 << 10))
        .unwrap();
    let procs: Vec<Account<'_>> = (0..THREADS)
        .map(|i| table.create(Some(&sessions[i % 2]), USER).unwrap())
        .collect();
    table
        .set_max(procs[2].id(), Limit::Bytes(40 << 10))
        .unwrap();

    let stop = AtomicBool::new(false);
    let seen_stock = AtomicUsize::new(0);
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..THREADS).map(|_| mpsc::channel::<Block>()).unzip();
    let refusals = std::thread::scope(|s| {
        // A watcher checks no account is ever seen above its max.
        s.spawn(|| {
            while !stop.load(Relaxed) {
                for snap in table.snapshots() {
                    assert!(snap.max.admits(snap.current), "{snap:?}");
                    assert!(snap.max.admits(snap.peak), "{snap:?}");
                }
            }
        });
        let workers: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(i, inbox)| {
                let (heap, account, next) = (&heap, &procs[i], senders[(i + 1) % THREADS].clone());
                let seen_stock = &seen_stock;
                s.spawn(move || {
                    ThreadLocal::set_cpu(i % CPUS);
                    let refused = charge_to::<ThreadLocal, _>(account, || {
                        fallible::<ThreadLocal, _>(|| {
                            work(heap, i as u64, &inbox, &next, seen_stock)
                        })
                    });
                    (refused, inbox)
                })
            })
            .collect();
        drop(senders);
        let mut refusals = 0;
        let mut inboxes = vec![];
        for w in workers {
            let (refused, inbox) = w.join().unwrap();
            refusals += refused;
            inboxes.push(inbox);
        }
        // Blocks sent after their receiver finished: freed from here.
        for inbox in inboxes {
            for b in inbox.try_iter() {
                // SAFETY: every block sent was allocated by `heap` with its layout.
                unsafe { heap.dealloc(b.0, b.1) };
            }
        }
        stop.store(true, Relaxed);
        refusals
    });
    assert!(
        refusals > 0,
        "the tight limits were never hit: the test proves nothing"
    );
    assert!(
        seen_stock.into_inner() > 0,
        "no stock was ever held: the test proves nothing about it"
    );
    for a in procs.iter().chain(&sessions).chain([&users]) {
        let snap = table.snapshot(a.id()).unwrap();
        assert_eq!(snap.current, 0, "{snap:?}");
        assert!(snap.max.admits(snap.peak), "peak above max: {snap:?}");
    }
    assert_eq!(table.root_current(), 0);
    table.drain_stocks();
    assert!(table.stocked().is_zero());
    let stats = heap.snapshot();
    assert_eq!((stats.allocations, stats.header_bytes), (0, 0));
    assert_eq!(stats.table.accounting_errors, 0);
    assert_eq!(stats.table.misattributed, 0);
    drop(procs);
    drop(sessions);
    drop(users);
    assert_eq!(table.stats().live, 1, "every account released");
    let end = *heap.inner().lock().counters();
    assert_eq!(end.allocated_bytes, baseline.allocated_bytes);
    assert_eq!(end.allocation_count, baseline.allocation_count);
    assert_eq!(end.available_bytes, baseline.available_bytes);
}

/// A configured tracking heap over a fresh `talc` arena, which talc has
/// claimed already (so its counters can serve as the baseline).
fn heap_over_talc<'t>(table: &'t AccountTable<'t>) -> TrackingAlloc<'t, Talc, ThreadLocal> {
    let arena: &'static mut [u64] = Vec::leak(vec![0u64; ARENA / 8]);
    // SAFETY: the arena is leaked, so valid for 'static, and used by nothing else.
    let source = unsafe { Claim::new(arena.as_mut_ptr().cast(), ARENA) };
    let heap = TrackingAlloc::new(TalcLock::new(source), table);
    // SAFETY: a valid non-zero layout.
    let first = unsafe { heap.alloc(Layout::new::<u64>()) };
    // SAFETY: `first` is live, with this layout.
    unsafe { heap.dealloc(first, Layout::new::<u64>()) };
    heap.configure(HeapConfig {
        size: ARENA,
        floor: 1 << 20,
        emergency: 64 << 10,
    })
    .unwrap();
    heap
}

/// One worker: allocates, reallocates and frees blocks of 16 B – 4 KiB,
/// passing some to the next worker and freeing what it is passed, and
/// counting in `seen_stock` the samples that found stock held. Returns how
/// many allocations were refused.
fn work(
    heap: &TrackingAlloc<'_, Talc, ThreadLocal>,
    seed: u64,
    inbox: &mpsc::Receiver<Block>,
    next: &mpsc::Sender<Block>,
    seen_stock: &AtomicUsize,
) -> usize {
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut mine: Vec<Block> = Vec::new();
    let mut refused = 0;
    for op in 0..OPS {
        if op % 256 == 0 && !heap.table().stocked().is_zero() {
            seen_stock.fetch_add(1, Relaxed);
        }
        while let Ok(b) = inbox.try_recv() {
            // SAFETY: every block sent was allocated by `heap` with its layout.
            unsafe { heap.dealloc(b.0, b.1) };
        }
        let r = xorshift(&mut rng);
        match r % 8 {
            0..=3 => {
                let size = 16 + (r >> 8) as usize % 4081;
                let align = 1 << ((r >> 20) % 7);
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a valid non-zero layout.
                let p = unsafe { heap.alloc(layout) };
                if p.is_null() {
                    refused += 1;
                } else {
                    // SAFETY: `p` has `size` writable bytes.
                    unsafe { p.write_bytes(0x5a, size) };
                    mine.push(Block(p, layout));
                }
            }
            4 if !mine.is_empty() => {
                let i = (r >> 8) as usize % mine.len();
                let new_size = 16 + (r >> 24) as usize % 4081;
                let b = &mut mine[i];
                // SAFETY: `b` is a live block of `heap` with layout `b.1`.
                let q = unsafe { heap.realloc(b.0, b.1, new_size) };
                if q.is_null() {
                    refused += 1;
                } else {
                    *b = Block(q, Layout::from_size_align(new_size, b.1.align()).unwrap());
                }
            }
            5 if !mine.is_empty() => {
                let b = mine.swap_remove((r >> 8) as usize % mine.len());
                let _ = next.send(b);
            }
            _ if !mine.is_empty() => {
                let b = mine.swap_remove((r >> 8) as usize % mine.len());
                // SAFETY: a live block of `heap`.
                unsafe { heap.dealloc(b.0, b.1) };
            }
            _ => {}
        }
    }
    for b in mine {
        // SAFETY: a live block of `heap`.
        unsafe { heap.dealloc(b.0, b.1) };
    }
    refused
}
