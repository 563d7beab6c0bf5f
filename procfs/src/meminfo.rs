//! `/proc/meminfo`: the kernel heap as the tracking allocator sees it.
//!
//! Linux-like `Key:` lines, values right-aligned, all plain decimal
//! integers. Keys ending in `Total`, `Used`, `Free`, `Floor`, `Budget`,
//! `Bytes`, `Capacity` (the emergency one) and `Held` are **bytes**; the
//! rest are counts. `HeapBudget` is `max` when no floor is configured.
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
//! ```
//!
//! (The `# ...` comments are not part of the file.)

use core::fmt;

use quota::HeapSnapshot;

use crate::align::{Pad, Side};

/// Width of the `Key:` column, the longest key and a space.
const KEY_WIDTH: usize = 19;
/// Width of the value column.
const VALUE_WIDTH: usize = 12;

/// What `/proc/meminfo` shows; `Display` renders the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeminfoView(pub HeapSnapshot);

impl fmt::Display for MeminfoView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.0;
        let (t, e) = (&h.table, &h.emergency);
        let lines: [(&str, &dyn fmt::Display); 20] = [
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
    use quota::{EmergencySnapshot, Limit, TableStats};

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

    #[test]
    fn renders_aligned_lines() {
        let text = MeminfoView(heap()).to_string();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("HeapTotal:              8388608"));
        assert_eq!(lines.next(), Some("HeapUsed:                524288"));
        assert_eq!(text.lines().count(), 20);
        assert!(
            text.lines().all(|l| l.len() == KEY_WIDTH + VALUE_WIDTH),
            "{text}"
        );
        assert!(text.ends_with("FaultsInjected:               6\n"));
    }

    #[test]
    fn every_value_reads_back() {
        let h = heap();
        let text = MeminfoView(h).to_string();
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
    }

    #[test]
    fn unlimited_budget_is_max() {
        let mut h = heap();
        h.table.heap_budget = Limit::Unlimited;
        let text = MeminfoView(h).to_string();
        assert_eq!(find_field(&text, "HeapBudget"), Some("max"));
    }
}
