//! Boot parameters, from `/chosen/bootargs` (QEMU `-append`), parsed by
//! [`kcore::cmdline`] (host-tested); this module prints its warnings and
//! keeps the text for `cat /proc/cmdline`.

pub use kcore::cmdline::Params;
use spin::Once;

use crate::kprintln;

static RAW: Once<&'static str> = Once::new();
static PARAMS: Once<Params> = Once::new();

/// Parses `bootargs` against RAM of `ram_bytes`; bad values are reported
/// on the console and their defaults kept.
pub fn parse(bootargs: &'static str, ram_bytes: usize) -> Params {
    RAW.call_once(|| bootargs);
    let params = kcore::cmdline::parse(bootargs, ram_bytes, |warning| kprintln!("{warning}"));
    *PARAMS.call_once(|| params)
}

/// The default process limit of a session (`pids_max=`).
pub fn pids_max() -> Option<u32> {
    PARAMS
        .get()
        .map_or(Some(kcore::cmdline::DEFAULT_PIDS_MAX), |p| p.pids_max)
}

/// The boot arguments as given.
pub fn raw() -> &'static str {
    RAW.get().copied().unwrap_or("")
}

/// The default hard limit of a session (`session_max=`).
pub fn session_max() -> quota::Limit {
    PARAMS
        .get()
        .map_or(kcore::cmdline::DEFAULT_SESSION_MAX, |p| p.session_max)
}
