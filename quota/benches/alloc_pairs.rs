//! Alloc+free pairs of mixed sizes (16 B – 4 KiB) through raw `talc` and
//! through `TrackingAlloc<talc>`, measured side by side in one run and
//! printed with tracked/raw ratios. Rounds alternate between the variants so
//! machine noise hits them alike; the median round is reported. Timings are
//! printed, never asserted.
//!
//! Variants, 1 thread:
//! - raw talc;
//! - raw talc with an 8-byte header below each block (written on `alloc`,
//!   read on `dealloc`), and that plus two uncontended compare-and-swaps
//!   per pair on a cache line of the thread's own: what the stock's fast
//!   path cannot avoid (the header, and its swap on the CPU's slot);
//! - tracked without stock (every charge walks the tree: one
//!   read-modify-write per level to charge, one to uncharge), process
//!   account four levels deep (root / users / session / process, the
//!   kernel's shape);
//! - tracked with per-CPU stock, the same process account, and an account
//!   directly under the root.
//!
//! 2 threads (each on its own CPU stock): raw talc; tracked without stock,
//! both threads on one shared process account; tracked with stock, both on
//! one shared process account, and on separate process accounts of one
//! session. Ratios are against raw talc with 2 threads, and
//! the 2-thread/1-thread column is throughput (pairs per second) relative
//! to the same variant on 1 thread.
//!
//! Run: `cargo bench -p quota`.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use crossbeam_utils::CachePadded;
use quota::{
    Account, AccountFlags, AccountTable, Context, NewAccount, Slot, Stock, ThreadLocal,
    TrackingAlloc, charge_to,
};
use talc::TalcLock;
use talc::source::Claim;

type Talc = TalcLock<spin::Mutex<()>, Claim>;

const ARENA: usize = 32 << 20;
const PAIRS: usize = 400_000;
const LIVE: usize = 256;
const ROUNDS: usize = 9;
const CPUS: usize = 2;

fn talc() -> Talc {
    let arena: &'static mut [u64] = Vec::leak(vec![0u64; ARENA / 8]);
    // SAFETY: the arena is leaked (valid for 'static) and given to one allocator only.
    TalcLock::new(unsafe { Claim::new(arena.as_mut_ptr().cast(), ARENA) })
}

/// Raw talc plus what any tracked block costs without the accounting: an
/// 8-byte header written on `alloc` and read on `dealloc` (blocks are 8
/// bytes larger), and with `cas` also one uncontended compare-and-swap per
/// call on a per-thread cache line, which is all the stock's fast path adds
/// to that. Together: the floor of this design.
struct Floor {
    inner: Talc,
    cas: bool,
    lines: [CachePadded<AtomicU64>; CPUS],
}

impl Floor {
    fn touch(&self, delta: u64) {
        if self.cas {
            let line = &self.lines[ThreadLocal::cpu()];
            let v = line.load(Relaxed);
            let _ = line.compare_exchange(v, v.wrapping_add(delta), Relaxed, Relaxed);
        }
    }

    fn outer(layout: Layout) -> Layout {
        Layout::from_size_align(layout.size() + 8, layout.align().max(8)).unwrap()
    }
}

// SAFETY: forwards to `inner` with the layout grown by an 8-byte header
// below the caller's pointer, as `TrackingAlloc` does for alignments <= 8
// (the only ones the bench uses).
unsafe impl GlobalAlloc for Floor {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.touch(1);
        // SAFETY: forwarded contract; the grown layout is non-zero.
        let base = unsafe { self.inner.alloc(Self::outer(layout)) };
        // SAFETY: `base` has at least 8 bytes.
        unsafe { base.cast::<[u8; 8]>().write(*b"QUOTQUOT") };
        base.wrapping_add(8)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let base = ptr.wrapping_sub(8);
        // SAFETY: `alloc` wrote the header there.
        black_box(unsafe { base.cast::<[u8; 8]>().read() });
        // SAFETY: `base` came from `inner.alloc` with the grown layout.
        unsafe { self.inner.dealloc(base, Self::outer(layout)) };
        self.touch(u64::MAX);
    }
}

