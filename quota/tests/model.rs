//! Model-based property test: random sequences of create / charge /
//! uncharge / set-limit / drop across a random tree, run against the real
//! `AccountTable` and a plain sequential model, compared after every step.
//! Limits change mid-sequence, also through ids of dropped or released
//! accounts (refused as stale, changing nothing, even once the slot is
//! reused).
//!
//! The table has per-CPU charge stocks in play: each charge and free runs
//! on one of several simulated CPUs (one of them without a stock slot),
//! the batch changes and stocks are drained at random, and the model knows
//! nothing of stock. So every report (`current`, `blocks`, `peak`, events,
//! kill flags) and every decision (admitted, forced, refused and by whom)
//! must be exactly what it would be with no stock at all.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use quota::{
    Account, AccountFlags, AccountId, AccountTable, Amount, CreateError, Events, Limit, Mode,
    NewAccount, Refusal, RefusalReason, Slot, StaleAccount, Stock,
};

const SLOTS: usize = 12;
/// CPUs with a stock slot; charges also run on CPU `CPUS` (no slot).
const CPUS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Create {
        parent: usize,
        kernel: bool,
    },
    Charge {
        account: usize,
        bytes: usize,
        infallible: bool,
        cpu: usize,
    },
    Uncharge {
        charge: usize,
        cpu: usize,
    },
    /// Several small charges to one account on one CPU (what the stock is
    /// for), each checked against the model, and maybe freed there again.
    Burst {
        account: usize,
        cpu: usize,
        sizes: Vec<usize>,
        infallible: bool,
        free: bool,
    },
    /// Set the stock batch (0 turns refills off).
    SetBatch {
        bytes: usize,
    },
    /// Drain one CPU's stock, or every CPU's.
    Drain {
        cpu: Option<usize>,
    },
    SetMax {
        account: usize,
        max: Option<usize>,
    },
    SetHigh {
        account: usize,
        high: Option<usize>,
    },
    SetOverdraft {
        account: usize,
        bytes: usize,
    },
    SetBudget {
        budget: Option<usize>,
    },
    /// A limit set through the id of a dropped (maybe released) account.
    SetStale {
        account: usize,
        max: Option<usize>,
    },
    OomKill {
        account: usize,
    },
    Drop {
        account: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let limit = proptest::option::weighted(0.7, 0usize..3000);
    prop_oneof![
        2 => (any::<usize>(), proptest::bool::weighted(0.2))
            .prop_map(|(parent, kernel)| Op::Create { parent, kernel }),
        6 => (any::<usize>(), prop_oneof![1usize..64, 1usize..600], any::<bool>(), 0..=CPUS)
            .prop_map(|(account, bytes, infallible, cpu)| Op::Charge { account, bytes, infallible, cpu }),
        3 => (any::<usize>(), 0..=CPUS).prop_map(|(charge, cpu)| Op::Uncharge { charge, cpu }),
        3 => (any::<usize>(), 0..CPUS, proptest::collection::vec(1usize..100, 1..10), any::<bool>(), any::<bool>())
            .prop_map(|(account, cpu, sizes, infallible, free)| Op::Burst { account, cpu, sizes, infallible, free }),
        1 => prop_oneof![1 => Just(0usize), 1 => Just(64), 2 => Just(1024), 2 => Just(4096), 2 => Just(16384)]
            .prop_map(|bytes| Op::SetBatch { bytes }),
        1 => proptest::option::of(0..CPUS).prop_map(|cpu| Op::Drain { cpu }),
        2 => (any::<usize>(), limit.clone()).prop_map(|(account, max)| Op::SetMax { account, max }),
        1 => (any::<usize>(), limit.clone()).prop_map(|(account, high)| Op::SetHigh { account, high }),
        1 => (any::<usize>(), 0usize..400).prop_map(|(account, bytes)| Op::SetOverdraft { account, bytes }),
        1 => proptest::option::weighted(0.5, 500usize..6000).prop_map(|budget| Op::SetBudget { budget }),
        1 => (any::<usize>(), limit.clone()).prop_map(|(account, max)| Op::SetStale { account, max }),
        1 => any::<usize>().prop_map(|account| Op::OomKill { account }),
        1 => any::<usize>().prop_map(|account| Op::Drop { account }),
    ]
}

/// What a charge of `bytes` counts: odd sizes also count one block, so
/// the block half of the counter word is exercised too.
fn amount(bytes: usize) -> Amount {
    Amount {
        bytes,
        blocks: bytes % 2,
    }
}

/// The sequential model of one account.
#[derive(Clone, Debug)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "mirrors the table's independent flags"
)]
struct Model {
    id: AccountId,
    parent: Option<usize>,
    kernel: bool,
    owned: bool,
    released: bool,
    current: usize,
    blocks: usize,
    max: usize,
    high: usize,
    overdraft: usize,
    peak: usize,
    events: Events,
    kill_pending: bool,
}

