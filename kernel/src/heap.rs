//! The kernel heap: `talc`, wrapped in `quota::TrackingAlloc` as the global
//! allocator, so every allocation is charged to the running thread's
//! account (or to the one a `charge_to` scope names).
//!
//! The account tree:
//!
//! ```text
//! root (slot 0, kernel)
//! ├── kernel      kernel threads and kernel bookkeeping
//! ├── operator    the console operator's cleanup commands (ps, kill, rm...)
//! └── users       every session; max = the heap budget less the operator's reserve
//!     └── session one per session; the session leader charges it directly
//!         └── process  one per other process of the session
//! ```
//!
//! The operator's reserve, like Linux's `vm.admin_reserve_kbytes`: sessions
//! together stop `operator_reserve` bytes above the heap floor (the
//! `users` account's max), so the console operator's commands, charged to
//! `operator`, can always start and clean up, whatever the sessions did.

use core::ops::Range;
use core::sync::atomic::Ordering::Relaxed;

use quota::{
    Account, AccountFlags, AccountTable, HeapConfig, Limit, NewAccount, Refusal, RefusalReason,
    Scope, Slot, Stock, TrackingAlloc,
};
use spin::Once;
use talc::TalcLock;
use talc::source::Manual;

use crate::arch::irq_mask as irq;
use crate::arch::memory::{self, HeapRegionError};
use crate::arch::stack::GuardedStack;
use crate::cpu;
use crate::sync::IrqRawMutex;

/// Accounts the kernel can hold at once.
pub const MAX_ACCOUNTS: usize = 512;

static SLOTS: [Slot; MAX_ACCOUNTS] = [const { Slot::new() }; MAX_ACCOUNTS];

/// Charge stock slots per CPU: an account uses the one its index picks,
/// so threads of a few accounts taking turns on a CPU (or moving between
/// CPUs) keep their stocks.
const STOCKS_PER_CPU: usize = 4;

/// The CPUs' charge stocks: most charges and uncharges touch only this
/// CPU's stock for their account, with no shared counter written (quota's
/// `charge_on`).
static STOCKS: [Stock; cpu::MAX_CPUS * STOCKS_PER_CPU] =
    [const { Stock::new() }; cpu::MAX_CPUS * STOCKS_PER_CPU];

/// All accounts.
pub static ACCOUNTS: AccountTable<'static> =
    AccountTable::with_stocks_per_cpu(&SLOTS, &STOCKS, STOCKS_PER_CPU);

type Talc = TalcLock<IrqRawMutex, Manual>;

#[global_allocator]
static HEAP: TrackingAlloc<'static, Talc, KernelContext> =
    TrackingAlloc::new(TalcLock::new(Manual), &ACCOUNTS);

static KERNEL: Once<Account<'static>> = Once::new();
static USERS: Once<Account<'static>> = Once::new();
static OPERATOR: Once<Account<'static>> = Once::new();

/// The allocation context: the running thread's scope, kept per CPU and
/// switched with the thread. Each access masks IRQs, so the thread cannot
/// move to another CPU between finding its CPU and reading that CPU's
/// slot.
pub struct KernelContext;

/// Runs `f` on this CPU's state with IRQs masked.
fn on_this_cpu<R>(f: impl FnOnce(&cpu::PerCpu) -> R) -> R {
    let saved = irq::save_and_mask();
    let result = f(cpu::this());
    irq::restore(saved);
    result
}

impl quota::Context for KernelContext {
    fn scope() -> Scope {
        on_this_cpu(|c| c.scope.get())
    }

    fn replace(scope: Scope) -> Scope {
        on_this_cpu(|c| c.scope.replace(scope))
    }

    fn cpu() -> usize {
        // A stale answer (the thread moved since) costs speed, never
        // exactness: stock slots change only by compare-and-swap.
        cpu::index()
    }

    fn refused(refusal: Refusal) {
        on_this_cpu(|c| c.refusal.store(pack(refusal), Relaxed));
    }
}

fn pack(refusal: Refusal) -> u64 {
    let reason: u64 = match refusal.reason {
        RefusalReason::Limit => 1,
        RefusalReason::HeapFloor => 2,
        RefusalReason::Overflow => 3,
        RefusalReason::Injected => 4,
        RefusalReason::Stale => 5,
    };
    reason << 32 | u64::from(refusal.account.to_raw())
}