/// Sizes 16 B – 4 KiB, log-uniform, from a fixed seed.
fn sizes() -> Vec<usize> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bits = 4 + (x % 9) as u32; // 16 .. 4096
            (1usize << bits).min(4096) + (x >> 32) as usize % (1 << bits) / 2
        })
        .map(|s| s.clamp(16, 4096))
        .collect()
}

/// `PAIRS` times: free the oldest of `LIVE` blocks, allocate a new one.
fn churn<A: GlobalAlloc>(heap: &A, sizes: &[usize], offset: usize) {
    let mut ring: Vec<(*mut u8, Layout)> = Vec::with_capacity(LIVE);
    for i in 0..PAIRS {
        let size = sizes[(i + offset) % sizes.len()];
        let layout = Layout::from_size_align(size, 8).unwrap();
        if ring.len() == LIVE {
            let (p, l) = ring[i % LIVE];
            // SAFETY: `p` is live, allocated by `heap` with `l`.
            unsafe { heap.dealloc(p, l) };
        }
        // SAFETY: a valid non-zero layout.
        let p = unsafe { heap.alloc(layout) };
        assert!(!p.is_null());
        black_box(p);
        if ring.len() == LIVE {
            ring[i % LIVE] = (p, layout);
        } else {
            ring.push((p, layout));
        }
    }
    for (p, l) in ring {
        // SAFETY: as above.
        unsafe { heap.dealloc(p, l) };
    }
}

/// Nanoseconds of wall time per pair for one round: thread `i` runs on CPU
/// `i`, charging `accounts[i]` (or nothing, for the untracked heaps).
fn round<A: GlobalAlloc + Sync>(
    heap: &A,
    accounts: &[Option<&Account<'_>>],
    sizes: &[usize],
) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for (cpu, account) in accounts.iter().enumerate() {
            s.spawn(move || {
                ThreadLocal::set_cpu(cpu);
                let offset = cpu * 1000;
                match account {
                    Some(a) => charge_to::<ThreadLocal, _>(a, || churn(heap, sizes, offset)),
                    None => churn(heap, sizes, offset),
                }
            });
        }
    });
    let pairs = u32::try_from(PAIRS * accounts.len()).expect("pairs fit u32");
    start.elapsed().as_secs_f64() * 1e9 / f64::from(pairs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

const USER: NewAccount = NewAccount {
    flags: AccountFlags::empty(),
    tag: 0,
};

/// The kernel's account shape in `table`: a session's process, a second
/// process of the same session, and an account directly under the root.
struct Tree<'t> {
    _users: Account<'t>,
    _session: Account<'t>,
    process: Account<'t>,
    sibling: Account<'t>,
    flat: Account<'t>,
}

fn tree<'t>(table: &'t AccountTable<'t>) -> Tree<'t> {
    let users = table.create(None, USER).unwrap();
    let session = table.create(Some(&users), USER).unwrap();
    let process = table.create(Some(&session), USER).unwrap();
    let sibling = table.create(Some(&session), USER).unwrap();
    let flat = table.create(None, USER).unwrap();
    Tree {
        _users: users,
        _session: session,
        process,
        sibling,
        flat,
    }
}

/// One variant: its name, its thread count, and one timed round.
type Variant<'a> = (&'static str, usize, Box<dyn Fn() -> f64 + 'a>);

