//! Who may read and change `/proc/<pid>/memquota`.
//!
//! Pure functions of a [`Caller`] and a [`Target`], which the kernel fills
//! in from its process table:
//!
//! 1. Root may read and change anything.
//! 2. Anyone else may read the files of processes in their own session
//!    only; another session's files are refused ([`PermissionError::OtherSession`]).
//! 3. Inside its session, a non-root caller may set `max` or `high` of any
//!    of the session's processes to at most the session's own `max`. With a
//!    finite session max, `max` (unlimited) and anything above it are refused
//!    ([`PermissionError::AboveSessionMax`]); with an unlimited session max
//!    every value is allowed.
//! 4. On the session's own account (the target is the session leader) that
//!    same rule means: `max` may be lowered or kept, never raised
//!    ([`PermissionError::RaiseSessionMax`]), and `high` may be set at or
//!    below the session's `max`.
//! 5. `pids.max` is the session's, whichever of its processes the write
//!    names. A non-root caller may set its own session's `pids.max` at or
//!    below its current value (lower or keep; `max` is above every count),
//!    never raise it ([`PermissionError::RaisePidsMax`]); another session's
//!    is refused by rule 2.
//!
//! A granted write comes back as an [`Authorized`] request, which can only
//! be made by [`check_write`], so the kernel cannot apply a write it has
//! not checked. The check reads the session's current limits from the
//! [`Target`]; the kernel must check and apply under one lock, so that no
//! other write changes them in between.

use core::fmt;

use quota::Limit;

use crate::pids::PidsMax;
use crate::write::{LimitKind, MemquotaWrite, SetLimit};

/// The process making the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Whether it has root's rights (the kernel's console shell, uid 0).
    pub root: bool,
    /// Its session.
    pub sid: u32,
}

/// The process whose `memquota` file is read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// Its pid.
    pub pid: u32,
    /// Its session.
    pub sid: u32,
    /// Whether its account is the session's account (it is the session
    /// leader), so that setting its `max` sets the session's.
    pub session_account: bool,
    /// The session account's `max` now.
    pub session_max: Limit,
    /// The session's `pids.max` now.
    pub session_pids_max: PidsMax,
}

/// A write that passed [`check_write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authorized(MemquotaWrite);

impl Authorized {
    /// The request to apply: a limit of the target's account, or its
    /// session's `pids.max`.
    pub const fn request(self) -> MemquotaWrite {
        self.0
    }
}

/// Why a caller may not read or change a target's `memquota`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermissionError {
    /// The target is in another session and the caller is not root.
    OtherSession {
        /// The target's pid.
        pid: u32,
        /// The target's session.
        sid: u32,
    },
    /// The requested limit is above the session's `max`.
    AboveSessionMax {
        /// Which limit.
        kind: LimitKind,
        /// The value asked for.
        requested: Limit,
        /// The session's `max`.
        session_max: Limit,
    },
    /// The request would raise the session account's own `max`.
    RaiseSessionMax {
        /// The value asked for.
        requested: Limit,
        /// The session's `max`.
        session_max: Limit,
    },
    /// The request would raise the session's `pids.max`.
    RaisePidsMax {
        /// The value asked for.
        requested: PidsMax,
        /// The session's `pids.max`.
        session_pids_max: PidsMax,
    },
}

impl fmt::Display for PermissionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("permission denied: ")?;
        match self {
            PermissionError::OtherSession { pid, sid } => {
                write!(f, "pid {pid} is in session {sid}, not yours")
            }
            PermissionError::AboveSessionMax {
                kind,
                requested,
                session_max,
            } => write!(
                f,
                "cannot set {kind} to {requested}, above the session's max {session_max}"
            ),
            PermissionError::RaiseSessionMax {
                requested,
                session_max,
            } => write!(
                f,
                "cannot raise the session's max from {session_max} to {requested} (only root can)"
            ),
            PermissionError::RaisePidsMax {
                requested,
                session_pids_max,
            } => write!(
                f,
                "cannot raise the session's pids.max from {session_pids_max} to {requested} \
                 (only root can)"
            ),
        }
    }
}

impl core::error::Error for PermissionError {}

/// Whether `caller` may read `target`'s `memquota` (and `status`) file.
///
/// # Errors
/// [`PermissionError::OtherSession`] if the target is in another session
/// and the caller is not root.
pub fn check_read(caller: Caller, target: Target) -> Result<(), PermissionError> {
    if caller.root || caller.sid == target.sid {
        Ok(())
    } else {
        Err(PermissionError::OtherSession {
            pid: target.pid,
            sid: target.sid,
        })
    }
}

