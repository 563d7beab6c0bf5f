//! Who is being charged: the allocation context.
//!
//! The tracking allocator asks a [`Context`] for the current [`Scope`]: the
//! account to charge and whether failures are handled, and for the CPU it
//! runs on, whose charge stock it uses (see
//! [`AccountTable::charge_on`](crate::AccountTable::charge_on)). The kernel implements
//! `Context` once, for the whole build, as a type parameter of
//! [`TrackingAlloc`](crate::TrackingAlloc): its scope lives per CPU and is
//! saved and restored with each thread on a context switch. On the host,
//! [`ThreadLocal`] (feature `std`) keeps it per thread.
//!
//! Two scoped overrides change it for the length of a closure and restore it
//! afterwards, also when the closure unwinds:
//! - [`charge_to`]: kernel code working on behalf of someone else (the
//!   kernel writing a `/tmp` file's data for session 3) charges that
//!   account.
//! - [`fallible`]: the closure handles allocation failure (`try_reserve`
//!   and friends), so an over-limit allocation returns null instead of
//!   being forced.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::{Account, AccountId, Mode, Refusal};

/// The allocation context of the running code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope {
    /// The account allocations are charged to.
    pub account: AccountId,
    /// Allocation failures are handled: refuse instead of forcing.
    pub fallible: bool,
}

impl Scope {
    /// The root account, infallible: the context before anything is set.
    pub const ROOT: Scope = Scope {
        account: AccountId::ROOT,
        fallible: false,
    };

    /// The charge mode this scope asks for.
    #[inline]
    pub fn mode(self) -> Mode {
        if self.fallible {
            Mode::Fallible
        } else {
            Mode::Infallible
        }
    }
}

/// The hook through which the allocator learns the current scope.
///
/// Implementations must be cheap and must not allocate: they run inside
/// every allocation.
pub trait Context {
    /// The current scope.
    fn scope() -> Scope;

    /// Replaces the current scope, returning the previous one.
    fn replace(scope: Scope) -> Scope;

    /// The index of the CPU running the caller: which of the table's
    /// per-CPU stocks to use. The default, 0, suits one CPU. An index with
    /// no stock slot charges without stock. A wrong or stale answer (a
    /// thread migrated since) costs speed, never exactness: stock slots are
    /// only changed by compare-and-swap.
    fn cpu() -> usize {
        0
    }

    /// Called after a charge to `account` was forced over a limit: the
    /// owner should be killed at its next safe point. It runs inside the
    /// allocator and must not allocate or take locks. The account's
    /// [`KILL_PENDING`](crate::AccountFlags::KILL_PENDING) flag is already
    /// set; the default does nothing more.
    fn kill_pending(account: AccountId) {
        let _ = account;
    }

    /// Called when a charge was refused (the allocation returns null), so
    /// the caller that sees the failure can say why. Like
    /// [`Context::kill_pending`] it runs inside the allocator and must not
    /// allocate or take locks; the default does nothing.
    fn refused(refusal: Refusal) {
        let _ = refusal;
    }
}

/// A scope stored in one atomic word: a building block for `Context`
/// implementations (one per CPU in the kernel).
pub struct ScopeCell(AtomicU64);

const FALLIBLE_BIT: u64 = 1 << 32;

impl ScopeCell {
    /// A cell holding `scope`.
    #[must_use]
    pub const fn new(scope: Scope) -> Self {
        Self(AtomicU64::new(pack(scope)))
    }

    /// The scope held.
    #[inline]
    pub fn get(&self) -> Scope {
        unpack(self.0.load(Relaxed))
    }

    /// Stores `scope`, returning the previous one.
    pub fn replace(&self, scope: Scope) -> Scope {
        unpack(self.0.swap(pack(scope), Relaxed))
    }
}

#[inline]
const fn pack(scope: Scope) -> u64 {
    let flag = if scope.fallible { FALLIBLE_BIT } else { 0 };
    scope.account.to_raw() as u64 | flag
}

#[inline]
fn unpack(word: u64) -> Scope {
    let raw = u32::try_from(word & u64::from(u32::MAX)).unwrap_or(0);
    Scope {
        account: AccountId::from_raw(raw),
        fallible: word & FALLIBLE_BIT != 0,
    }
}

