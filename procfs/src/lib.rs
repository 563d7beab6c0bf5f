//! `/proc` for the quota kernel: parses paths and writes, renders reads,
//! and decides who may do what, all from plain data the kernel passes in.
//!
//! The crate never touches the kernel's tables: the kernel takes `quota`
//! snapshots and fills in the `*View` structs, each of which renders its
//! file through `Display` (so `write!(out, "{view}")` into any
//! `core::fmt::Write`, allocating nothing). Untrusted input is parsed into
//! typed values before anything acts on it:
//!
//! - [`ProcPath::parse`]: a path under `/proc`, or [`NotFound`]
//!   ([`root_entries`] and [`pid_entries`] list the directories);
//! - [`MemquotaWrite::parse`]: bytes written to `/proc/<pid>/memquota`
//!   (a memory limit, [`SetLimit`], or the session's process limit,
//!   [`PidsMax`]), or a [`WriteError`] whose `Display` is one short line
//!   naming the bad token;
//! - [`check_read`] / [`check_write`]: the permission rules, returning an
//!   [`Authorized`] request or a [`PermissionError`].
//!
//! Files: [`MemquotaView`] (`/proc/<pid>/memquota`, read back by
//! [`MemquotaFile::parse`]), [`StatusView`] (`/proc/<pid>/status`),
//! [`MeminfoView`] (`/proc/meminfo`), [`AccountTableView`]
//! (`/proc/memquota`), [`CmdlineView`] (`/proc/cmdline`). [`find_field`]
//! picks one value out of the key/value files, for tests. Every error type's
//! `Display` is a single line.
//!
//! `no_std`, no `alloc`, no `unsafe`; builds for the host (tests) and for
//! `aarch64-unknown-none` (the kernel).

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
// Input is untrusted: every `+`, `-`, `*` outside tests is checked or
// saturating.
#![cfg_attr(not(test), warn(clippy::arithmetic_side_effects))]

mod account_table;
mod align;
mod cmdline;
mod escape;
mod field;
mod meminfo;
mod memquota;
mod memquota_parse;
mod path;
mod perm;
mod pids;
mod size;
mod status;
mod write;

pub use account_table::{AccountRow, AccountTableView};
pub use cmdline::CmdlineView;
pub use escape::{Escaped, Token};
pub use field::find_field;
pub use meminfo::{FaultView, MeminfoView, PressureLevel, PressureView, TmpUsage};
pub use memquota::MemquotaView;
pub use memquota_parse::{MemquotaFile, MemquotaParseError, SessionUsage};
pub use path::{DirEntry, NotFound, PidFile, PidRef, ProcPath, pid_entries, root_entries};
pub use perm::{Authorized, Caller, PermissionError, Target, check_read, check_write};
pub use pids::{PidsError, PidsMax, PidsUsage};
pub use size::{HumanSize, SizeError, parse_size};
pub use status::{ProcState, StatusView};
pub use write::{LimitKind, MemquotaWrite, SetLimit, WriteError};
