//! QEMU's firmware configuration device (`qemu,fw-cfg-mmio`): named files
//! the host hands the guest (`-fw_cfg name=opt/...,file=...`). The kernel
//! reads its SSH host key and authorized keys from it, so secrets never
//! appear on the kernel command line (which every session may read).
//!
//! Registers (big-endian): data at +0 (read a byte at a time), selector at
//! +8 (16 bits). Selecting key 0x19 gives the file directory: a 32-bit
//! count, then 64-byte entries (size u32, select u16, reserved u16, name of
//! 56 bytes, NUL-padded).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use super::mmu;

const DATA: usize = 0;
const SELECTOR: usize = 8;
const FILE_DIR: u16 = 0x19;
const NAME_LEN: usize = 56;
/// Largest file read (keys are a few hundred bytes).
const MAX_FILE: usize = 64 << 10;

/// The `fw_cfg` device.
pub struct FwCfg {
    base: usize,
}

static CLAIMED: AtomicBool = AtomicBool::new(false);

impl FwCfg {
    /// The driver for the device the device tree places at `base`, once;
    /// `None` if claimed before or outside the device map.
    pub fn claim(base: usize) -> Option<FwCfg> {
        if base == 0 || !mmu::is_device(base) || !mmu::is_device(base + SELECTOR + 1) {
            return None;
        }
        if CLAIMED.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(FwCfg { base })
    }

    fn select(&self, key: u16) {
        let selector = (self.base + SELECTOR) as *mut u16;
        // SAFETY: the selector register of the fw_cfg device the device
        // tree names, in the device map (checked by `claim`, which makes
        // this the only driver); a 16-bit big-endian register.
        unsafe { selector.write_volatile(key.to_be()) };
    }

    fn byte(&self) -> u8 {
        let data = (self.base + DATA) as *const u8;
        // SAFETY: the data register of the same device; byte reads return
        // the selected item's next byte.
        unsafe { data.read_volatile() }
    }

    fn bytes<const N: usize>(&self) -> [u8; N] {
        core::array::from_fn(|_| self.byte())
    }

    /// The contents of the file called `name`, if the host gave one. The
    /// copy is charged to the caller's scope.
    pub fn read_file(&self, name: &str) -> Option<Vec<u8>> {
        self.select(FILE_DIR);
        let count = u32::from_be_bytes(self.bytes::<4>());
        let mut found = None;
        for _ in 0..count.min(1024) {
            let size = u32::from_be_bytes(self.bytes::<4>());
            let select = u16::from_be_bytes(self.bytes::<2>());
            let _reserved = self.bytes::<2>();
            let entry_name = self.bytes::<NAME_LEN>();
            let len = entry_name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
            if found.is_none() && &entry_name[..len] == name.as_bytes() {
                found = Some((select, size as usize));
            }
        }
        let (select, size) = found?;
        if size > MAX_FILE {
            return None;
        }
        self.select(select);
        let mut data = Vec::new();
        data.try_reserve_exact(size).ok()?;
        data.extend((0..size).map(|_| self.byte()));
        Some(data)
    }
}
