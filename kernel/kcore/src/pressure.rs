//! Memory pressure: how much of the heap budget the sessions use, as a
//! level the kernel acts on (the load-shedding rule of an OOM-prevention
//! design: warn at 75%, refuse new work at 85%).
//!
//! - **Usage** is the bytes charged to session and process accounts
//!   (`SessionBytes` in `/proc/meminfo`); the **budget** is the heap less
//!   its floor and emergency reserve (`HeapBudget`).
//! - Two boot parameters, [`Levels`], give the **warning** and the
//!   **critical** share of the budget in whole percent, warning below
//!   critical. [`Levels::thresholds`] turns them into bytes of a budget,
//!   rounding up, so usage at a threshold is at least that share.
//! - The level rises as soon as usage reaches a threshold, and falls only
//!   once usage is [`HYSTERESIS_POINTS`] points below it (half the share,
//!   if that is less), so usage wavering around a threshold does not make
//!   the level flap: [`Thresholds::next`].
//! - [`Change`] is the console line for a level change; [`Refusal`] the
//!   reason a new SSH session is refused while the level is critical.
//!
//! Everything here is pure: no allocation, arithmetic widened to `u128` or
//! saturating, so any budget and usage give an answer.

use core::fmt;

pub use procfs::PressureLevel as Level;

/// The warning share when `pressure_warn=` is not given.
pub const DEFAULT_WARN: Percent = Percent(75);

/// The critical share when `pressure_critical=` is not given.
pub const DEFAULT_CRITICAL: Percent = Percent(85);

/// How far (in points of the budget) usage must fall below a threshold for
/// the level to fall back.
pub const HYSTERESIS_POINTS: u8 = 5;

/// A share of the heap budget: 1 to 100 percent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u8);

impl Percent {
    /// `n` percent, if `n` is from 1 to 100.
    pub const fn new(n: u8) -> Option<Percent> {
        if n >= 1 && n <= 100 {
            Some(Percent(n))
        } else {
            None
        }
    }

    /// `75` or `75%`; `None` for anything else, or a number outside 1 to
    /// 100.
    pub fn parse(text: &str) -> Option<Percent> {
        let digits = text.strip_suffix('%').unwrap_or(text);
        if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Percent::new(digits.parse().ok()?)
    }

    /// The number of percent.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// This share of `bytes`, rounded up (never more than `bytes`).
    pub fn of(self, bytes: usize) -> usize {
        let exact = (bytes as u128)
            .saturating_mul(u128::from(self.0))
            .div_ceil(100);
        usize::try_from(exact).unwrap_or(bytes)
    }

    /// `points` fewer percent (at least 0, as a raw share for thresholds).
    const fn less(self, points: u8) -> u8 {
        self.0.saturating_sub(points)
    }

    /// The points a level at this share falls back by: [`HYSTERESIS_POINTS`],
    /// or half the share if that is less (so a 4% level falls back below
    /// 2%, never below 0).
    const fn hysteresis(self) -> u8 {
        let half = self.0 / 2;
        if half < HYSTERESIS_POINTS {
            half
        } else {
            HYSTERESIS_POINTS
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// The warning and critical shares, the warning one strictly below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Levels {
    warn: Percent,
    critical: Percent,
}

impl Levels {
    /// 75% and 85%.
    pub const DEFAULT: Levels = Levels {
        warn: DEFAULT_WARN,
        critical: DEFAULT_CRITICAL,
    };

    /// The two shares, if `warn` is below `critical`.
    pub fn new(warn: Percent, critical: Percent) -> Option<Levels> {
        (warn < critical).then_some(Levels { warn, critical })
    }

    /// The warning share.
    pub const fn warn(self) -> Percent {
        self.warn
    }

    /// The critical share.
    pub const fn critical(self) -> Percent {
        self.critical
    }

    /// The thresholds in bytes of a `budget`.
    pub fn thresholds(self, budget: usize) -> Thresholds {
        let raw = |points: u8| Percent(points).of(budget);
        Thresholds {
            levels: self,
            budget,
            warn: self.warn.of(budget),
            critical: self.critical.of(budget),
            warn_leave: raw(self.warn.less(self.warn.hysteresis())),
            critical_leave: raw(self.critical.less(self.critical.hysteresis())),
        }
    }
}

/// [`Levels`] in bytes of one budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Thresholds {
    levels: Levels,
    budget: usize,
    warn: usize,
    critical: usize,
    /// Below this a warning falls back to normal.
    warn_leave: usize,
    /// Below this a critical level falls back.
    critical_leave: usize,
}

impl Thresholds {
    /// The shares these thresholds came from.
    pub const fn levels(&self) -> Levels {
        self.levels
    }

