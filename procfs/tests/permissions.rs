//! Property tests of `check_write` against an independent model of the
//! permission rules, for memory limits and the session's `pids.max`:
//!
//! - root may set anything on anyone;
//! - nobody else may touch another session;
//! - in its own session, a non-root caller may set `max`/`high` at most to
//!   the session's `max`, and `pids.max` at most to the session's current
//!   `pids.max` (lower or keep, never raise; `max` is above every number).
//!
//! The model works on `u128` with "unlimited" as `u128::MAX`, not on the
//! crate's `Limit`/`PidsMax` ordering. A stateful test then replays writes
//! the way the kernel applies them and checks that no non-root sequence ever
//! raises a session's `pids.max`.

use procfs::{
    Caller, LimitKind, MemquotaWrite, PermissionError, PidsMax, SetLimit, Target, check_write,
};
use proptest::prelude::*;
use quota::{Limit, MAX_BYTES};

/// What the model decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Granted,
    OtherSession,
    AboveSessionMax,
    RaiseSessionMax,
    RaisePidsMax,
}

fn verdict_of(result: Result<procfs::Authorized, PermissionError>) -> Verdict {
    match result {
        Ok(_) => Verdict::Granted,
        Err(PermissionError::OtherSession { .. }) => Verdict::OtherSession,
        Err(PermissionError::AboveSessionMax { .. }) => Verdict::AboveSessionMax,
        Err(PermissionError::RaiseSessionMax { .. }) => Verdict::RaiseSessionMax,
        Err(PermissionError::RaisePidsMax { .. }) => Verdict::RaisePidsMax,
    }
}

/// Unlimited as the largest number, counts and bytes as themselves.
fn bytes_value(limit: Limit) -> u128 {
    match limit {
        Limit::Bytes(n) if n < usize::MAX => n as u128,
        _ => u128::MAX,
    }
}

fn pids_value(max: PidsMax) -> u128 {
    max.count().map_or(u128::MAX, u128::from)
}

/// The rules, written out plainly.
fn model(caller: Caller, target: Target, request: MemquotaWrite) -> Verdict {
    if caller.root {
        return Verdict::Granted;
    }
    if caller.sid != target.sid {
        return Verdict::OtherSession;
    }
    match request {
        MemquotaWrite::PidsMax(requested) => {
            if pids_value(requested) <= pids_value(target.session_pids_max) {
                Verdict::Granted
            } else {
                Verdict::RaisePidsMax
            }
        }
        MemquotaWrite::Limit(r) => {
            if bytes_value(r.limit()) <= bytes_value(target.session_max) {
                Verdict::Granted
            } else if r.kind() == LimitKind::Max && target.session_account {
                Verdict::RaiseSessionMax
            } else {
                Verdict::AboveSessionMax
            }
        }
    }
}

fn byte_limit() -> impl Strategy<Value = Limit> {
    prop_oneof![
        Just(Limit::Unlimited),
        (0..=MAX_BYTES).prop_map(Limit::Bytes),
        (0..=8usize).prop_map(|n| Limit::Bytes(n << 20)),
    ]
}

fn pids_max() -> impl Strategy<Value = PidsMax> {
    prop_oneof![
        Just(PidsMax::UNLIMITED),
        (0..=PidsMax::MAX_COUNT).prop_map(|n| PidsMax::new(n).unwrap()),
        (0..=8u32).prop_map(|n| PidsMax::new(n).unwrap()),
    ]
}

fn caller() -> impl Strategy<Value = Caller> {
    (any::<bool>(), 0..3u32).prop_map(|(root, sid)| Caller { root, sid })
}

fn target() -> impl Strategy<Value = Target> {
    (
        any::<u32>(),
        0..3u32,
        any::<bool>(),
        byte_limit(),
        pids_max(),
    )
        .prop_map(
            |(pid, sid, session_account, session_max, session_pids_max)| Target {
                pid,
                sid,
                session_account,
                session_max,
                session_pids_max,
            },
        )
}

fn request() -> impl Strategy<Value = MemquotaWrite> {
    prop_oneof![
        pids_max().prop_map(MemquotaWrite::PidsMax),
        (any::<bool>(), byte_limit()).prop_map(|(high, limit)| {
            let kind = if high {
                LimitKind::High
            } else {
                LimitKind::Max
            };
            MemquotaWrite::Limit(SetLimit::new(kind, limit).unwrap())
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn check_write_agrees_with_the_model(
        caller in caller(),
        target in target(),
        request in request(),
    ) {
        let result = check_write(caller, target, request);
        prop_assert_eq!(verdict_of(result), model(caller, target, request));
        if let Ok(authorized) = result {
            prop_assert_eq!(authorized.request(), request, "the request granted is the one asked");
        }
        if let Err(e) = result {
            let message = e.to_string();
            prop_assert!(message.starts_with("permission denied: "));
            prop_assert!(!message.contains('\n'));
        }
    }

    #[test]
    fn parsed_pids_writes_are_checked_like_built_ones(
        caller in caller(),
        target in target(),
        requested in pids_max(),
    ) {
        let parsed = MemquotaWrite::parse(format!("pids {requested}\n").as_bytes()).unwrap();
        prop_assert_eq!(parsed, MemquotaWrite::PidsMax(requested));
        prop_assert_eq!(
            verdict_of(check_write(caller, target, parsed)),
            model(caller, target, parsed)
        );
    }

    /// The kernel checks and applies each write in one step; whatever a
    /// non-root session writes, its `pids.max` never goes up, and only root
    /// can raise it.
    #[test]
    fn a_session_can_only_lower_its_own_pids_max(
        start in pids_max(),
        writes in proptest::collection::vec((any::<bool>(), 0..2u32, pids_max()), 0..32),
    ) {
        // Session 0's pids.max, written through its process 7.
        let mut session_pids_max = start;
        for (root, sid, requested) in writes {
            let target = Target {
                pid: 7,
                sid: 0,
                session_account: false,
                session_max: Limit::Unlimited,
                session_pids_max,
            };
            let before = session_pids_max;
            if let Ok(ok) = check_write(Caller { root, sid }, target, requested) {
                match ok.request() {
                    MemquotaWrite::PidsMax(max) => session_pids_max = max,
                    MemquotaWrite::Limit(_) => prop_assert!(false, "a pids write came back as a limit"),
                }
            }
            if !root {
                prop_assert!(pids_value(session_pids_max) <= pids_value(before));
                if sid != 0 {
                    prop_assert_eq!(session_pids_max, before, "another session changed nothing");
                }
            }
            if root {
                prop_assert_eq!(session_pids_max, requested, "root sets anything");
            }
        }
    }
}