impl Model {
    fn new(id: AccountId, parent: Option<usize>, kernel: bool) -> Self {
        Model {
            id,
            parent,
            kernel,
            owned: true,
            released: false,
            current: 0,
            blocks: 0,
            max: usize::MAX,
            high: usize::MAX,
            overdraft: quota::DEFAULT_OVERDRAFT,
            peak: 0,
            events: Events::default(),
            kill_pending: false,
        }
    }
}

struct World<'t> {
    table: &'t AccountTable<'t>,
    handles: Vec<Option<Account<'t>>>,
    model: Vec<Model>,
    budget: usize,
    floor_refusals: u64,
    /// Outstanding charges: (model index, bytes).
    charges: Vec<(usize, usize)>,
    /// Checks run, and how many of them found stock held.
    checks: usize,
    stocked_checks: usize,
}

impl World<'_> {
    fn path(&self, leaf: usize) -> Vec<usize> {
        let mut path = vec![leaf];
        while let Some(p) = self.model[*path.last().unwrap()].parent {
            path.push(p);
        }
        path
    }

    fn live(&self) -> Vec<usize> {
        (0..self.model.len())
            .filter(|&i| self.model[i].owned)
            .collect()
    }

    fn pick_live(&self, n: usize) -> usize {
        let live = self.live();
        live[n % live.len()]
    }

    /// The model's charge: the protocol's rules, sequentially.
    fn model_charge(&mut self, leaf: usize, bytes: usize, mode: Mode) -> Result<bool, Refusal> {
        let kernel = self.model[leaf].kernel;
        let mode = if kernel { Mode::Kernel } else { mode };
        let path = self.path(leaf);
        let mut forced_at = vec![];
        for &level in &path {
            let m = &self.model[level];
            let cap = if level == 0 && !kernel {
                self.budget
            } else {
                usize::MAX
            };
            let Some(new) = m.current.checked_add(bytes) else {
                return Err(Refusal {
                    account: m.id,
                    reason: RefusalReason::Overflow,
                });
            };
            let forced = match mode {
                Mode::Kernel => false,
                _ if new <= m.max && new <= cap => false,
                Mode::Infallible
                    if new <= m.max.saturating_add(m.overdraft)
                        && new <= cap.saturating_add(m.overdraft) =>
                {
                    true
                }
                _ => {
                    let reason = if new > m.max {
                        self.model[level].events.max += 1;
                        RefusalReason::Limit
                    } else {
                        self.floor_refusals += 1;
                        RefusalReason::HeapFloor
                    };
                    return Err(Refusal {
                        account: self.model[level].id,
                        reason,
                    });
                }
            };
            forced_at.push(forced);
        }
        for (&level, forced) in path.iter().zip(&forced_at) {
            let m = &mut self.model[level];
            m.current += bytes;
            m.blocks += amount(bytes).blocks;
            m.peak = m.peak.max(m.current);
            if m.current > m.high {
                m.events.high += 1;
            }
            if *forced {
                m.events.forced += 1;
            }
        }
        let forced = forced_at.iter().any(|f| *f);
        if forced {
            self.model[leaf].kill_pending = true;
        }
        Ok(forced)
    }

    fn model_uncharge(&mut self, leaf: usize, bytes: usize) {
        for level in self.path(leaf) {
            self.model[level].current -= bytes;
            self.model[level].blocks -= amount(bytes).blocks;
        }
        self.model_release();
    }

    /// Releases every account that is dropped, uncharged and childless.
    fn model_release(&mut self) {
        loop {
            let candidate = (1..self.model.len()).find(|&i| {
                let m = &self.model[i];
                !m.released
                    && !m.owned
                    && m.current == 0
                    && !self
                        .model
                        .iter()
                        .any(|c| !c.released && c.parent == Some(i))
            });
            match candidate {
                Some(i) => self.model[i].released = true,
                None => return,
            }
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Create { parent, kernel } => {
                let parent = self.pick_live(parent);
                let flags = if kernel {
                    AccountFlags::KERNEL
                } else {
                    AccountFlags::empty()
                };
                let spec = NewAccount {
                    flags,
                    tag: self.model.len() as u64,
                };
                let handle = if parent == 0 {
                    None
                } else {
                    self.handles[parent].as_ref()
                };
                let depth = self.path(parent).len();
                let kernel_under_user = kernel && !self.model[parent].kernel;
                match self.table.create(handle, spec) {
                    Ok(account) => {
                        assert!(
                            !kernel_under_user,
                            "a kernel account was created under a user one"
                        );
                        self.model
                            .push(Model::new(account.id(), Some(parent), kernel));
                        self.handles.push(Some(account));
                    }
                    Err(CreateError::KernelUnderUser) => assert!(kernel_under_user),
                    Err(e) => {
                        let in_use = self.model.iter().filter(|m| !m.released).count();
                        assert!(in_use == SLOTS || depth >= quota::MAX_DEPTH, "{e:?}");
                    }
                }
            }
            Op::Charge {
                account,
                bytes,
                infallible,
                cpu,
            } => {
                let leaf = self.pick_live(account);
                self.charge(leaf, bytes, infallible, cpu);
            }
            Op::Burst {
                account,
                cpu,
                sizes,
                infallible,
                free,
            } => {
                let leaf = self.pick_live(account);
                let mut mine = vec![];
                for bytes in sizes {
                    if self.charge(leaf, bytes, infallible, cpu) {
                        mine.push(self.charges.len() - 1);
                    }
                    self.check();
                }
                if free {
                    for i in mine.into_iter().rev() {
                        let (leaf, bytes) = self.charges.swap_remove(i);
                        self.table
                            .uncharge_on(cpu, self.model[leaf].id, amount(bytes));
                        self.model_uncharge(leaf, bytes);
                        self.check();
                    }
                }
            }
            Op::Uncharge { charge, cpu } => {
                if !self.charges.is_empty() {
                    let (leaf, bytes) = self.charges.swap_remove(charge % self.charges.len());
                    self.table
                        .uncharge_on(cpu, self.model[leaf].id, amount(bytes));
                    self.model_uncharge(leaf, bytes);
                }
            }
            Op::SetBatch { bytes } => self.table.set_stock_batch(bytes),
            Op::Drain { cpu: Some(cpu) } => self.table.drain_cpu(cpu),
            Op::Drain { cpu: None } => self.table.drain_stocks(),
            Op::SetMax { .. }
            | Op::SetHigh { .. }
            | Op::SetOverdraft { .. }
            | Op::SetBudget { .. }
            | Op::SetStale { .. }
            | Op::OomKill { .. } => self.step_limits(&op),
            Op::Drop { account } => {
                let a = self.pick_live(account);
                if a != 0 {
                    self.handles[a] = None;
                    self.model[a].owned = false;
                    self.model_release();
                }
            }
        }
    }

    /// Charges `bytes` to `leaf` on `cpu`, in the table and the model, and
    /// checks they agree; returns whether it was admitted.
    fn charge(&mut self, leaf: usize, bytes: usize, infallible: bool, cpu: usize) -> bool {
        let mode = if infallible {
            Mode::Infallible
        } else {
            Mode::Fallible
        };
        let expect = self.model_charge(leaf, bytes, mode);
        let got = self
            .table
            .charge_on(cpu, self.model[leaf].id, amount(bytes), mode);
        match (expect, got) {
            (Ok(forced), Ok(charged)) => {
                assert_eq!(charged.forced, forced);
                assert_eq!(charged.account, self.model[leaf].id);
                self.charges.push((leaf, bytes));
                true
            }
            (Err(e), Err(g)) => {
                assert_eq!(e, g);
                false
            }
            (e, g) => panic!("model {e:?} but table {g:?}"),
        }
    }

    /// The steps that change limits and events, not charges.
    fn step_limits(&mut self, op: &Op) {
        match *op {
            Op::SetMax { account, max } => {
                let a = self.pick_live(account);
                let limit = max.map_or(Limit::Unlimited, Limit::Bytes);
                self.table.set_max(self.model[a].id, limit).unwrap();
                self.model[a].max = limit.to_raw();
            }
            Op::SetHigh { account, high } => {
                let a = self.pick_live(account);
                let limit = high.map_or(Limit::Unlimited, Limit::Bytes);
                self.table.set_high(self.model[a].id, limit).unwrap();
                self.model[a].high = limit.to_raw();
            }
            Op::SetOverdraft { account, bytes } => {
                let a = self.pick_live(account);
                self.table.set_overdraft(self.model[a].id, bytes).unwrap();
                self.model[a].overdraft = bytes;
            }
            Op::SetBudget { budget } => {
                let limit = budget.map_or(Limit::Unlimited, Limit::Bytes);
                self.table.set_heap_budget(limit);
                self.budget = limit.to_raw();
            }
            Op::SetStale { account, max } => {
                let dead: Vec<usize> = (0..self.model.len())
                    .filter(|&i| !self.model[i].owned)
                    .collect();
                if !dead.is_empty() {
                    let id = self.model[dead[account % dead.len()]].id;
                    let limit = max.map_or(Limit::Unlimited, Limit::Bytes);
                    assert_eq!(self.table.set_max(id, limit), Err(StaleAccount(id)));
                    assert_eq!(self.table.set_high(id, limit), Err(StaleAccount(id)));
                }
            }
            Op::OomKill { account } => {
                let a = account % self.model.len();
                let id = self.model[a].id;
                if self.model[a].released {
                    assert_eq!(self.table.record_oom_kill(id), Err(StaleAccount(id)));
                } else {
                    self.table.record_oom_kill(id).unwrap();
                    self.model[a].events.oom_kill += 1;
                }
            }
            _ => unreachable!("not a limit step: {op:?}"),
        }
    }

    fn check(&mut self) {
        self.checks += 1;
        if !self.table.stocked().is_zero() {
            self.stocked_checks += 1;
        }
        for (i, m) in self.model.iter().enumerate() {
            let snap = self.table.snapshot(m.id);
            if m.released {
                assert!(snap.is_none(), "account {i} should be released");
                continue;
            }
            let s = snap.unwrap_or_else(|| panic!("account {i} released early"));
            assert_eq!(s.current, m.current, "current of {i}");
            assert_eq!(s.blocks, m.blocks, "blocks of {i}");
            assert_eq!(s.peak, m.peak, "peak of {i}");
            assert_eq!(s.max.to_raw(), m.max, "max of {i}");
            assert_eq!(s.high.to_raw(), m.high, "high of {i}");
            assert_eq!(s.overdraft, m.overdraft, "overdraft of {i}");
            assert_eq!(s.events, m.events, "events of {i}");
            assert_eq!(s.orphaned, !m.owned, "orphaned of {i}");
            assert_eq!(
                s.flags.contains(AccountFlags::KILL_PENDING),
                m.kill_pending,
                "kill of {i}"
            );
            assert_eq!(
                s.parent,
                m.parent.map(|p| self.model[p].id),
                "parent of {i}"
            );
        }
        let stats = self.table.stats();
        assert_eq!(
            stats.live + stats.orphaned,
            self.model.iter().filter(|m| !m.released).count()
        );
        assert_eq!(stats.floor_refusals, self.floor_refusals);
        assert_eq!(stats.heap_budget.to_raw(), self.budget);
        assert_eq!(stats.accounting_errors, 0);
        assert_eq!(stats.misattributed, 0);
    }
}

