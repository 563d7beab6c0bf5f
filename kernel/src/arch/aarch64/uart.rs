//! PL011 UART: the serial console.
//!
//! Output is polled; input raises an interrupt that drains the receive FIFO.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use super::mmu;

const DR: usize = 0x00;
const FR: usize = 0x18;
const IMSC: usize = 0x38;

const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
const IMSC_RXIM: u32 = 1 << 4;
const IMSC_RTIM: u32 = 1 << 6;

/// A PL011's registers.
pub struct Pl011 {
    base: NonNull<u32>,
}

// SAFETY: the registers are MMIO; callers serialise access with a lock.
unsafe impl Send for Pl011 {}

static CLAIMED: AtomicBool = AtomicBool::new(false);

/// QEMU `virt`'s PL011, for reporting a panic before the device tree has
/// named the real UART.
const FALLBACK: usize = 0x0900_0000;

impl Pl011 {
    /// The driver for the PL011 the device tree places at `base`, once:
    /// `None` if it was claimed before or `base` is outside the device map.
    pub fn claim(base: usize) -> Option<Pl011> {
        let base = NonNull::new(base as *mut u32).filter(|_| mmu::is_device(base))?;
        if CLAIMED.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(Self { base })
    }

    /// QEMU `virt`'s PL011 without a claim, for the panic path only, when
    /// no console was set up yet (so nothing else drives it).
    pub fn fallback() -> Pl011 {
        Self {
            base: NonNull::new(FALLBACK as *mut u32).expect("non-null constant"),
        }
    }

    fn reg(&self, offset: usize) -> *mut u32 {
        self.base.as_ptr().wrapping_byte_add(offset)
    }

    fn read(&self, offset: usize) -> u32 {
        // SAFETY: `offset` is one of the PL011 register offsets above,
        // inside the register block of a PL011 that the device tree names
        // and that only this driver uses (`claim`), mapped as device memory;
        // or QEMU `virt`'s own PL011 (`fallback`).
        unsafe { self.reg(offset).read_volatile() }
    }

    fn write(&self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { self.reg(offset).write_volatile(value) }
    }

    /// Sends one byte, waiting for room in the transmit FIFO.
    pub fn put(&self, byte: u8) {
        while self.read(FR) & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        self.write(DR, u32::from(byte));
    }

    /// A received byte, if any.
    pub fn get(&self) -> Option<u8> {
        if self.read(FR) & FR_RXFE != 0 {
            None
        } else {
            Some((self.read(DR) & 0xff) as u8)
        }
    }

    /// Raises an interrupt when input arrives. Receive-side interrupt
    /// state is left alone: bytes may already wait in the FIFO (typed
    /// during boot), and QEMU raises the receive interrupt only when the
    /// FIFO level *reaches* its trigger, so clearing it would leave them
    /// unannounced for good. The caller drains the FIFO after this.
    pub fn enable_rx_interrupt(&self) {
        self.write(IMSC, IMSC_RXIM | IMSC_RTIM);
    }

    /// Stops input interrupts (the level-triggered line would otherwise
    /// stay raised while a byte waits unread).
    pub fn disable_rx_interrupt(&self) {
        self.write(IMSC, 0);
    }
}
