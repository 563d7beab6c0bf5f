//! Property tests that what procfs renders reads back: `memquota` files
//! through `MemquotaFile::parse`, paths through `ProcPath::parse`, meminfo
//! values through `find_field`; and that the account table stays aligned.

use procfs::{
    AccountRow, AccountTableView, MeminfoView, MemquotaFile, MemquotaView, PidFile, PidRef,
    PidsMax, PidsUsage, PressureLevel, PressureView, ProcPath, TmpUsage, find_field,
};
use proptest::prelude::*;
use quota::{
    AccountFlags, AccountId, AccountSnapshot, EmergencySnapshot, Events, FaultPolicy, HeapSnapshot,
    Limit, TableStats,
};

fn pids_max() -> impl Strategy<Value = PidsMax> {
    prop_oneof![
        Just(PidsMax::UNLIMITED),
        (0..=PidsMax::MAX_COUNT).prop_map(|n| PidsMax::new(n).unwrap()),
        (0..=64u32).prop_map(|n| PidsMax::new(n).unwrap()),
    ]
}

fn pids() -> impl Strategy<Value = PidsUsage> {
    (any::<u32>(), pids_max()).prop_map(|(current, max)| PidsUsage { current, max })
}

fn fault_policy() -> impl Strategy<Value = FaultPolicy> {
    prop_oneof![
        Just(FaultPolicy::Off),
        any::<u64>().prop_map(FaultPolicy::EveryNth),
        (any::<u32>(), any::<u64>())
            .prop_map(|(per_million, seed)| FaultPolicy::Probability { per_million, seed }),
    ]
}

/// What the `FaultInjection` line should say, written out independently of
/// `FaultView`.
fn fault_text(policy: FaultPolicy) -> String {
    match policy {
        FaultPolicy::Off => "off".to_string(),
        FaultPolicy::EveryNth(n) => format!("every {n}"),
        FaultPolicy::Probability { per_million, seed } => {
            format!("random {per_million}/1000000 seed {seed}")
        }
    }
}

/// `max` for unlimited, else the decimal count.
fn pids_text(max: PidsMax) -> String {
    max.count()
        .map_or_else(|| "max".to_string(), |n| n.to_string())
}

fn pressure() -> impl Strategy<Value = PressureView> {
    let level = prop_oneof![
        Just(PressureLevel::Normal),
        Just(PressureLevel::Warning),
        Just(PressureLevel::Critical),
    ];
    (limit(), limit(), level).prop_map(|(warn, critical, level)| PressureView {
        warn,
        critical,
        level,
    })
}

fn limit() -> impl Strategy<Value = Limit> {
    prop_oneof![
        Just(Limit::Unlimited),
        any::<usize>().prop_map(Limit::Bytes),
        (0..=quota::MAX_BYTES).prop_map(Limit::Bytes),
    ]
}

fn events() -> impl Strategy<Value = Events> {
    any::<[u64; 4]>().prop_map(|[max, high, oom_kill, forced]| Events {
        max,
        high,
        oom_kill,
        forced,
    })
}

fn account() -> impl Strategy<Value = AccountSnapshot> {
    (
        (
            any::<u32>(),
            any::<Option<u32>>(),
            any::<u64>(),
            any::<bool>(),
        ),
        (
            any::<usize>(),
            any::<usize>(),
            limit(),
            limit(),
            any::<usize>(),
        ),
        (any::<usize>(), events(), any::<u32>(), 0..16u32),
    )
        .prop_map(
            |(
                (id, parent, tag, orphaned),
                (current, blocks, max, high, peak),
                (overdraft, events, children, depth),
            )| AccountSnapshot {
                id: AccountId::from_raw(id),
                parent: parent.map(AccountId::from_raw),
                tag,
                flags: AccountFlags::empty(),
                orphaned,
                current,
                blocks,
                max,
                high,
                peak,
                overdraft,
                events,
                children,
                depth,
            },
        )
}

fn proc_path() -> impl Strategy<Value = ProcPath> {
    let pid = prop_oneof![Just(PidRef::SelfRef), any::<u32>().prop_map(PidRef::Pid)];
    let file = prop_oneof![Just(PidFile::Memquota), Just(PidFile::Status)];
    prop_oneof![
        Just(ProcPath::Root),
        Just(ProcPath::Meminfo),
        Just(ProcPath::Memquota),
        Just(ProcPath::Cmdline),
        pid.clone().prop_map(ProcPath::PidDir),
        (pid, file).prop_map(|(p, f)| ProcPath::PidFile(p, f)),
    ]
}

fn heap() -> impl Strategy<Value = HeapSnapshot> {
    (
        any::<[usize; 8]>(),
        any::<[u64; 2]>(),
        any::<[usize; 5]>(),
        any::<[u64; 4]>(),
        limit(),
    )
        .prop_map(|(h, e, t, c, heap_budget)| HeapSnapshot {
            size: h[0],
            used: h[1],
            free: h[2],
            floor: h[3],
            emergency: EmergencySnapshot {
                capacity: h[4],
                held: h[5],
                releases: e[0],
                refills: e[1],
            },
            header_bytes: h[6],
            allocations: h[7],
            table: TableStats {
                capacity: t[0],
                live: t[1],
                orphaned: t[2],
                kernel_bytes: t[3],
                user_bytes: t[4],
                misattributed: c[0],
                accounting_errors: c[1],
                floor_refusals: c[2],
                faults_injected: c[3],
                heap_budget,
            },
        })
}