    /// The budget they are shares of.
    pub const fn budget(&self) -> usize {
        self.budget
    }

    /// Usage at which the level becomes a warning.
    pub const fn warn(&self) -> usize {
        self.warn
    }

    /// Usage at which the level becomes critical.
    pub const fn critical(&self) -> usize {
        self.critical
    }

    /// Usage below which a warning falls back to normal.
    pub const fn warn_leave(&self) -> usize {
        self.warn_leave
    }

    /// Usage below which a critical level falls back.
    pub const fn critical_leave(&self) -> usize {
        self.critical_leave
    }

    /// The level at `usage`, coming from `now`: the highest threshold
    /// `usage` reaches, or `now`'s level (or the one below it) while usage
    /// stays above where that level falls back.
    pub fn next(&self, now: Level, usage: usize) -> Level {
        let reached = if usage >= self.critical {
            Level::Critical
        } else if usage >= self.warn {
            Level::Warning
        } else {
            Level::Normal
        };
        let held = if now == Level::Critical && usage >= self.critical_leave {
            Level::Critical
        } else if now >= Level::Warning && usage >= self.warn_leave {
            Level::Warning
        } else {
            Level::Normal
        };
        reached.max(held)
    }
}

/// `usage` as whole percent of `budget`, rounded down (100 if the budget
/// is 0 and something is used).
pub fn share(usage: usize, budget: usize) -> u128 {
    (usage as u128)
        .saturating_mul(100)
        .checked_div(budget as u128)
        .unwrap_or(if usage == 0 { 0 } else { 100 })
}

/// A level change, as the one console line that reports it:
///
/// ```text
/// memory pressure: warning: sessions use 76% of the heap budget (N of M bytes)
/// memory pressure: critical: sessions use 86% of the heap budget (N of M bytes); new SSH sessions are refused
/// memory pressure: down to warning: sessions use 79% of the heap budget (N of M bytes); new SSH sessions are accepted again
/// memory pressure: back to normal: sessions use 60% of the heap budget (N of M bytes)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Change {
    /// The level before.
    pub from: Level,
    /// The level now.
    pub to: Level,
    /// Bytes the sessions use.
    pub usage: usize,
    /// The heap budget.
    pub budget: usize,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match (self.from, self.to) {
            (_, Level::Critical) => "critical",
            (Level::Critical, Level::Warning) => "down to warning",
            (_, Level::Warning) => "warning",
            (_, Level::Normal) => "back to normal",
        };
        write!(
            f,
            "memory pressure: {what}: sessions use {}% of the heap budget ({} of {} bytes)",
            share(self.usage, self.budget),
            self.usage,
            self.budget
        )?;
        match (self.from, self.to) {
            (_, Level::Critical) => f.write_str("; new SSH sessions are refused"),
            (Level::Critical, _) => f.write_str("; new SSH sessions are accepted again"),
            _ => Ok(()),
        }
    }
}