/// The median ns/pair of each variant over `ROUNDS` interleaved rounds.
fn measure(variants: &[Variant<'_>]) -> Vec<f64> {
    let mut times: Vec<Vec<f64>> = vec![vec![]; variants.len()];
    for _ in 0..ROUNDS {
        for (i, (_, _, run)) in variants.iter().enumerate() {
            times[i].push(run());
        }
    }
    times.into_iter().map(median).collect()
}

/// Prints the table: ns/pair, ratio to raw talc with as many threads, and
/// 2-thread/1-thread throughput.
fn report(variants: &[Variant<'_>], ns: &[f64], batch: usize) {
    println!(
        "alloc+free pairs, sizes 16 B - 4 KiB, {LIVE} live blocks per thread, {PAIRS} pairs/thread/round, \
         median of {ROUNDS} rounds; stock batch {batch} B, {CPUS} CPU stocks"
    );
    println!(
        "{:<42} {:>7} {:>10} {:>14}",
        "variant", "threads", "ns/pair", "vs raw talc"
    );
    let at = |name: &str, threads: usize| {
        let i = variants
            .iter()
            .position(|(n, t, _)| *n == name && *t == threads)
            .expect("a variant measured");
        ns[i]
    };
    for (i, (name, threads, _)) in variants.iter().enumerate() {
        let base = at("raw talc", *threads);
        println!(
            "{name:<42} {threads:>7} {:>10.1} {:>13.3}x",
            ns[i],
            ns[i] / base
        );
    }
    // Throughput is pairs per second of wall time: 1 / (ns per pair).
    println!("2-thread / 1-thread throughput (pairs per second):");
    for (two, one) in [
        ("raw talc", "raw talc"),
        (
            "tracked, no stock, one shared account",
            "tracked, no stock, process 4 deep",
        ),
        (
            "tracked, stock, one shared account",
            "tracked, stock, process 4 deep",
        ),
        (
            "tracked, stock, separate accounts",
            "tracked, stock, process 4 deep",
        ),
    ] {
        println!("  {two:<40} {:>6.2}x", at(one, 1) / at(two, 2));
    }
}

fn main() {
    let sizes = sizes();
    let slots: Vec<Slot> = (0..16).map(|_| Slot::new()).collect();
    let stocks: Vec<Stock> = (0..CPUS).map(|_| Stock::new()).collect();
    let table = AccountTable::with_stocks(&slots, &stocks);
    let t = tree(&table);
    let plain_slots: Vec<Slot> = (0..16).map(|_| Slot::new()).collect();
    let plain_table = AccountTable::new(&plain_slots);
    let p = tree(&plain_table);

    let raw = talc();
    let lines = || [const { CachePadded::new(AtomicU64::new(0)) }; CPUS];
    let header = Floor {
        inner: talc(),
        cas: false,
        lines: lines(),
    };
    let floor = Floor {
        inner: talc(),
        cas: true,
        lines: lines(),
    };
    let stocked: TrackingAlloc<'_, Talc, ThreadLocal> = TrackingAlloc::new(talc(), &table);
    let plain: TrackingAlloc<'_, Talc, ThreadLocal> = TrackingAlloc::new(talc(), &plain_table);

    let variants: Vec<Variant<'_>> = vec![
        ("raw talc", 1, Box::new(|| round(&raw, &[None], &sizes))),
        (
            "raw talc + 8 B header",
            1,
            Box::new(|| round(&header, &[None], &sizes)),
        ),
        (
            "raw talc + header + 2 CAS/pair (floor)",
            1,
            Box::new(|| round(&floor, &[None], &sizes)),
        ),
        (
            "tracked, no stock, process 4 deep",
            1,
            Box::new(|| round(&plain, &[Some(&p.process)], &sizes)),
        ),
        (
            "tracked, stock, process 4 deep",
            1,
            Box::new(|| round(&stocked, &[Some(&t.process)], &sizes)),
        ),
        (
            "tracked, stock, account under root",
            1,
            Box::new(|| round(&stocked, &[Some(&t.flat)], &sizes)),
        ),
        (
            "raw talc",
            2,
            Box::new(|| round(&raw, &[None, None], &sizes)),
        ),
        (
            "tracked, no stock, one shared account",
            2,
            Box::new(|| round(&plain, &[Some(&p.process), Some(&p.process)], &sizes)),
        ),
        (
            "tracked, stock, one shared account",
            2,
            Box::new(|| round(&stocked, &[Some(&t.process), Some(&t.process)], &sizes)),
        ),
        (
            "tracked, stock, separate accounts",
            2,
            Box::new(|| round(&stocked, &[Some(&t.process), Some(&t.sibling)], &sizes)),
        ),
    ];
    let ns = measure(&variants);
    report(&variants, &ns, table.stock_batch());
    drop(variants);
    drop(t);
    drop(p);
    assert_eq!(table.root_current(), 0, "the bench leaked charges");
    assert_eq!(plain_table.root_current(), 0, "the bench leaked charges");
}
