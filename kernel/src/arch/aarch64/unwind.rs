//! Unwinding a thread's stack back to a catch frame (`panic = "unwind"`).
//!
//! [`raise`] starts a two-phase unwind with the `unwinding` crate's DWARF
//! unwinder and Rust personality, which read the image's `.eh_frame` and
//! `.gcc_except_table` (kept by `linker.ld`, found through
//! `__executable_start`, `__etext` and `__eh_frame`). Phase 1 looks for a
//! [`catch`] frame without changing anything; only if it finds one does
//! phase 2 run the destructors of every frame in between and land in that
//! `catch`, which returns [`Caught`].
//!
//! Exception objects are statics, not heap blocks: raising must work when
//! the heap has just refused an allocation, and nothing is left to free
//! if a raise is abandoned. There are [`SLOTS`] of them, so that as many
//! threads can be unwinding at once (an unwind runs with IRQs enabled, and
//! others may fail meanwhile); a [`raise`] that finds none free, or whose
//! owner is already unwinding, returns at once, as a raise with no catch
//! frame above it does, and the caller falls back to what it would do
//! without unwinding. A thread ended in the middle of its own unwind gives
//! its object back with [`abandon`]. Each raise names its owner, a nonzero
//! id unique to the raising thread (the kernel passes the pid, never
//! reused), so only that thread can give it back.
//!
//! What this module does not know, and its callers must check: whether the
//! frames to be unwound may be unwound at all (no lock held, no interrupt
//! frame in between, a catch frame on this stack).

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU64, Ordering};

use unwinding::abi::{
    _Unwind_Backtrace, _Unwind_DeleteException, _Unwind_GetIP, _Unwind_RaiseException,
    UnwindContext, UnwindException, UnwindReasonCode,
};

/// The exception class of the kernel's unwinds ("MQKERNEL").
const CLASS: u64 = u64::from_be_bytes(*b"MQKERNEL");

/// Unwinds that can be in flight at once.
pub const SLOTS: usize = 64;

/// One exception object (see the module doc).
struct Slot(UnsafeCell<MaybeUninit<UnwindException>>);

// SAFETY: an object is written only by the `raise` that set its entry of
// `OWNERS` (and by the unwinder it hands the object to), and released by
// `release` when that unwind is caught, or by `abandon` from its owner,
// whose stack never runs again; no two unwinds use one object at once.
unsafe impl Sync for Slot {}

static EXCEPTIONS: [Slot; SLOTS] = [const { Slot(UnsafeCell::new(MaybeUninit::zeroed())) }; SLOTS];
/// Who raised the unwind using each object; 0 when it is free.
static OWNERS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

/// An unwind that [`catch`] stopped: the frames inside it were unwound
/// and their destructors ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caught {
    /// Whether it was the kernel's own exception (always, unless foreign
    /// code raised one).
    pub ours: bool,
}

/// The exception object's cleanup: called by `_Unwind_DeleteException`
/// when the unwind is caught.
unsafe extern "C" fn release(_reason: UnwindReasonCode, exception: *mut UnwindException) {
    for (slot, owner) in EXCEPTIONS.iter().zip(&OWNERS) {
        if core::ptr::eq(exception, slot.0.get().cast::<UnwindException>()) {
            owner.store(0, Ordering::Release);
        }
    }
}

