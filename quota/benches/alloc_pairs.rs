//! Alloc+free pairs of mixed sizes (16 B – 4 KiB) through raw `talc` and
//! through `TrackingAlloc<talc>`, measured side by side in one run, with
//! the ratio tracked/raw printed. Rounds alternate between the variants so
//! machine noise hits them alike; the median round is reported.
//!
//! Two accounts are measured: a process account four levels deep (root /
//! users / session / process, the kernel's shape) and an account directly
//! under the root (two levels). Each level costs one atomic read-modify-write
//! to charge and one to uncharge.
//!
//! Run: `cargo bench -p quota`.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::time::Instant;

use quota::{
    Account, AccountFlags, AccountTable, NewAccount, Slot, ThreadLocal, TrackingAlloc, charge_to,
};
use talc::TalcLock;
use talc::source::Claim;

type Talc = TalcLock<spin::Mutex<()>, Claim>;

const ARENA: usize = 64 << 20;
const PAIRS: usize = 400_000;
const LIVE: usize = 256;
const ROUNDS: usize = 9;

fn talc() -> Talc {
    let arena: &'static mut [u64] = Vec::leak(vec![0u64; ARENA / 8]);
    // SAFETY: the arena is leaked (valid for 'static) and given to one allocator only.
    TalcLock::new(unsafe { Claim::new(arena.as_mut_ptr().cast(), ARENA) })
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
fn churn<A: GlobalAlloc>(heap: &A, sizes: &[usize]) {
    let mut ring: Vec<(*mut u8, Layout)> = Vec::with_capacity(LIVE);
    for i in 0..PAIRS {
        let layout = Layout::from_size_align(sizes[i % sizes.len()], 8).unwrap();
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

/// Nanoseconds per pair for one round, with `threads` threads.
fn round<A: GlobalAlloc + Sync>(
    heap: &A,
    account: Option<&Account<'_>>,
    threads: usize,
    sizes: &[usize],
) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| match account {
                Some(a) => charge_to::<ThreadLocal, _>(a, || churn(heap, sizes)),
                None => churn(heap, sizes),
            });
        }
    });
    let pairs = u32::try_from(PAIRS * threads).expect("pairs fit u32");
    start.elapsed().as_secs_f64() * 1e9 / f64::from(pairs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let sizes = sizes();
    let slots: Vec<Slot> = (0..16).map(|_| Slot::new()).collect();
    let table = AccountTable::new(&slots);
    let user = NewAccount {
        flags: AccountFlags::empty(),
        tag: 0,
    };
    let users = table.create(None, user).unwrap();
    let session = table.create(Some(&users), user).unwrap();
    let process = table.create(Some(&session), user).unwrap();
    let flat = table.create(None, user).unwrap();

    let raw = talc();
    let tracked: TrackingAlloc<'_, Talc, ThreadLocal> = TrackingAlloc::new(talc(), &table);

    println!(
        "alloc+free pairs, sizes 16 B - 4 KiB, {LIVE} live blocks, {PAIRS} pairs/thread/round, median of {ROUNDS} rounds"
    );
    for threads in [1, 2] {
        let (mut r, mut t3, mut t1) = (vec![], vec![], vec![]);
        for _ in 0..ROUNDS {
            r.push(round(&raw, None, threads, &sizes));
            t3.push(round(&tracked, Some(&process), threads, &sizes));
            t1.push(round(&tracked, Some(&flat), threads, &sizes));
        }
        let (r, t3, t1) = (median(r), median(t3), median(t1));
        let shared = if threads > 1 {
            ", both on one shared account"
        } else {
            ""
        };
        println!("{threads} thread(s){shared}:");
        println!("  raw talc                         {r:7.1} ns/pair");
        println!(
            "  tracked, process 4 levels deep   {t3:7.1} ns/pair   ratio {:.3}",
            t3 / r
        );
        println!(
            "  tracked, account under the root  {t1:7.1} ns/pair   ratio {:.3}",
            t1 / r
        );
    }
    assert_eq!(table.root_current(), 0, "the bench leaked charges");
}