/// Whether `caller` may apply `request` (a [`SetLimit`] to `target`'s
/// account, or a [`PidsMax`] to its session) as a write to `target`'s
/// `memquota` file.
///
/// # Errors
/// [`PermissionError`] naming the rule the request breaks.
pub fn check_write(
    caller: Caller,
    target: Target,
    request: impl Into<MemquotaWrite>,
) -> Result<Authorized, PermissionError> {
    let request = request.into();
    check_read(caller, target)?;
    let allowed = match request {
        MemquotaWrite::Limit(limit) => check_limit(caller, target, limit),
        MemquotaWrite::PidsMax(requested) => {
            if caller.root || requested <= target.session_pids_max {
                Ok(())
            } else {
                Err(PermissionError::RaisePidsMax {
                    requested,
                    session_pids_max: target.session_pids_max,
                })
            }
        }
    };
    allowed.map(|()| Authorized(request))
}

/// Rules 1, 3 and 4 for a memory limit, once rule 2 has passed.
fn check_limit(caller: Caller, target: Target, request: SetLimit) -> Result<(), PermissionError> {
    let requested = request.limit();
    if caller.root || at_most(requested, target.session_max) {
        return Ok(());
    }
    Err(match request.kind() {
        LimitKind::Max if target.session_account => PermissionError::RaiseSessionMax {
            requested,
            session_max: target.session_max,
        },
        kind => PermissionError::AboveSessionMax {
            kind,
            requested,
            session_max: target.session_max,
        },
    })
}