/// Unwinds the running thread's stack to the nearest [`catch`] frame,
/// running every destructor on the way; does not return then.
///
/// `owner` is a nonzero id unique to the running thread (see the module
/// doc). Returns if unwinding is impossible: no catch frame is on this
/// stack (phase 1 found none and nothing was changed), another unwind is
/// in flight, or `owner` is 0. Callers must ensure every frame between here and that catch may
/// be unwound: in particular no interrupt (exception-return) frame lies
/// between, and no frame holds a lock whose data it left half-updated.
pub fn raise(owner: u64) {
    if owner == 0 || OWNERS.iter().any(|o| o.load(Ordering::Acquire) == owner) {
        return;
    }
    let Some(index) = OWNERS.iter().position(|o| {
        o.compare_exchange(0, owner, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }) else {
        return;
    };
    let exception = EXCEPTIONS[index].0.get().cast::<UnwindException>();
    // SAFETY: its `OWNERS` entry was 0, so no unwind owns the object and this
    // raise has it to itself; a zeroed `UnwindException` is a valid value
    // (no cleanup, no stop function, zero private words), which is reset
    // here before the class and cleanup are set.
    unsafe {
        exception.write_bytes(0, 1);
    }
    // SAFETY: as above: the object is ours and valid; setting its two
    // public fields is what the Itanium ABI asks of the raiser.
    unsafe {
        (*exception).exception_class = CLASS;
    }
    // SAFETY: as above.
    unsafe {
        (*exception).exception_cleanup = Some(release);
    }
    // SAFETY: `exception` is a valid, initialised exception object that
    // lives forever, with a cleanup for the catcher to call. The unwind it
    // starts only runs destructors of frames on this stack up to a catch
    // frame, which the caller has vouched may be unwound; if phase 1 finds
    // no catch frame it returns without having changed anything.
    let _reason = unsafe { _Unwind_RaiseException(exception) };
    // Not raised: the object is free again.
    OWNERS[index].store(0, Ordering::Release);
}

/// Gives up the unwind in flight, whose thread is being ended without it
/// completing (a panic it could not unwind from, in a destructor run by
/// the unwind): that stack never runs again, so the exception object is
/// free for the next [`raise`]. Does nothing unless `owner` raised it.
pub fn abandon(owner: u64) {
    for slot in &OWNERS {
        let _ = slot.compare_exchange(owner, 0, Ordering::Release, Ordering::Relaxed);
    }
}

/// Runs `f`; if an unwind started inside it (by [`raise`], or a foreign
/// one) reaches this frame, stops it there and returns [`Caught`] once
/// every frame of `f` has run its destructors.
pub fn catch<F: FnOnce() -> R, R>(f: F) -> Result<R, Caught> {
    /// `f` going in, its result or the catch coming out.
    struct Data<F, R> {
        f: Option<F>,
        r: Option<R>,
        caught: Option<Caught>,
    }

    fn call<F: FnOnce() -> R, R>(data: *mut u8) {
        // SAFETY: `data` is the `&mut Data<F, R>` below, live and not
        // otherwise borrowed during the intrinsic.
        let data = unsafe { &mut *data.cast::<Data<F, R>>() };
        if let Some(f) = data.f.take() {
            data.r = Some(f());
        }
    }

    #[expect(
        clippy::cast_ptr_alignment,
        reason = "the intrinsic passes the exception object the unwinder carried"
    )]
    fn caught<F, R>(data: *mut u8, exception: *mut u8) {
        let exception = exception.cast::<UnwindException>();
        // SAFETY: the intrinsic passes the exception object the unwind
        // carried, which is valid until deleted below.
        let ours = unsafe { (*exception).exception_class } == CLASS;
        // SAFETY: the unwind is over: the object is deleted exactly once,
        // here, through the cleanup its raiser set (for ours, `release`).
        unsafe { _Unwind_DeleteException(exception) };
        // SAFETY: as in `call`; `call` was unwound, so it holds no borrow.
        let data = unsafe { &mut *data.cast::<Data<F, R>>() };
        data.caught = Some(Caught { ours });
    }

    let mut data = Data::<F, R> {
        f: Some(f),
        r: None,
        caught: None,
    };
    let ptr = (&raw mut data).cast::<u8>();
    // SAFETY: `call` and `caught` match the intrinsic's contract for
    // `Data<F, R>` at `ptr`, which outlives the call; `data` is not
    // touched here until it returns.
    let _unwound = unsafe { core::intrinsics::catch_unwind(call::<F, R>, ptr, caught::<F, R>) };
    match (data.r, data.caught) {
        (Some(r), _) => Ok(r),
        (None, caught) => Err(caught.unwrap_or(Caught { ours: false })),
    }
}

/// Return addresses on this stack, innermost first, up to `out.len()`:
/// the panic report prints them (`nm -n` on the kernel ELF names them).
/// Returns how many were written. Reads `.eh_frame` only; changes nothing.
pub fn backtrace(out: &mut [usize]) -> usize {
    struct Trace<'a> {
        out: &'a mut [usize],
        len: usize,
    }
    extern "C" fn frame(ctx: &UnwindContext<'_>, arg: *mut core::ffi::c_void) -> UnwindReasonCode {
        // SAFETY: `arg` is the `Trace` passed below, alive and not aliased
        // for the whole `_Unwind_Backtrace` call, which runs this callback
        // on this thread only.
        let trace = unsafe { &mut *arg.cast::<Trace<'_>>() };
        if trace.len == trace.out.len() {
            return UnwindReasonCode::END_OF_STACK;
        }
        trace.out[trace.len] = _Unwind_GetIP(ctx);
        trace.len += 1;
        UnwindReasonCode::NO_REASON
    }
    let mut trace = Trace { out, len: 0 };
    let _ = _Unwind_Backtrace(frame, (&raw mut trace).cast());
    trace.len
}