/// Why a new SSH session is refused while the level is critical: the
/// reason its client shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Refusal {
    /// Bytes the sessions use.
    pub usage: usize,
    /// The heap budget.
    pub budget: usize,
    /// The critical share.
    pub critical: Percent,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kernel memory pressure is critical: sessions use {}% of the heap budget \
             ({} of {} bytes; new sessions are refused from {}); try again later",
            share(self.usage, self.budget),
            self.usage,
            self.budget,
            self.critical
        )
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use proptest::prelude::*;

    use super::*;

    fn pct(n: u8) -> Percent {
        Percent::new(n).unwrap()
    }

    #[test]
    fn percents_parse_from_1_to_100() {
        assert_eq!(Percent::parse("75"), Some(pct(75)));
        assert_eq!(Percent::parse("75%"), Some(pct(75)));
        assert_eq!(Percent::parse("1"), Some(pct(1)));
        assert_eq!(Percent::parse("100"), Some(pct(100)));
        assert_eq!(Percent::parse("007"), Some(pct(7)));
        for bad in [
            "",
            "%",
            "0",
            "101",
            "-5",
            "7.5",
            "75%%",
            "x",
            "1000",
            "99999999999",
        ] {
            assert_eq!(Percent::parse(bad), None, "{bad}");
        }
        assert_eq!(pct(85).to_string(), "85%");
    }

    #[test]
    fn a_share_of_bytes_rounds_up_and_never_exceeds_them() {
        assert_eq!(pct(75).of(7_274_496), 5_455_872);
        assert_eq!(pct(85).of(7_274_496), 6_183_322);
        assert_eq!(pct(50).of(3), 2);
        assert_eq!(pct(100).of(usize::MAX), usize::MAX);
        assert_eq!(pct(1).of(0), 0);
        assert_eq!(pct(99).of(usize::MAX), usize::MAX - usize::MAX / 100);
    }

    #[test]
    fn levels_need_warn_below_critical() {
        assert_eq!(Levels::new(pct(75), pct(85)), Some(Levels::DEFAULT));
        assert_eq!(Levels::new(pct(85), pct(85)), None);
        assert_eq!(Levels::new(pct(90), pct(85)), None);
        assert!(Levels::new(pct(1), pct(100)).is_some());
    }

    #[test]
    fn thresholds_of_the_default_levels() {
        let t = Levels::DEFAULT.thresholds(1000);
        assert_eq!(
            (t.warn(), t.critical(), t.warn_leave(), t.critical_leave()),
            (750, 850, 700, 800)
        );
        let small = Levels::new(pct(4), pct(6)).unwrap().thresholds(1000);
        assert_eq!(
            (small.warn_leave(), small.critical_leave()),
            (20, 30),
            "a small share falls back at half of it"
        );
    }

    #[test]
    fn the_level_rises_at_a_threshold_and_falls_only_past_the_band() {
        let t = Levels::DEFAULT.thresholds(1000);
        let walk = [
            (749, Level::Normal),
            (750, Level::Warning),
            (720, Level::Warning),
            (700, Level::Warning),
            (699, Level::Normal),
            (849, Level::Warning),
            (850, Level::Critical),
            (800, Level::Critical),
            (799, Level::Warning),
            (750, Level::Warning),
            (990, Level::Critical),
            (10, Level::Normal),
            (1000, Level::Critical),
        ];
        let mut level = Level::Normal;
        for (usage, want) in walk {
            level = t.next(level, usage);
            assert_eq!(level, want, "at {usage}");
        }
    }

    #[test]
    fn shares_round_down_and_survive_a_zero_budget() {
        assert_eq!(share(755, 1000), 75);
        assert_eq!(share(0, 0), 0);
        assert_eq!(share(1, 0), 100);
        assert_eq!(share(usize::MAX, 1), u128::from(u64::MAX) * 100);
    }

    #[test]
    fn changes_and_refusals_read_as_one_line() {
        let line = |from, to, usage| {
            Change {
                from,
                to,
                usage,
                budget: 1000,
            }
            .to_string()
        };
        assert_eq!(
            line(Level::Normal, Level::Warning, 760),
            "memory pressure: warning: sessions use 76% of the heap budget (760 of 1000 bytes)"
        );
        assert_eq!(
            line(Level::Warning, Level::Critical, 860),
            "memory pressure: critical: sessions use 86% of the heap budget (860 of 1000 bytes); \
             new SSH sessions are refused"
        );
        assert_eq!(
            line(Level::Critical, Level::Warning, 790),
            "memory pressure: down to warning: sessions use 79% of the heap budget \
             (790 of 1000 bytes); new SSH sessions are accepted again"
        );
        assert_eq!(
            line(Level::Critical, Level::Normal, 100),
            "memory pressure: back to normal: sessions use 10% of the heap budget \
             (100 of 1000 bytes); new SSH sessions are accepted again"
        );
        assert_eq!(
            line(Level::Warning, Level::Normal, 600),
            "memory pressure: back to normal: sessions use 60% of the heap budget (600 of 1000 bytes)"
        );
        let refusal = Refusal {
            usage: 870,
            budget: 1000,
            critical: pct(85),
        };
        assert_eq!(
            refusal.to_string(),
            "kernel memory pressure is critical: sessions use 87% of the heap budget \
             (870 of 1000 bytes; new sessions are refused from 85%); try again later"
        );
        for text in [
            line(Level::Normal, Level::Critical, 900),
            refusal.to_string(),
        ] {
            assert!(!text.contains('\n'), "{text}");
        }
    }

    fn levels() -> impl Strategy<Value = Levels> {
        (1..100u8, 1..=100u8).prop_filter_map("warn below critical", |(w, c)| {
            Levels::new(Percent::new(w)?, Percent::new(c)?)
        })
    }

    fn level() -> impl Strategy<Value = Level> {
        prop_oneof![
            Just(Level::Normal),
            Just(Level::Warning),
            Just(Level::Critical)
        ]
    }

    fn budget() -> impl Strategy<Value = usize> {
        prop_oneof![0..10_000usize, any::<usize>()]
    }

    proptest! {
        #[test]
        fn thresholds_are_ordered_within_the_budget(levels in levels(), budget in budget()) {
            let t = levels.thresholds(budget);
            prop_assert!(t.warn_leave() <= t.warn());
            prop_assert!(t.critical_leave() <= t.critical());
            prop_assert!(t.warn() <= t.critical());
            prop_assert!(t.critical() <= budget);
            prop_assert!(t.warn_leave() <= t.critical_leave());
        }

        #[test]
        fn the_level_follows_its_thresholds(
            levels in levels(),
            budget in budget(),
            now in level(),
            usage in any::<usize>(),
        ) {
            let t = levels.thresholds(budget);
            let next = t.next(now, usage);
            // Reaching a threshold always raises the level to it.
            prop_assert!(next == Level::Critical || usage < t.critical());
            prop_assert!(next >= Level::Warning || usage < t.warn());
            // Below its threshold a level is only ever held, never entered.
            prop_assert!(next <= now || usage >= t.critical() || next < Level::Critical);
            prop_assert!(next <= now || usage >= t.warn());
            // Past the band below it, a level always falls.
            prop_assert!(next < Level::Critical || usage >= t.critical_leave());
            prop_assert!(next == Level::Normal || usage >= t.warn_leave());
            // So a level in force means usage is at least its share less
            // the band.
            if next == Level::Critical && budget > 0 {
                let floor = levels.critical().less(levels.critical().hysteresis());
                prop_assert!(share(usage, budget) >= u128::from(floor));
            }
            // More usage never lowers the level.
            prop_assert!(t.next(now, usage.saturating_add(1)) >= next);
        }

        #[test]
        fn usage_wavering_inside_the_band_does_not_make_the_level_flap(
            levels in levels(),
            budget in budget(),
            steps in proptest::collection::vec(any::<usize>(), 1..64),
        ) {
            // Usage reaches a threshold, then wanders between it and the
            // bottom of its band: the level rose once and never falls.
            let t = levels.thresholds(budget);
            for (threshold, leave, at_least) in [
                (t.warn(), t.warn_leave(), Level::Warning),
                (t.critical(), t.critical_leave(), Level::Critical),
            ] {
                let mut level = t.next(Level::Normal, threshold);
                prop_assert!(level >= at_least);
                for step in &steps {
                    let usage = leave + step % (threshold - leave + 1);
                    level = t.next(level, usage);
                    prop_assert!(level >= at_least, "fell to {:?} at {}", level, usage);
                }
            }
        }
    }
}