/// `a <= b`, with unlimited above every byte count.
fn at_most(a: Limit, b: Limit) -> bool {
    a.to_raw() <= b.to_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: usize = 1 << 20;

    const ROOT: Caller = Caller { root: true, sid: 0 };
    const USER: Caller = Caller {
        root: false,
        sid: 3,
    };

    fn process(sid: u32, session_max: Limit) -> Target {
        Target {
            pid: 7,
            sid,
            session_account: false,
            session_max,
            session_pids_max: PidsMax::UNLIMITED,
        }
    }

    fn leader(session_max: Limit) -> Target {
        Target {
            pid: 5,
            sid: 3,
            session_account: true,
            session_max,
            session_pids_max: PidsMax::UNLIMITED,
        }
    }

    fn pids(n: u32) -> PidsMax {
        PidsMax::new(n).unwrap()
    }

    fn write_pids(caller: Caller, target: Target, max: PidsMax) -> Result<(), PermissionError> {
        check_write(caller, target, max).map(|a| {
            assert_eq!(a.request(), MemquotaWrite::PidsMax(max));
        })
    }

    fn set(kind: LimitKind, limit: Limit) -> SetLimit {
        SetLimit::new(kind, limit).unwrap()
    }

    fn write(
        caller: Caller,
        target: Target,
        kind: LimitKind,
        limit: Limit,
    ) -> Result<(), PermissionError> {
        check_write(caller, target, set(kind, limit)).map(|a| {
            assert_eq!(a.request(), MemquotaWrite::Limit(set(kind, limit)));
        })
    }

    #[test]
    fn root_may_read_and_change_anything() {
        let other = process(9, Limit::Bytes(4 * M));
        assert_eq!(check_read(ROOT, other), Ok(()));
        assert_eq!(write(ROOT, other, LimitKind::Max, Limit::Unlimited), Ok(()));
        assert_eq!(
            write(
                ROOT,
                leader(Limit::Bytes(M)),
                LimitKind::Max,
                Limit::Bytes(8 * M)
            ),
            Ok(())
        );
    }

    #[test]
    fn own_session_is_readable() {
        assert_eq!(check_read(USER, process(3, Limit::Bytes(M))), Ok(()));
        assert_eq!(check_read(USER, leader(Limit::Unlimited)), Ok(()));
    }

    #[test]
    fn other_sessions_are_refused_for_reading_and_writing() {
        let other = process(9, Limit::Unlimited);
        let refused = PermissionError::OtherSession { pid: 7, sid: 9 };
        assert_eq!(check_read(USER, other), Err(refused));
        assert_eq!(
            write(USER, other, LimitKind::Max, Limit::Bytes(1)),
            Err(refused)
        );
        assert_eq!(
            refused.to_string(),
            "permission denied: pid 7 is in session 9, not yours"
        );
    }

    #[test]
    fn processes_may_be_limited_up_to_the_session_max() {
        let t = process(3, Limit::Bytes(4 * M));
        for kind in [LimitKind::Max, LimitKind::High] {
            assert_eq!(write(USER, t, kind, Limit::Bytes(0)), Ok(()));
            assert_eq!(write(USER, t, kind, Limit::Bytes(3 * M)), Ok(()));
            assert_eq!(write(USER, t, kind, Limit::Bytes(4 * M)), Ok(()));
        }
    }

    #[test]
    fn processes_may_not_be_limited_above_a_finite_session_max() {
        let t = process(3, Limit::Bytes(4 * M));
        for kind in [LimitKind::Max, LimitKind::High] {
            for requested in [Limit::Bytes(4 * M + 1), Limit::Unlimited] {
                assert_eq!(
                    write(USER, t, kind, requested),
                    Err(PermissionError::AboveSessionMax {
                        kind,
                        requested,
                        session_max: Limit::Bytes(4 * M)
                    })
                );
            }
        }
        assert_eq!(
            write(USER, t, LimitKind::Max, Limit::Unlimited)
                .unwrap_err()
                .to_string(),
            "permission denied: cannot set max to max, above the session's max 4194304"
        );
    }

    #[test]
    fn an_unlimited_session_allows_any_value() {
        let t = process(3, Limit::Unlimited);
        assert_eq!(write(USER, t, LimitKind::Max, Limit::Unlimited), Ok(()));
        assert_eq!(
            write(USER, t, LimitKind::High, Limit::Bytes(quota::MAX_BYTES)),
            Ok(())
        );
        assert_eq!(
            write(
                USER,
                leader(Limit::Unlimited),
                LimitKind::Max,
                Limit::Unlimited
            ),
            Ok(())
        );
    }

    #[test]
    fn the_session_max_may_be_lowered_or_kept_never_raised() {
        let t = leader(Limit::Bytes(4 * M));
        assert_eq!(write(USER, t, LimitKind::Max, Limit::Bytes(2 * M)), Ok(()));
        assert_eq!(write(USER, t, LimitKind::Max, Limit::Bytes(4 * M)), Ok(()));
        for requested in [Limit::Bytes(4 * M + 1), Limit::Unlimited] {
            assert_eq!(
                write(USER, t, LimitKind::Max, requested),
                Err(PermissionError::RaiseSessionMax {
                    requested,
                    session_max: Limit::Bytes(4 * M)
                })
            );
        }
        assert_eq!(
            write(USER, t, LimitKind::Max, Limit::Bytes(8 * M))
                .unwrap_err()
                .to_string(),
            "permission denied: cannot raise the session's max from 4194304 to 8388608 \
             (only root can)"
        );
    }

    #[test]
    fn the_session_high_may_be_set_up_to_the_session_max() {
        let t = leader(Limit::Bytes(4 * M));
        assert_eq!(write(USER, t, LimitKind::High, Limit::Bytes(3 * M)), Ok(()));
        assert_eq!(write(USER, t, LimitKind::High, Limit::Bytes(4 * M)), Ok(()));
        assert_eq!(
            write(USER, t, LimitKind::High, Limit::Unlimited),
            Err(PermissionError::AboveSessionMax {
                kind: LimitKind::High,
                requested: Limit::Unlimited,
                session_max: Limit::Bytes(4 * M)
            })
        );
    }

    #[test]
    fn root_may_set_any_session_pids_max_to_anything() {
        for target in [
            process(9, Limit::Unlimited),
            leader(Limit::Bytes(M)),
            process(0, Limit::Bytes(M)),
        ] {
            let target = Target {
                session_pids_max: pids(4),
                ..target
            };
            for max in [pids(0), pids(4), pids(100), PidsMax::UNLIMITED] {
                assert_eq!(write_pids(ROOT, target, max), Ok(()));
            }
        }
    }

    #[test]
    fn own_session_pids_max_may_be_lowered_or_kept_never_raised() {
        for target in [process(3, Limit::Unlimited), leader(Limit::Bytes(M))] {
            let target = Target {
                session_pids_max: pids(32),
                ..target
            };
            for max in [pids(0), pids(31), pids(32)] {
                assert_eq!(write_pids(USER, target, max), Ok(()));
            }
            for requested in [pids(33), PidsMax::UNLIMITED] {
                assert_eq!(
                    write_pids(USER, target, requested),
                    Err(PermissionError::RaisePidsMax {
                        requested,
                        session_pids_max: pids(32)
                    })
                );
            }
        }
        assert_eq!(
            write_pids(
                USER,
                Target {
                    session_pids_max: pids(32),
                    ..leader(Limit::Unlimited)
                },
                PidsMax::UNLIMITED
            )
            .unwrap_err()
            .to_string(),
            "permission denied: cannot raise the session's pids.max from 32 to max (only root can)"
        );
    }

    #[test]
    fn an_unlimited_pids_max_may_be_kept_or_set_to_any_count() {
        let t = process(3, Limit::Bytes(M));
        assert_eq!(write_pids(USER, t, PidsMax::UNLIMITED), Ok(()));
        assert_eq!(
            write_pids(USER, t, pids(PidsMax::MAX_COUNT)),
            Ok(()),
            "any count is a lowering"
        );
    }

    #[test]
    fn another_session_pids_max_is_refused() {
        let other = process(9, Limit::Unlimited);
        assert_eq!(
            write_pids(USER, other, pids(1)),
            Err(PermissionError::OtherSession { pid: 7, sid: 9 })
        );
    }

    #[test]
    fn pids_max_does_not_depend_on_the_memory_max() {
        // A finite session memory max does not restrict `pids.max`, and a
        // finite `pids.max` does not restrict memory limits.
        let t = Target {
            session_pids_max: pids(8),
            ..leader(Limit::Bytes(4 * M))
        };
        assert_eq!(write_pids(USER, t, pids(8)), Ok(()));
        assert_eq!(write(USER, t, LimitKind::Max, Limit::Bytes(2 * M)), Ok(()));
    }
}
