//! Boot parameters, from `/chosen/bootargs` (QEMU `-append`).
//!
//! `heap=SIZE` (default: a quarter of RAM), `floor=SIZE` (bytes the heap
//! keeps for the kernel; default an eighth of the heap), `emergency=SIZE`
//! (the reserve handed back for teardown; default 256K), `session_max=SIZE`
//! (each session's hard limit; default 8M; `max` for none). Sizes take
//! K/M/G suffixes. Shown verbatim by `cat /proc/cmdline`.

use quota::Limit;
use spin::Once;

use crate::kprintln;

static RAW: Once<&'static str> = Once::new();

/// The parameters in force.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Heap bytes.
    pub heap: usize,
    /// Heap floor.
    pub floor: usize,
    /// Emergency reserve.
    pub emergency: usize,
    /// Default hard limit of a session.
    pub session_max: Limit,
}

/// Parses `bootargs` against RAM of `ram_bytes`; bad values are reported
/// and their defaults kept.
pub fn parse(bootargs: &'static str, ram_bytes: usize) -> Params {
    RAW.call_once(|| bootargs);
    let mut heap = None;
    let mut floor = None;
    let mut emergency = 256 << 10;
    let mut session_max = Limit::Bytes(8 << 20);
    for word in bootargs.split_ascii_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            kprintln!("cmdline: ignoring '{word}': expected key=value");
            continue;
        };
        let size = procfs::parse_size(value.as_bytes());
        match (key, size) {
            ("heap", Ok(Limit::Bytes(n))) => heap = Some(n),
            ("floor", Ok(Limit::Bytes(n))) => floor = Some(n),
            ("emergency", Ok(Limit::Bytes(n))) => emergency = n,
            ("session_max", Ok(limit)) => session_max = limit,
            ("heap" | "floor" | "emergency", Ok(Limit::Unlimited)) => {
                kprintln!("cmdline: {key} cannot be unlimited; keeping the default");
            }
            ("heap" | "floor" | "emergency" | "session_max", Err(e)) => {
                kprintln!("cmdline: {key}={value}: {e}; keeping the default");
            }
            _ => kprintln!("cmdline: unknown parameter '{key}' ignored"),
        }
    }
    let heap = heap.unwrap_or(ram_bytes / 4);
    let floor = floor.unwrap_or(heap / 8);
    Params {
        heap,
        floor,
        emergency,
        session_max,
    }
}

/// The boot arguments as given.
pub fn raw() -> &'static str {
    RAW.get().copied().unwrap_or("")
}
