//! `/proc/meminfo`: the kernel heap as the tracking allocator sees it, and
//! the system-wide limits and policies that bound it.
//!
//! Linux-like `Key:` lines, values right-aligned in a 12-column field (a
//! longer value is written whole and pushes the line right). Keys ending in
//! `Total`, `Used`, `Free`, `Floor`, `Budget`, `Bytes`, `Capacity` (the
//! emergency one), `Held`, `Size` and `Reserve` are **bytes**, plain
//! decimal integers; a limit that is not set (`HeapBudget` with no floor,
//! `TmpSize`, `PidsMax`, the pressure thresholds without a budget) is
//! `max`. `FaultInjection` (see [`FaultView`]) and `PressureLevel` (see
//! [`PressureLevel`]) are text; the rest are counts. New keys are added at
//! the end.
//!
//! ```text
//! HeapTotal:              8388608   # bytes the heap was configured with
//! HeapUsed:                524288   # bytes charged (headers included)
//! HeapFree:               7798784   # total - used - emergency held
//! HeapFloor:              1048576   # bytes kept for the kernel
//! HeapBudget:             7274496   # non-kernel charges stop here
//! KernelBytes:             262144   # charged to kernel accounts
//! SessionBytes:            262144   # charged to session and process accounts
//! HeaderBytes:               4096   # allocation headers (in HeapUsed)
//! Allocations:                512   # live allocations
//! EmergencyCapacity:        65536   # the emergency reserve block
//! EmergencyHeld:            65536   # held now (capacity or 0)
//! EmergencyReleases:            0   # times given back to the heap
//! EmergencyRefills:             0   # times taken again
//! AccountsLive:                 9
//! AccountsOrphaned:             0   # dropped but still charged
//! AccountsCapacity:           256
//! FloorRefusals:                0   # non-kernel charges refused at the floor
//! Misattributed:                0   # charges to a dead account, sent to root
//! AccountingErrors:             0   # uncharges matching no charge
//! FaultsInjected:               0
//! TmpSize:                2097152   # the /tmp size limit
//! TmpUsed:                   4096   # bytes of file data in /tmp
//! OperatorReserve:         131072   # above the floor, kept for the console operator
//! PidsMax:                     64   # a new session's pids.max (boot default)
//! FaultInjection:       every 100   # off | every N | random P/1000000 seed S
//! PressureWarnBytes:      5455872   # SessionBytes at which pressure is a warning
//! PressureCritBytes:      6183322   # SessionBytes at which new SSH sessions are refused
//! PressureLevel:           normal   # normal | warning | critical
//! ```
//!
//! (The `# ...` comments are not part of the file.)

use core::fmt;

use quota::{FaultPolicy, HeapSnapshot, Limit};

use crate::align::{Pad, Side};
use crate::pids::PidsMax;

/// Width of the `Key:` column, the longest key and a space.
const KEY_WIDTH: usize = 19;
/// Width of the value column.
const VALUE_WIDTH: usize = 12;

/// What `/proc/meminfo` shows; `Display` renders the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeminfoView {
    /// The heap and the account table (`HeapTotal` ... `FaultsInjected`).
    pub heap: HeapSnapshot,
    /// `/tmp`'s limit and use (`TmpSize`, `TmpUsed`).
    pub tmp: TmpUsage,
    /// Bytes above the heap floor kept for the console operator's commands
    /// (`OperatorReserve`).
    pub operator_reserve: usize,
    /// The `pids.max` a new session starts with (`PidsMax`).
    pub pids_max: PidsMax,
    /// The fault-injection policy in force (`FaultInjection`).
    pub faults: FaultPolicy,
    /// The memory-pressure thresholds and level (`PressureWarnBytes`,
    /// `PressureCritBytes`, `PressureLevel`).
    pub pressure: PressureView,
}

/// How much of the heap budget the sessions use, as a level: `normal`,
/// `warning` (past the warning threshold) or `critical` (past the critical
/// one: new SSH sessions are refused). Ordered from `Normal` up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PressureLevel {
    /// Below the warning threshold (or fell back below it).
    Normal,
    /// At or past the warning threshold.
    Warning,
    /// At or past the critical threshold.
    Critical,
}

impl PressureLevel {
    /// The level's name as `/proc/meminfo` shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            PressureLevel::Normal => "normal",
            PressureLevel::Warning => "warning",
            PressureLevel::Critical => "critical",
        }
    }
}

impl fmt::Display for PressureLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The memory-pressure thresholds, in bytes charged to sessions
/// (`SessionBytes`), and the level in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PressureView {
    /// Where the level becomes a warning (`PressureWarnBytes`).
    pub warn: Limit,
    /// Where it becomes critical (`PressureCritBytes`).
    pub critical: Limit,
    /// The level now (`PressureLevel`).
    pub level: PressureLevel,
}

