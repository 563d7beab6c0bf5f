//! The inbound window policy: how much a channel may be credited, from the
//! memory the session has left.
//!
//! The host tells the remaining headroom through [`Headroom`] (in the
//! kernel: the session account's `max` minus its `current`). A connection
//! takes a share of what it could hold (the headroom plus what its stdin
//! buffers already hold), splits it evenly among its open channels, and
//! clamps each share to [`WindowPolicy::max`]. The result is a channel's
//! *target*: the most its stdin buffer plus its outstanding window may
//! reach. Near the limit the target shrinks, possibly to 0 (no credit: the
//! client waits); with room it grows back.

/// Tells how much memory the session may still allocate.
pub trait Headroom {
    /// Bytes the session may still take before its limit, or `None` when
    /// it has no limit. What the connection has already reserved counts as
    /// taken (in the kernel: `max - current` of the session's account), so
    /// headroom goes down as the connection's buffers grow.
    fn headroom(&self) -> Option<usize>;
}

/// Sizes channel windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPolicy {
    /// The largest target for one channel.
    pub max: usize,
    /// The share of (headroom + what the stdin buffers hold) that the
    /// connection's stdin buffers may use together, in percent.
    pub share_percent: usize,
    /// A target below this is 0: a tiny window only costs packets.
    pub min: usize,
    /// A new channel's target at most, doubled each time the client has
    /// sent half of it (slow start, up to `max`): a channel whose command
    /// never reads stdin reserves this much, not a share of the headroom.
    pub initial: usize,
}

impl Default for WindowPolicy {
    /// 2 MiB per channel at most (OpenSSH's session window), half of the
    /// headroom, nothing under 4 KiB, 64 KiB to start with.
    fn default() -> Self {
        Self {
            max: 2 * 1024 * 1024,
            share_percent: 50,
            min: 4096,
            initial: 64 * 1024,
        }
    }
}

impl WindowPolicy {
    /// The target for each of `channels` channels, when the session has
    /// `headroom` left and this connection's stdin buffers hold `held`.
    pub fn target(&self, headroom: Option<usize>, held: usize, channels: usize) -> usize {
        let Some(h) = headroom else {
            return self.max;
        };
        let all = h.saturating_add(held);
        let pct = self.share_percent.min(100);
        let pool = all / 100 * pct + all % 100 * pct / 100;
        let share = (pool / channels.max(1)).min(self.max);
        if share < self.min { 0 } else { share }
    }

    /// How much to credit now for a channel whose buffer holds `buffered`
    /// with `window` still outstanding: nothing until at least half the
    /// target can be granted (so adjusts are few and large), except that an
    /// idle channel (nothing buffered, no window) always gets what fits.
    pub fn credit(&self, target: usize, buffered: usize, window: usize) -> usize {
        let room = target.saturating_sub(buffered.saturating_add(window));
        if room >= target / 2 || (buffered == 0 && window == 0) {
            room
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_grow_with_headroom_and_are_shared() {
        let p = WindowPolicy::default();
        assert_eq!(p.target(None, 0, 3), p.max);
        assert_eq!(p.target(Some(64 << 20), 0, 1), 2 << 20);
        assert_eq!(p.target(Some(1 << 20), 0, 1), 512 << 10);
        assert_eq!(p.target(Some(1 << 20), 0, 4), 128 << 10);
        // What the buffers hold counts as available to them.
        assert_eq!(p.target(Some(512 << 10), 512 << 10, 1), 512 << 10);
        // Near the limit: nothing.
        assert_eq!(p.target(Some(4096), 0, 1), 0);
    }

    #[test]
    fn credit_is_batched_but_never_starves() {
        let p = WindowPolicy::default();
        assert_eq!(p.credit(1000, 0, 0), 1000);
        assert_eq!(p.credit(1000, 300, 300), 0);
        assert_eq!(p.credit(1000, 200, 200), 600);
        assert_eq!(p.credit(1000, 2000, 0), 0);
        assert_eq!(p.credit(0, 0, 0), 0);
    }
}
