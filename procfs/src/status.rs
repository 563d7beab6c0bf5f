//! `/proc/<pid>/status`: a process's name, state and pids, Linux style.
//!
//! ```text
//! Name:   sh
//! State:  S (sleeping)
//! Pid:    7
//! PPid:   5
//! Sid:    3
//! ```
//!
//! Each line is `Key:`, one tab (shown above as spaces), the value. The name is escaped so it stays on one
//! line (`\n`, `\\`, `\xNN`, as [`crate::Escaped`]). `PPid` is 0 for a
//! process without a parent, as on Linux.

use core::fmt;

use crate::escape::Escaped;

/// A process's scheduling state, as `status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcState {
    /// On a CPU now.
    Running,
    /// Ready to run, waiting for a CPU.
    Ready,
    /// Waiting for an event (input, a timer, a child).
    Blocked,
    /// Exited, not yet reaped.
    Zombie,
}

impl ProcState {
    /// The Linux-style one-letter code and word: `R (running)`.
    pub const fn label(self) -> &'static str {
        match self {
            ProcState::Running => "R (running)",
            ProcState::Ready => "R (ready)",
            ProcState::Blocked => "S (sleeping)",
            ProcState::Zombie => "Z (zombie)",
        }
    }
}

impl fmt::Display for ProcState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What `/proc/<pid>/status` shows; `Display` renders the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusView<'a> {
    /// The process's name.
    pub name: &'a str,
    /// Its state.
    pub state: ProcState,
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid, 0 if none.
    pub ppid: u32,
    /// Its session.
    pub sid: u32,
}

impl fmt::Display for StatusView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Name:\t{}", Escaped(self.name))?;
        writeln!(f, "State:\t{}", self.state)?;
        writeln!(f, "Pid:\t{}", self.pid)?;
        writeln!(f, "PPid:\t{}", self.ppid)?;
        writeln!(f, "Sid:\t{}", self.sid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::find_field;

    #[test]
    fn renders_linux_style_lines() {
        let view = StatusView {
            name: "sh",
            state: ProcState::Blocked,
            pid: 7,
            ppid: 5,
            sid: 3,
        };
        assert_eq!(
            view.to_string(),
            "Name:\tsh\nState:\tS (sleeping)\nPid:\t7\nPPid:\t5\nSid:\t3\n"
        );
        assert_eq!(find_field(&view.to_string(), "PPid"), Some("5"));
    }

    #[test]
    fn every_state_has_a_label() {
        let labels = [
            ProcState::Running,
            ProcState::Ready,
            ProcState::Blocked,
            ProcState::Zombie,
        ]
        .map(|s| s.to_string());
        assert_eq!(
            labels,
            ["R (running)", "R (ready)", "S (sleeping)", "Z (zombie)"]
        );
    }

    #[test]
    fn a_hostile_name_stays_on_its_line() {
        let view = StatusView {
            name: "evil\nPid:\t1",
            state: ProcState::Running,
            pid: 9,
            ppid: 0,
            sid: 9,
        };
        let text = view.to_string();
        assert_eq!(text.lines().count(), 5);
        assert!(text.starts_with("Name:\tevil\\nPid:\\t1\n"));
        assert_eq!(find_field(&text, "Pid"), Some("9"));
    }
}