/// `/tmp`'s size limit and use, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TmpUsage {
    /// The most file data `/tmp` may hold (`TmpSize`).
    pub size: Limit,
    /// Bytes of file data it holds now (`TmpUsed`).
    pub used: usize,
}

/// A [`FaultPolicy`] as one line of text: `off`, `every N` (every Nth
/// targeted charge is refused) or `random P/1000000 seed S` (each with
/// probability P in a million, from seed S). The numbers are plain decimal
/// integers, as given in the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultView(pub FaultPolicy);

impl fmt::Display for FaultView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            FaultPolicy::Off => f.write_str("off"),
            FaultPolicy::EveryNth(n) => write!(f, "every {n}"),
            FaultPolicy::Probability { per_million, seed } => {
                write!(f, "random {per_million}/1000000 seed {seed}")
            }
        }
    }
}

impl fmt::Display for MeminfoView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.heap;
        let (t, e) = (&h.table, &h.emergency);
        let faults = FaultView(self.faults);
        let lines: [(&str, &dyn fmt::Display); 28] = [
            ("HeapTotal", &h.size),
            ("HeapUsed", &h.used),
            ("HeapFree", &h.free),
            ("HeapFloor", &h.floor),
            ("HeapBudget", &t.heap_budget),
            ("KernelBytes", &t.kernel_bytes),
            ("SessionBytes", &t.user_bytes),
            ("HeaderBytes", &h.header_bytes),
            ("Allocations", &h.allocations),
            ("EmergencyCapacity", &e.capacity),
            ("EmergencyHeld", &e.held),
            ("EmergencyReleases", &e.releases),
            ("EmergencyRefills", &e.refills),
            ("AccountsLive", &t.live),
            ("AccountsOrphaned", &t.orphaned),
            ("AccountsCapacity", &t.capacity),
            ("FloorRefusals", &t.floor_refusals),
            ("Misattributed", &t.misattributed),
            ("AccountingErrors", &t.accounting_errors),
            ("FaultsInjected", &t.faults_injected),
            ("TmpSize", &self.tmp.size),
            ("TmpUsed", &self.tmp.used),
            ("OperatorReserve", &self.operator_reserve),
            ("PidsMax", &self.pids_max),
            ("FaultInjection", &faults),
            ("PressureWarnBytes", &self.pressure.warn),
            ("PressureCritBytes", &self.pressure.critical),
            ("PressureLevel", &self.pressure.level),
        ];
        for (key, value) in lines {
            let key = format_args!("{key}:");
            writeln!(
                f,
                "{}{}",
                Pad(&key, Side::Left, KEY_WIDTH),
                Pad(value, Side::Right, VALUE_WIDTH)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use quota::{EmergencySnapshot, TableStats};

    use super::*;
    use crate::find_field;

    fn heap() -> HeapSnapshot {
        HeapSnapshot {
            size: 8 << 20,
            used: 512 << 10,
            free: (8 << 20) - (512 << 10) - (64 << 10),
            floor: 1 << 20,
            emergency: EmergencySnapshot {
                capacity: 64 << 10,
                held: 64 << 10,
                releases: 1,
                refills: 2,
            },
            header_bytes: 4096,
            allocations: 512,
            table: TableStats {
                capacity: 256,
                live: 9,
                orphaned: 1,
                kernel_bytes: 256 << 10,
                user_bytes: 256 << 10,
                misattributed: 3,
                accounting_errors: 4,
                floor_refusals: 5,
                faults_injected: 6,
                heap_budget: Limit::Bytes(7_274_496),
            },
        }
    }

    fn view(faults: FaultPolicy) -> MeminfoView {
        MeminfoView {
            heap: heap(),
            tmp: TmpUsage {
                size: Limit::Bytes(2 << 20),
                used: 4096,
            },
            operator_reserve: 128 << 10,
            pids_max: PidsMax::new(64).unwrap(),
            faults,
            pressure: PressureView {
                warn: Limit::Bytes(5_455_872),
                critical: Limit::Bytes(6_183_322),
                level: PressureLevel::Warning,
            },
        }
    }

    #[test]
    fn renders_aligned_lines() {
        let text = view(FaultPolicy::EveryNth(100)).to_string();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("HeapTotal:              8388608"));
        assert_eq!(lines.next(), Some("HeapUsed:                524288"));
        assert_eq!(text.lines().count(), 28);
        assert!(
            text.lines().all(|l| l.len() == KEY_WIDTH + VALUE_WIDTH),
            "{text}"
        );
        assert!(text.contains("\nFaultsInjected:               6\n"));
        assert!(text.ends_with(
            "\
TmpSize:                2097152
TmpUsed:                   4096
OperatorReserve:         131072
PidsMax:                     64
FaultInjection:       every 100
PressureWarnBytes:      5455872
PressureCritBytes:      6183322
PressureLevel:          warning
"
        ));
    }

    #[test]
    fn a_long_fault_policy_is_written_whole() {
        let policy = FaultPolicy::Probability {
            per_million: 10_000,
            seed: 42,
        };
        let text = view(policy).to_string();
        assert!(text.contains("\nFaultInjection:    random 10000/1000000 seed 42\n"));
        assert_eq!(
            find_field(&text, "FaultInjection"),
            Some("random 10000/1000000 seed 42")
        );
    }

    #[test]
    fn fault_policies_render_as_one_line() {
        let text = |p| FaultView(p).to_string();
        assert_eq!(text(FaultPolicy::Off), "off");
        assert_eq!(text(FaultPolicy::EveryNth(7)), "every 7");
        assert_eq!(
            text(FaultPolicy::Probability {
                per_million: 1_000_000,
                seed: u64::MAX
            }),
            "random 1000000/1000000 seed 18446744073709551615"
        );
    }

    #[test]
    fn every_value_reads_back() {
        let v = view(FaultPolicy::Off);
        let h = v.heap;
        let text = v.to_string();
        let field = |k| find_field(&text, k).unwrap();
        assert_eq!(field("HeapFree"), h.free.to_string());
        assert_eq!(field("HeapFloor"), "1048576");
        assert_eq!(field("HeapBudget"), "7274496");
        assert_eq!(field("KernelBytes"), "262144");
        assert_eq!(field("SessionBytes"), "262144");
        assert_eq!(field("HeaderBytes"), "4096");
        assert_eq!(field("Allocations"), "512");
        assert_eq!(field("EmergencyCapacity"), "65536");
        assert_eq!(field("EmergencyHeld"), "65536");
        assert_eq!(field("EmergencyReleases"), "1");
        assert_eq!(field("EmergencyRefills"), "2");
        assert_eq!(field("AccountsLive"), "9");
        assert_eq!(field("AccountsOrphaned"), "1");
        assert_eq!(field("AccountsCapacity"), "256");
        assert_eq!(field("FloorRefusals"), "5");
        assert_eq!(field("Misattributed"), "3");
        assert_eq!(field("AccountingErrors"), "4");
        assert_eq!(field("FaultsInjected"), "6");
        assert_eq!(field("TmpSize"), "2097152");
        assert_eq!(field("TmpUsed"), "4096");
        assert_eq!(field("OperatorReserve"), "131072");
        assert_eq!(field("PidsMax"), "64");
        assert_eq!(field("FaultInjection"), "off");
        assert_eq!(field("PressureWarnBytes"), "5455872");
        assert_eq!(field("PressureCritBytes"), "6183322");
        assert_eq!(field("PressureLevel"), "warning");
    }

    #[test]
    fn pressure_levels_render_as_words_in_order() {
        let levels = [
            PressureLevel::Normal,
            PressureLevel::Warning,
            PressureLevel::Critical,
        ];
        let words: Vec<_> = levels.iter().map(ToString::to_string).collect();
        assert_eq!(words, ["normal", "warning", "critical"]);
        assert!(levels.windows(2).all(|w| w[0] < w[1]));
        for level in levels {
            let mut v = view(FaultPolicy::Off);
            v.pressure.level = level;
            let text = v.to_string();
            assert_eq!(find_field(&text, "PressureLevel"), Some(level.as_str()));
            assert!(text.ends_with(&format!("{:>12}\n", level.as_str())));
        }
    }

    #[test]
    fn unset_limits_are_max() {
        let mut v = view(FaultPolicy::Off);
        v.heap.table.heap_budget = Limit::Unlimited;
        v.tmp.size = Limit::Unlimited;
        v.pids_max = PidsMax::UNLIMITED;
        v.pressure.warn = Limit::Unlimited;
        v.pressure.critical = Limit::Unlimited;
        let text = v.to_string();
        assert_eq!(find_field(&text, "HeapBudget"), Some("max"));
        assert_eq!(find_field(&text, "TmpSize"), Some("max"));
        assert_eq!(find_field(&text, "PidsMax"), Some("max"));
        assert_eq!(find_field(&text, "PressureWarnBytes"), Some("max"));
        assert_eq!(find_field(&text, "PressureCritBytes"), Some("max"));
    }
}
