//! `/proc` for the quota kernel: parses writes to and renders reads of
//! `/proc/<pid>/memquota` and friends from snapshot structs.
//!
//! Empty until the kernel issue fills it; it will depend only on `quota`'s
//! snapshot types, never on the kernel's tables.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
