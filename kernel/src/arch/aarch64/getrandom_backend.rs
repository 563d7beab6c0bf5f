//! `getrandom`'s custom backend (`--cfg getrandom_backend="custom"`, set
//! in `.cargo/config.toml`): the symbol `__getrandom_v03_custom`, which
//! `getrandom` 0.4 calls on bare metal (sunset's `fill_random` links it).
//!
//! It needs `#[unsafe(no_mangle)]`, hence `arch`; the bytes come from the
//! kernel's CSPRNG (`crate::rng`), which sits above `arch` and installs
//! itself with [`set_source`] once it is seeded. Until then, or if it cannot
//! be seeded (no `RNDR`), every call fails: never a constant.

use spin::Once;

/// Fills a buffer with random bytes; `false` if it cannot.
pub type Source = fn(&mut [u8]) -> bool;

static SOURCE: Once<Source> = Once::new();

/// Makes `source` the generator behind `getrandom`. Only the first call
/// counts.
pub fn set_source(source: Source) {
    SOURCE.call_once(|| source);
}

/// `getrandom`'s error for "this platform cannot give random bytes".
const UNAVAILABLE: ::getrandom::Error = ::getrandom::Error::new_custom(1);

/// The backend `getrandom` calls.
///
/// # Safety
/// `dest` must be valid for writes of `len` bytes and not aliased for the
/// duration of the call (`getrandom` passes its caller's buffer).
#[unsafe(no_mangle)]
pub unsafe extern "Rust" fn __getrandom_v03_custom(
    dest: *mut u8,
    len: usize,
) -> Result<(), ::getrandom::Error> {
    let Some(source) = SOURCE.get() else {
        return Err(UNAVAILABLE);
    };
    if len == 0 {
        return Ok(());
    }
    // SAFETY: the caller guarantees `dest` is writable for `len` bytes and
    // unaliased; `len > 0` so the pointer is not a dangling empty slice.
    let buf = unsafe { core::slice::from_raw_parts_mut(dest, len) };
    if source(buf) {
        Ok(())
    } else {
        Err(UNAVAILABLE)
    }
}
