//! Boot parameters, from `/chosen/bootargs` (QEMU `-append`), parsed by
//! [`kcore::cmdline`] (host-tested); this module prints its warnings and
//! keeps the text for `cat /proc/cmdline`.

pub use kcore::cmdline::Params;
use spin::Once;

use crate::kprintln;

static RAW: Once<&'static str> = Once::new();

/// Parses `bootargs` against RAM of `ram_bytes`; bad values are reported
/// on the console and their defaults kept.
pub fn parse(bootargs: &'static str, ram_bytes: usize) -> Params {
    RAW.call_once(|| bootargs);
    kcore::cmdline::parse(bootargs, ram_bytes, |warning| kprintln!("{warning}"))
}

/// The boot arguments as given.
pub fn raw() -> &'static str {
    RAW.get().copied().unwrap_or("")
}