fn unpack(word: u64) -> Option<Refusal> {
    let reason = match word >> 32 {
        1 => RefusalReason::Limit,
        2 => RefusalReason::HeapFloor,
        3 => RefusalReason::Overflow,
        4 => RefusalReason::Injected,
        5 => RefusalReason::Stale,
        _ => return None,
    };
    let raw = u32::try_from(word & u64::from(u32::MAX)).ok()?;
    Some(Refusal {
        account: quota::AccountId::from_raw(raw),
        reason,
    })
}

/// Why memory could not be had, for an error message: the refusal that
/// made an allocation fail, if the allocator refused it (it may also
/// have failed in the inner allocator, or before asking).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoMemory {
    refusal: Option<Refusal>,
}

impl NoMemory {
    /// The last refusal on this CPU since [`try_fallible`] cleared it:
    /// for callers whose failure came through a type that cannot carry it
    /// (`fmt::Error` from a [`try_fallible`] inside a `fmt::Write`).
    pub fn last() -> Self {
        Self {
            refusal: unpack(on_this_cpu(|c| c.refusal.load(Relaxed))),
        }
    }

    /// Failed before any allocation was tried (a size that overflows).
    pub const fn unexplained() -> Self {
        Self { refusal: None }
    }
}

impl core::fmt::Display for NoMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("cannot allocate memory")?;
        let Some(refusal) = self.refusal else {
            return Ok(());
        };
        let snap = ACCOUNTS.snapshot(refusal.account);
        let max = snap.map_or(Limit::Unlimited, |s| s.max);
        match refusal.reason {
            RefusalReason::Limit if refusal.account == users_account().id() => write!(
                f,
                " (all sessions together are at their share of the heap, {max} bytes)"
            ),
            RefusalReason::Limit if refusal.account == operator_account().id() => {
                write!(f, " (the operator's reserve is used up)")
            }
            RefusalReason::Limit
                if snap.is_some_and(|s| s.parent == Some(users_account().id())) =>
            {
                write!(f, " (over the session's limit of {max} bytes)")
            }
            RefusalReason::Limit => write!(f, " (over the process's limit of {max} bytes)"),
            RefusalReason::HeapFloor => write!(
                f,
                " (the heap is down to its floor, {} bytes kept for the kernel)",
                snapshot().floor
            ),
            RefusalReason::Injected => f.write_str(" (a failure injected by failslab)"),
            RefusalReason::Overflow => f.write_str(" (the size overflows)"),
            RefusalReason::Stale => Ok(()),
        }
    }
}

/// Runs `f` with allocation failure handled, as [`fallible`], and turns
/// its error into a [`NoMemory`] that says what refused.
///
/// # Errors
/// The [`NoMemory`] if `f` fails.
pub fn try_fallible<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<T, NoMemory> {
    on_this_cpu(|c| c.refusal.store(0, Relaxed));
    fallible(f).map_err(|_| NoMemory::last())
}

/// The heap's layout, from the boot parameters.
#[derive(Clone, Copy, Debug)]
pub struct HeapParams {
    /// Heap bytes.
    pub size: usize,
    /// Bytes kept for the kernel: sessions cannot take the heap below this.
    pub floor: usize,
    /// Emergency reserve for teardown after an out-of-memory.
    pub emergency: usize,
    /// Bytes above the floor that sessions cannot take.
    pub operator_reserve: usize,
    /// Fault injection for the sessions' charges.
    pub failslab: quota::FaultPolicy,
}

/// Why the heap could not be set up.
pub enum HeapError {
    /// The RAM after the kernel could not be given to `talc`.
    Region(HeapRegionError),
    /// The floor and reserve do not fit.
    Config(quota::ConfigError),
}

impl core::fmt::Display for HeapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HeapError::Region(e) => write!(f, "{e}"),
            HeapError::Config(e) => write!(f, "bad heap configuration: {e:?}"),
        }
    }
}

