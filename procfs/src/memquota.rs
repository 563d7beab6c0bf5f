//! `/proc/<pid>/memquota`: one process's account and its session's.
//!
//! One `key value` line per field, in this order, cgroup v2 vocabulary;
//! bytes and counts are plain decimal integers, and a limit that is not set
//! is `max`:
//!
//! ```text
//! pid 7                    # the process
//! sid 3                    # its session
//! current 20480            # bytes charged to its account (descendants' included)
//! max 4194304              # hard limit
//! high max                 # soft limit
//! peak 65536               # highest current reached
//! allocations 12           # blocks the current bytes are in
//! overdraft 65536          # bytes a charge that cannot fail may go past max
//! events.max 0             # charges refused at max
//! events.high 0            # charges that left current above high
//! events.oom_kill 0        # processes killed for exceeding it
//! events.forced 0          # charges forced past max or the heap floor
//! session.current 40960    # the same for the session's account
//! session.max 8388608
//! session.high max
//! session.peak 81920
//! pids.current 4          # live processes in the session
//! pids.max 32             # the session's process limit (or max)
//! ```
//!
//! (The `# ...` comments are not part of the file.) On the session leader
//! the process's account is the session's, so both halves show the same
//! account. `pids.*` are always the session's. New keys may be added (at
//! the end); existing ones keep their meaning. [`crate::MemquotaFile`]
//! reads the text back.

use core::fmt;

use quota::AccountSnapshot;

use crate::pids::PidsUsage;

/// The keys of a `memquota` file, in the order they are written.
pub(crate) const KEYS: [&str; 18] = [
    "pid",
    "sid",
    "current",
    "max",
    "high",
    "peak",
    "allocations",
    "overdraft",
    "events.max",
    "events.high",
    "events.oom_kill",
    "events.forced",
    "session.current",
    "session.max",
    "session.high",
    "session.peak",
    "pids.current",
    "pids.max",
];

/// What `/proc/<pid>/memquota` shows; `Display` renders the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemquotaView {
    /// The process.
    pub pid: u32,
    /// Its session.
    pub sid: u32,
    /// The process's account.
    pub process: AccountSnapshot,
    /// The session's account (the same as `process` on the session leader).
    pub session: AccountSnapshot,
    /// The session's process count and limit.
    pub pids: PidsUsage,
}

impl fmt::Display for MemquotaView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (p, s) = (&self.process, &self.session);
        let values: [&dyn fmt::Display; KEYS.len()] = [
            &self.pid,
            &self.sid,
            &p.current,
            &p.max,
            &p.high,
            &p.peak,
            &p.blocks,
            &p.overdraft,
            &p.events.max,
            &p.events.high,
            &p.events.oom_kill,
            &p.events.forced,
            &s.current,
            &s.max,
            &s.high,
            &s.peak,
            &self.pids.current,
            &self.pids.max,
        ];
        for (key, value) in KEYS.iter().zip(values) {
            writeln!(f, "{key} {value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use quota::{AccountFlags, AccountId, Events, Limit};

    use super::*;
    use crate::PidsMax;

    /// Four processes of at most 32.
    pub(crate) const PIDS: PidsUsage = PidsUsage {
        current: 4,
        max: match PidsMax::new(32) {
            Some(max) => max,
            None => PidsMax::UNLIMITED,
        },
    };

    /// A snapshot with every field distinct, for rendering tests.
    pub(crate) fn snapshot(index: u32, current: usize, max: Limit) -> AccountSnapshot {
        AccountSnapshot {
            id: AccountId::from_raw(index),
            parent: Some(AccountId::ROOT),
            tag: 0,
            flags: AccountFlags::empty(),
            orphaned: false,
            current,
            blocks: 12,
            max,
            high: Limit::Unlimited,
            peak: current * 2,
            overdraft: 65536,
            events: Events {
                max: 1,
                high: 2,
                oom_kill: 3,
                forced: 4,
            },
            children: 0,
            depth: 2,
        }
    }

    #[test]
    fn renders_every_key_in_order() {
        let view = MemquotaView {
            pid: 7,
            sid: 3,
            process: snapshot(5, 20480, Limit::Bytes(4 << 20)),
            session: AccountSnapshot {
                high: Limit::Bytes(6 << 20),
                ..snapshot(4, 40960, Limit::Bytes(8 << 20))
            },
            pids: PIDS,
        };
        let expected = "\
pid 7
sid 3
current 20480
max 4194304
high max
peak 40960
allocations 12
overdraft 65536
events.max 1
events.high 2
events.oom_kill 3
events.forced 4
session.current 40960
session.max 8388608
session.high 6291456
session.peak 81920
pids.current 4
pids.max 32
";
        assert_eq!(view.to_string(), expected);
    }

    #[test]
    fn unlimited_renders_as_max() {
        let s = snapshot(1, 0, Limit::Unlimited);
        let text = MemquotaView {
            pid: 1,
            sid: 1,
            process: s,
            session: s,
            pids: PidsUsage {
                current: 1,
                max: PidsMax::UNLIMITED,
            },
        }
        .to_string();
        assert!(text.contains("\nmax max\n"));
        assert!(text.contains("\nsession.max max\n"));
        assert!(text.ends_with("\npids.max max\n"));
    }
}