/// Runs one sequence against the table and the model; returns how many
/// checks it made and how many found stock held (so the run can show
/// stock was in play).
/// Each CPU has `per_cpu` stock slots.
fn run(ops: Vec<Op>, per_cpu: usize) -> Result<(usize, usize), TestCaseError> {
    let slots: Vec<Slot> = (0..SLOTS).map(|_| Slot::new()).collect();
    let stocks: Vec<Stock> = (0..CPUS * per_cpu).map(|_| Stock::new()).collect();
    let table = AccountTable::with_stocks_per_cpu(&slots, &stocks, per_cpu);
    table.set_stock_batch(4096);
    let mut world = World {
        table: &table,
        handles: vec![None],
        model: vec![Model {
            kernel: true,
            ..Model::new(AccountId::ROOT, None, true)
        }],
        budget: usize::MAX,
        floor_refusals: 0,
        charges: vec![],
        checks: 0,
        stocked_checks: 0,
    };
    for op in ops {
        world.step(op);
        world.check();
    }
    // Free everything and drop every handle: all accounts but the root
    // are released and every counter is back to zero.
    while let Some((leaf, bytes)) = world.charges.pop() {
        table.uncharge_on(leaf % (CPUS + 1), world.model[leaf].id, amount(bytes));
        world.model_uncharge(leaf, bytes);
    }
    for i in 1..world.model.len() {
        world.handles[i] = None;
        world.model[i].owned = false;
    }
    world.model_release();
    world.check();
    prop_assert_eq!(table.root_current(), 0);
    prop_assert_eq!(table.stats().live, 1);
    table.drain_stocks();
    prop_assert!(table.stocked().is_zero());
    prop_assert_eq!(table.snapshot(AccountId::ROOT).unwrap().current, 0);
    Ok((world.checks, world.stocked_checks))
}

#[test]
fn table_matches_the_sequential_model_with_stock_in_play() {
    matches_with_stock_slots_per_cpu(1);
}

/// The same with three stock slots per CPU, each account using the one
/// its index picks.
#[test]
fn table_matches_the_sequential_model_with_several_stock_slots_per_cpu() {
    matches_with_stock_slots_per_cpu(3);
}

fn matches_with_stock_slots_per_cpu(per_cpu: usize) {
    let stocked = AtomicUsize::new(0);
    let checks = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/model.proptest-regressions",
        ))),
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..120), |ops| {
            let (n, with_stock) = run(ops, per_cpu)?;
            checks.fetch_add(n, Relaxed);
            stocked.fetch_add(with_stock, Relaxed);
            Ok(())
        })
        .unwrap();
    let (stocked, checks) = (stocked.into_inner(), checks.into_inner());
    assert!(
        stocked * 20 > checks,
        "stock held at only {stocked} of {checks} checks: the test proves little"
    );
}
