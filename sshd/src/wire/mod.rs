//! The binary packet protocol (RFC 4253 §6) and the SSH data types.
//!
//! - [`codec`] writes the few SSH data types (`uint32`, `string`, `mpint`) our own
//!   code writes by hand (exchange hash, key blobs, signed data), and a
//!   bounds-checked [`codec::Reader`] that never panics on short input.
//! - [`cipher`] is `chacha20-poly1305@openssh.com`.
//! - [`framing`] does packet framing both ways: length and padding validation,
//!   sequence numbers, the 256 KiB cap.

pub mod cipher;
pub mod codec;
pub mod framing;
