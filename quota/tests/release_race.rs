//! Account release racing with the last frees: an owner drops its handles
//! while other threads free the blocks still charged to those accounts. The
//! release must happen exactly once, after the last byte is credited, and
//! leave nothing behind — whichever of them comes last.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Barrier;

use quota::{AccountFlags, AccountTable, NewAccount, Slot, ThreadLocal, TrackingAlloc, charge_to};

const USER: NewAccount = NewAccount {
    flags: AccountFlags::empty(),
    tag: 0,
};
const ROUNDS: usize = 2_000;
const BLOCKS: usize = 8;

/// A block handed to another thread.
struct Block(*mut u8);
// SAFETY: the block is plain bytes owned by whoever holds the `Block`.
unsafe impl Send for Block {}

#[test]
fn release_happens_once_after_the_last_free_whoever_is_last() {
    let slots: Vec<Slot> = (0..8).map(|_| Slot::new()).collect();
    let table = AccountTable::new(&slots);
    let heap: TrackingAlloc<'_, System, ThreadLocal> = TrackingAlloc::new(System, &table);
    let layout = Layout::from_size_align(48, 8).unwrap();
    for round in 0..ROUNDS {
        let session = table.create(None, USER).unwrap();
        let process = table.create(Some(&session), USER).unwrap();
        let (sid, pid) = (session.id(), process.id());
        let blocks: Vec<Block> = charge_to::<ThreadLocal, _>(&process, || {
            (0..BLOCKS)
                .map(|_| {
                    // SAFETY: a valid non-zero layout.
                    Block(unsafe { heap.alloc(layout) })
                })
                .collect()
        });
        assert!(blocks.iter().all(|b| !b.0.is_null()));
        let mut first = blocks;
        let second = first.split_off(BLOCKS / 2);
        let start = Barrier::new(3);
        std::thread::scope(|s| {
            for half in [first, second] {
                let (heap, start) = (&heap, &start);
                s.spawn(move || {
                    start.wait();
                    for b in half {
                        // SAFETY: each block was allocated by `heap` with `layout`, once.
                        unsafe { heap.dealloc(b.0, layout) };
                    }
                });
            }
            start.wait();
            // Alternate which handle goes first.
            if round % 2 == 0 {
                drop(process);
                drop(session);
            } else {
                drop(session);
                drop(process);
            }
        });
        assert!(
            table.snapshot(pid).is_none(),
            "round {round}: process account not released"
        );
        assert!(
            table.snapshot(sid).is_none(),
            "round {round}: session account not released"
        );
        let stats = table.stats();
        assert_eq!(
            (stats.live, stats.orphaned),
            (1, 0),
            "round {round}: {stats:?}"
        );
        assert_eq!(stats.accounting_errors, 0, "round {round}");
        assert_eq!(table.root_current(), 0, "round {round}");
    }
}
