//! The quota kernel's pure logic: code the kernel runs that needs no
//! hardware, no kernel tables and no locks, kept here so that it is tested
//! on the host with `cargo test` (Hubris does the same with `kerncore`).
//!
//! - [`shell_parse`]: the shell's command lines (`cmd args... [> file] [&]`,
//!   `;`-separated, quotes) into typed [`shell_parse::Command`]s.
//! - [`line_editor`]: the console (and SSH) line editor, a state machine fed
//!   one byte at a time that echoes through an [`line_editor::Echo`] sink.
//! - [`cmdline`]: the boot parameters (`heap=`, `floor=`, ...) into
//!   [`cmdline::Params`], reporting bad words as typed warnings.
//! - [`seconds`]: `sleep`'s argument (`2`, `0.5`) into timer ticks.
//! - [`bench`]: `bench alloc`'s arguments into typed options, and its
//!   figures (pairs per second, the CPUs a thread ran on).
//! - [`oom`]: the limit the out-of-memory report suggests.
//! - [`pressure`]: the memory-pressure level (normal, warning, critical)
//!   from the sessions' usage of the heap budget, with hysteresis, and
//!   the lines that report it.
//!
//! Every function here is total: malformed input gives an error or a
//! warning, never a panic, and arithmetic on input is checked or
//! saturating. Only [`line_editor`] and [`shell_parse`] allocate, and the
//! line editor only fallibly. `no_std` + `alloc`, no `unsafe`; builds for
//! the host and for `aarch64-unknown-none`.

#![no_std]
#![forbid(unsafe_code)]
// Input is untrusted (console, SSH, boot arguments): every `+`, `-`, `*`
// outside tests is checked, saturating or bounded by a stated invariant.
#![cfg_attr(not(test), warn(clippy::arithmetic_side_effects))]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod bench;
pub mod cmdline;
pub mod line_editor;
pub mod oom;
pub mod pressure;
pub mod seconds;
pub mod shell_parse;
