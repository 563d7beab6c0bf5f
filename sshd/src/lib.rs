//! The SSH server of the quota kernel, on `sunset`.
//!
//! Empty until the SSH issue fills it: an IO-less session layer the kernel
//! drives, with per-session accounts and back-pressure on flooded channels.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
