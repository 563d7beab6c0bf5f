//! The serial console: output to the UART, and input through a ring the
//! UART interrupt fills and readers block on.
//!
//! Input needs no heap: a fixed ring of [`INPUT_CAPACITY`] bytes. When it is
//! full the interrupt stops draining the UART, QEMU stops delivering, and
//! nothing is lost. Ctrl-C does not enter the ring while a foreground job
//! runs: it interrupts the job (see [`crate::proc::interrupt_foreground`]).

use core::fmt::{self, Write};
use core::ptr::NonNull;

use crate::arch::uart::Pl011;
use crate::sched::WaitQueue;
use crate::sync::IrqMutex;

/// Bytes of typed input held until read.
pub const INPUT_CAPACITY: usize = 1024;

/// Ctrl-C.
pub const CTRL_C: u8 = 0x03;

struct Input {
    ring: [u8; INPUT_CAPACITY],
    head: usize,
    len: usize,
}

static UART: IrqMutex<Option<Pl011>> = IrqMutex::new(None);
static INPUT: IrqMutex<Input> = IrqMutex::new(Input {
    ring: [0; INPUT_CAPACITY],
    head: 0,
    len: 0,
});
static READERS: WaitQueue = WaitQueue::new();

/// Starts the console on the PL011 at `base`.
///
/// # Safety
/// `base` must be the PL011's register block, used by nothing else.
pub unsafe fn init(base: usize) {
    let Some(base) = NonNull::new(base as *mut u32) else {
        return;
    };
    // SAFETY: the caller's contract.
    *UART.lock() = Some(unsafe { Pl011::new(base) });
}

/// QEMU `virt`'s PL011, used only to report a panic that happens before
/// the device tree has named the real UART.
const FALLBACK_UART: usize = 0x0900_0000;

/// Makes sure a panic report can be printed somewhere.
pub fn ensure_output() {
    let mut uart = UART.lock();
    if uart.is_none() {
        let base = NonNull::new(FALLBACK_UART as *mut u32).expect("non-null constant");
        // SAFETY: only reached when no console was set up, i.e. before the
        // device tree was read; on QEMU `virt` this is the PL011.
        *uart = Some(unsafe { Pl011::new(base) });
    }
}

/// Turns on input interrupts (once the GIC routes them).
pub fn enable_input() {
    if let Some(uart) = UART.lock().as_ref() {
        uart.enable_rx_interrupt();
    }
}

/// Writes `bytes`, turning `\n` into `\r\n`. The UART is locked (and
/// IRQs masked) for one [`LINE`]-sized chunk at a time, so a long write
/// does not hold off interrupts for its whole length.
pub fn write_bytes(bytes: &[u8]) {
    const CHUNK: usize = LINE;
    for chunk in bytes.chunks(CHUNK) {
        let uart = UART.lock();
        let Some(uart) = uart.as_ref() else { return };
        for &b in chunk {
            if b == b'\n' {
                uart.put(b'\r');
            }
            uart.put(b);
        }
    }
}

/// Bytes formatted before they go out: a line up to this long leaves in
/// one locked write, so lines of concurrent writers do not interleave.
const LINE: usize = 256;

/// A stack buffer that sends itself to the console when full or dropped.
struct LineBuf {
    buf: [u8; LINE],
    len: usize,
}

impl LineBuf {
    fn flush(&mut self) {
        write_bytes(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == LINE {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Formats `args` and writes the result, up to [`LINE`] bytes at a time.
pub fn print(args: fmt::Arguments<'_>) {
    let mut line = LineBuf {
        buf: [0; LINE],
        len: 0,
    };
    let _ = line.write_fmt(args);
    line.flush();
}

/// Prints to the console.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!($($arg)*))
    };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// The UART interrupt: moves received bytes into the input ring.
pub fn on_interrupt() {
    {
        let uart = UART.lock();
        let Some(uart) = uart.as_ref() else { return };
        let mut input = INPUT.lock();
        loop {
            if input.len == INPUT_CAPACITY {
                // Full: stop listening until a reader makes room (see
                // `read`); the UART and QEMU hold the rest.
                uart.disable_rx_interrupt();
                break;
            }
            let Some(byte) = uart.get() else { break };
            if byte == CTRL_C && crate::proc::interrupt_foreground() {
                continue;
            }
            let tail = (input.head + input.len) % INPUT_CAPACITY;
            input.ring[tail] = byte;
            input.len += 1;
        }
    }
    READERS.wake_all();
}

/// Reads at least one byte of input into `buf`, blocking until some
/// arrives. Returns the count.
///
/// # Errors
/// If the calling process is killed or interrupted while waiting.
pub fn read(buf: &mut [u8]) -> Result<usize, crate::proc::Errno> {
    let mut n = 0;
    READERS.wait_until(|| {
        let mut input = INPUT.lock();
        while n < buf.len() && input.len > 0 {
            buf[n] = input.ring[input.head];
            input.head = (input.head + 1) % INPUT_CAPACITY;
            input.len -= 1;
            n += 1;
        }
        n > 0
    })?;
    // Room was made: listen again, and take what the UART holds now.
    enable_input();
    on_interrupt();
    Ok(n)
}