/// Restores a saved scope on drop, so overrides survive unwinding.
struct Restore<C: Context> {
    saved: Scope,
    context: PhantomData<fn() -> C>,
}

impl<C: Context> Drop for Restore<C> {
    fn drop(&mut self) {
        C::replace(self.saved);
    }
}

fn with_scope<C: Context, R>(change: impl FnOnce(Scope) -> Scope, f: impl FnOnce() -> R) -> R {
    let current = C::scope();
    let saved = C::replace(change(current));
    let _restore = Restore::<C> {
        saved,
        context: PhantomData,
    };
    f()
}

/// Runs `f` with its allocations charged to `account`. Borrowing the
/// account's handle keeps it alive for the whole call.
pub fn charge_to<C: Context, R>(account: &Account<'_>, f: impl FnOnce() -> R) -> R {
    let id = account.id();
    with_scope::<C, R>(|s| Scope { account: id, ..s }, f)
}

/// Runs `f` with allocation failure handled: an over-limit allocation
/// returns null (so `try_reserve` reports an error) instead of being forced.
pub fn fallible<C: Context, R>(f: impl FnOnce() -> R) -> R {
    with_scope::<C, R>(
        |s| Scope {
            fallible: true,
            ..s
        },
        f,
    )
}

/// A host `Context` keeping the scope per thread, for tests and benches.
#[cfg(feature = "std")]
pub struct ThreadLocal;

#[cfg(feature = "std")]
std::thread_local! {
    static THREAD_SCOPE: core::cell::Cell<Scope> = const { core::cell::Cell::new(Scope::ROOT) };
    static THREAD_CPU: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

#[cfg(feature = "std")]
impl ThreadLocal {
    /// Makes this thread use CPU `cpu`'s stock (a host stand-in for the
    /// CPU the kernel would report). Threads start on CPU 0.
    pub fn set_cpu(cpu: usize) {
        THREAD_CPU.with(|c| c.set(cpu));
    }
}

#[cfg(feature = "std")]
impl Context for ThreadLocal {
    #[inline]
    fn scope() -> Scope {
        THREAD_SCOPE.with(core::cell::Cell::get)
    }

    #[inline]
    fn replace(scope: Scope) -> Scope {
        THREAD_SCOPE.with(|c| c.replace(scope))
    }

    #[inline]
    fn cpu() -> usize {
        THREAD_CPU.with(core::cell::Cell::get)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::{AccountTable, NewAccount, Slot};

    #[test]
    fn cell_round_trips() {
        let scope = Scope {
            account: AccountId::from_raw(0xdead_beef),
            fallible: true,
        };
        let cell = ScopeCell::new(Scope::ROOT);
        assert_eq!(cell.replace(scope), Scope::ROOT);
        assert_eq!(cell.get(), scope);
    }

    #[test]
    fn overrides_nest_and_restore_even_on_unwind() {
        let slots: Vec<Slot> = (0..4).map(|_| Slot::new()).collect();
        let table = AccountTable::new(&slots);
        let a = table
            .create(
                None,
                NewAccount {
                    flags: crate::AccountFlags::empty(),
                    tag: 0,
                },
            )
            .unwrap();
        assert_eq!(ThreadLocal::scope(), Scope::ROOT);
        charge_to::<ThreadLocal, _>(&a, || {
            assert_eq!(
                ThreadLocal::scope(),
                Scope {
                    account: a.id(),
                    fallible: false
                }
            );
            fallible::<ThreadLocal, _>(|| {
                assert_eq!(
                    ThreadLocal::scope(),
                    Scope {
                        account: a.id(),
                        fallible: true
                    }
                );
            });
            assert!(!ThreadLocal::scope().fallible);
        });
        assert_eq!(ThreadLocal::scope(), Scope::ROOT);
        let r = std::panic::catch_unwind(|| fallible::<ThreadLocal, _>(|| panic!("unwind")));
        assert!(r.is_err());
        assert_eq!(ThreadLocal::scope(), Scope::ROOT);
    }
}
