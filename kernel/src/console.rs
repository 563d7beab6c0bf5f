//! The serial console: output to the UART, and input through a ring the
//! UART interrupt fills and readers block on.
//!
//! Input needs no heap: a fixed ring of [`INPUT_CAPACITY`] bytes. When it is
//! full the interrupt stops draining the UART, QEMU stops delivering, and
//! nothing is lost.
//!
//! Like a Unix tty, the console has a foreground job: the thread Ctrl-C is
//! for. While one is set (and alive), Ctrl-C does not enter the ring: it
//! sends that thread [`Signal::Interrupt`] and wakes it.

#[cfg(not(feature = "ktest"))]
use alloc::sync::Arc;
use alloc::sync::Weak;
use core::fmt::{self, Write};

use crate::arch::uart::Pl011;
#[cfg(not(feature = "ktest"))]
use crate::sched::Stop;
use crate::sched::{Signal, Thread, ThreadState, WaitQueue};
use crate::sync::IrqMutex;
#[cfg(not(feature = "ktest"))]
use crate::tty::Terminal;

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
static FOREGROUND: IrqMutex<Option<Weak<Thread>>> = IrqMutex::new(None);

/// Starts the console on `uart`.
pub fn init(uart: Pl011) {
    *UART.lock() = Some(uart);
}

/// Makes sure a panic report can be printed somewhere: before the device
/// tree named the UART, QEMU `virt`'s own.
pub fn ensure_output() {
    let mut uart = UART.lock();
    if uart.is_none() {
        *uart = Some(Pl011::fallback());
    }
}

/// Makes `thread` the foreground job (`None`: no job; Ctrl-C goes to the
/// reader as a byte).
#[cfg(not(feature = "ktest"))]
pub fn set_foreground(thread: Option<&Arc<Thread>>) {
    let weak = thread.map(Arc::downgrade);
    let old = core::mem::replace(&mut *FOREGROUND.lock(), weak);
    drop(old);
}

/// Clears the foreground job if it is `thread`.
#[cfg(not(feature = "ktest"))]
pub fn clear_foreground_if(thread: &Thread) {
    let mut foreground = FOREGROUND.lock();
    if foreground
        .as_ref()
        .is_some_and(|w| core::ptr::eq(w.as_ptr(), thread))
    {
        let old = foreground.take();
        drop(foreground);
        drop(old);
    }
}

/// Ctrl-C: interrupts the foreground job. False if there is none alive, so
/// the keystroke goes to whoever reads the console.
fn interrupt_foreground() -> bool {
    let job = FOREGROUND.lock().as_ref().and_then(Weak::upgrade);
    match job {
        Some(thread) if thread.state() != ThreadState::Dead => {
            thread.signal(Signal::Interrupt);
            true
        }
        _ => false,
    }
}

/// Turns on input interrupts (once the GIC routes them) and takes what
/// the UART already holds: bytes typed before this are not lost.
pub fn enable_input() {
    if let Some(uart) = UART.lock().as_ref() {
        uart.enable_rx_interrupt();
    }
    on_interrupt();
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
            if byte == CTRL_C && interrupt_foreground() {
                continue;
            }
            let tail = (input.head + input.len) % INPUT_CAPACITY;
            input.ring[tail] = byte;
            input.len += 1;
        }
    }
    READERS.wake_all();
}

/// The console as a [`Terminal`]: the operator types at it. Its output
/// never blocks and it has no separate error output.
#[cfg(not(feature = "ktest"))]
pub struct ConsoleTerminal;

#[cfg(not(feature = "ktest"))]
impl Terminal for ConsoleTerminal {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Stop> {
        read(buf)
    }

    fn write(&self, bytes: &[u8]) -> Result<(), Stop> {
        write_bytes(bytes);
        Ok(())
    }

    fn interactive(&self) -> bool {
        true
    }

    fn set_foreground(&self, thread: Option<&Arc<Thread>>) {
        set_foreground(thread);
    }

    fn clear_foreground_if(&self, thread: &Thread) {
        clear_foreground_if(thread);
    }
}

/// Reads at least one byte of input into `buf`, blocking until some
/// arrives. Returns the count.
///
/// # Errors
/// The [`Stop`] if the calling thread must stop while waiting.
#[cfg(not(feature = "ktest"))]
pub fn read(buf: &mut [u8]) -> Result<usize, Stop> {
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
    Ok(n)
}