proptest! {
    #[test]
    fn memquota_files_read_back(
        pid in any::<u32>(),
        sid in any::<u32>(),
        process in account(),
        session in account(),
        leader in any::<bool>(),
        pids in pids(),
    ) {
        let session = if leader { process } else { session };
        let view = MemquotaView { pid, sid, process, session, pids };
        let text = view.to_string();
        let file = MemquotaFile::parse(&text).unwrap();
        prop_assert_eq!(file, MemquotaFile::from(&view));
        prop_assert_eq!(file.pids, pids);
        let field = |k| find_field(&text, k).map(str::to_string);
        prop_assert_eq!(field("pids.current"), Some(pids.current.to_string()));
        prop_assert_eq!(field("pids.max"), Some(pids_text(pids.max)));
        prop_assert_eq!(field("max"), Some(process.max.to_string()));
        prop_assert_eq!(file.max.to_raw(), process.max.to_raw());
        prop_assert_eq!(file.high.to_raw(), process.high.to_raw());
        prop_assert_eq!(file.session.max.to_raw(), session.max.to_raw());
        prop_assert_eq!(file.session.high.to_raw(), session.high.to_raw());
    }

    #[test]
    fn paths_display_as_text_that_parses_back(path in proc_path()) {
        prop_assert_eq!(ProcPath::parse(&path.to_string()), Ok(path));
    }

    #[test]
    fn meminfo_values_read_back(
        h in heap(),
        tmp_size in limit(),
        tmp_used in any::<usize>(),
        operator_reserve in any::<usize>(),
        pids_max in pids_max(),
        faults in fault_policy(),
        pressure in pressure(),
    ) {
        let view = MeminfoView {
            heap: h,
            tmp: TmpUsage { size: tmp_size, used: tmp_used },
            operator_reserve,
            pids_max,
            faults,
            pressure,
        };
        let text = view.to_string();
        let field = |k| find_field(&text, k).unwrap().to_string();
        prop_assert_eq!(field("HeapTotal"), h.size.to_string());
        prop_assert_eq!(field("HeapUsed"), h.used.to_string());
        prop_assert_eq!(field("HeapBudget"), h.table.heap_budget.to_string());
        prop_assert_eq!(field("SessionBytes"), h.table.user_bytes.to_string());
        prop_assert_eq!(field("FaultsInjected"), h.table.faults_injected.to_string());
        prop_assert_eq!(field("TmpSize"), tmp_size.to_string());
        prop_assert_eq!(field("TmpUsed"), tmp_used.to_string());
        prop_assert_eq!(field("OperatorReserve"), operator_reserve.to_string());
        prop_assert_eq!(field("PidsMax"), pids_text(pids_max));
        prop_assert_eq!(field("FaultInjection"), fault_text(faults));
        prop_assert_eq!(field("PressureWarnBytes"), pressure.warn.to_string());
        prop_assert_eq!(field("PressureCritBytes"), pressure.critical.to_string());
        prop_assert_eq!(field("PressureLevel"), pressure.level.as_str());
        // The existing lines come first, in their old order; the new ones
        // are appended.
        let keys: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
        prop_assert_eq!(keys.len(), 28);
        prop_assert_eq!(keys[19], "FaultsInjected");
        prop_assert_eq!(
            &keys[20..],
            &[
                "TmpSize",
                "TmpUsed",
                "OperatorReserve",
                "PidsMax",
                "FaultInjection",
                "PressureWarnBytes",
                "PressureCritBytes",
                "PressureLevel",
            ][..]
        );
        // Every line is `Key: value`; only the fault policy's value has spaces.
        for line in text.lines().filter(|l| !l.starts_with("FaultInjection:")) {
            prop_assert_eq!(line.split_whitespace().count(), 2, "{}", line);
        }
    }

    #[test]
    fn account_table_columns_stay_aligned(
        accounts in proptest::collection::vec(
            (account(), any::<Option<u32>>(), any::<Option<u32>>()), 0..8),
    ) {
        let rows: Vec<AccountRow<'_>> = accounts
            .iter()
            .map(|&(account, pid, sid)| AccountRow { account, pid, sid, label: "process" })
            .collect();
        let text = AccountTableView { rows: &rows }.to_string();
        let lines: Vec<&str> = text.lines().collect();
        prop_assert_eq!(lines.len(), rows.len() + 1);
        let label_at = lines[0].find("KIND").unwrap();
        // Every column ends where its header ends.
        let ends: Vec<usize> = column_ends(lines[0]);
        for line in &lines[1..] {
            prop_assert_eq!(line.find("process"), Some(label_at));
            prop_assert_eq!(column_ends(line), ends.clone());
        }
    }
}

/// Byte offsets where each space-separated word of `line` ends.
fn column_ends(line: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut prev = b' ';
    for (i, b) in line.bytes().enumerate() {
        if b == b' ' && prev != b' ' {
            ends.push(i);
        }
        prev = b;
    }
    ends
}