/// Gives `talc` `params.size` bytes of the RAM after the kernel image and
/// sets the floor and reserve, then creates the kernel and users accounts.
/// Returns the heap's region.
///
/// # Errors
/// [`HeapError`]; the kernel cannot run without a heap.
pub fn init(params: HeapParams, ram: &Range<usize>) -> Result<Range<usize>, HeapError> {
    let region = memory::claim_heap(HEAP.inner(), params.size, ram).map_err(HeapError::Region)?;
    HEAP.configure(HeapConfig {
        size: params.size,
        floor: params.floor,
        emergency: params.emergency,
    })
    .map_err(HeapError::Config)?;
    let kernel = ACCOUNTS
        .create(
            None,
            NewAccount {
                flags: AccountFlags::KERNEL,
                tag: 0,
            },
        )
        .expect("a fresh table has room");
    let user = NewAccount {
        flags: AccountFlags::empty(),
        tag: 0,
    };
    let users = ACCOUNTS.create(None, user).expect("a fresh table has room");
    let operator = ACCOUNTS.create(None, user).expect("a fresh table has room");
    let budget = HEAP.snapshot().table.heap_budget;
    let sessions = match budget {
        Limit::Bytes(b) => Limit::Bytes(b.saturating_sub(params.operator_reserve)),
        Limit::Unlimited => Limit::Unlimited,
    };
    let _ = ACCOUNTS.set_max(users.id(), sessions);
    OPERATOR_RESERVE.store(
        params.operator_reserve,
        core::sync::atomic::Ordering::Relaxed,
    );
    ACCOUNTS.set_fault_policy(params.failslab);
    if params.failslab != quota::FaultPolicy::Off {
        let _ = ACCOUNTS.set_fault_target(users.id(), true);
    }
    on_this_cpu(|c| {
        c.scope.replace(Scope {
            account: kernel.id(),
            fallible: false,
        })
    });
    KERNEL.call_once(|| kernel);
    USERS.call_once(|| users);
    OPERATOR.call_once(|| operator);
    Ok(region)
}

/// A new account under `users` (where sessions live) limited to `max`
/// bytes, for a connection before its login or a test.
///
/// # Errors
/// The table's refusal (full, or the limit could not be set).
pub fn new_user_account(max: usize) -> Result<Account<'static>, quota::CreateError> {
    let account = ACCOUNTS.create(
        Some(users_account()),
        NewAccount {
            flags: AccountFlags::empty(),
            tag: 0,
        },
    )?;
    // A fresh account has no usage, so no limit can be refused.
    let _ = ACCOUNTS.set_max(account.id(), Limit::Bytes(max));
    Ok(account)
}

/// Bytes the sessions together may still take (`users`' max less its
/// usage).
#[cfg(not(feature = "ktest"))]
pub fn users_headroom() -> usize {
    ACCOUNTS
        .snapshot(users_account().id())
        .map_or(0, |s| match s.max {
            Limit::Bytes(max) => max.saturating_sub(s.current),
            Limit::Unlimited => usize::MAX,
        })
}

/// Bytes above the floor kept for the operator (boot parameter).
pub fn operator_reserve() -> usize {
    OPERATOR_RESERVE.load(core::sync::atomic::Ordering::Relaxed)
}

static OPERATOR_RESERVE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// The account of the console operator's cleanup commands.
pub fn operator_account() -> &'static Account<'static> {
    OPERATOR.get().expect("heap::init ran")
}

/// The kernel's own account.
pub fn kernel_account() -> &'static Account<'static> {
    KERNEL.get().expect("heap::init ran")
}

/// The parent of every session's account.
pub fn users_account() -> &'static Account<'static> {
    USERS.get().expect("heap::init ran")
}

/// The heap as the tracking allocator sees it.
pub fn snapshot() -> quota::HeapSnapshot {
    HEAP.snapshot()
}

/// Gives the emergency reserve back if pressure has passed.
pub fn refill_emergency() -> bool {
    HEAP.refill_emergency()
}

/// Runs `f` with allocations charged to the kernel.
pub fn as_kernel<R>(f: impl FnOnce() -> R) -> R {
    quota::charge_to::<KernelContext, R>(kernel_account(), f)
}

/// Runs `f` with allocation failure handled (`try_reserve` sees refusals).
pub fn fallible<R>(f: impl FnOnce() -> R) -> R {
    quota::fallible::<KernelContext, R>(f)
}

/// Runs `f` charging `account`.
pub fn charge_to<R>(account: &Account<'_>, f: impl FnOnce() -> R) -> R {
    quota::charge_to::<KernelContext, R>(account, f)
}

/// A thread stack of at least `bytes` with a guard page beneath it,
/// charged to the current scope and refused (not forced) over a limit.
///
/// # Errors
/// The [`NoMemory`] if it was refused.
pub fn try_alloc_stack(bytes: usize) -> Result<GuardedStack, NoMemory> {
    try_fallible(|| GuardedStack::new(bytes).ok_or(()))
}

/// Makes a secondary CPU's boot flow (its idle thread to be) run in the
/// kernel's scope, as the boot CPU's does.
pub fn enter_kernel_scope() {
    on_this_cpu(|c| {
        c.scope.replace(Scope {
            account: kernel_account().id(),
            fallible: false,
        })
    });
}
