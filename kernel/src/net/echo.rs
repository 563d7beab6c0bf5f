//! A tiny TCP service on port 22 that proves the network end to end: a
//! banner line, then every byte received is sent back. The SSH server will
//! take the port over; it uses the same [`super::tcp`] calls.

use crate::heap;
use crate::kprintln;
use crate::sched;
use crate::time;

use super::tcp::{Buffers, NetError, TcpStream, listen};

/// The port (the SSH server's, later).
pub const PORT: u16 = 22;
/// The first line a client reads starts with this, then names the client.
pub const BANNER: &str = "memquota echo: each line comes back";
/// Each connection's socket buffers.
const BUFFERS: Buffers = Buffers {
    rx: 4 << 10,
    tx: 4 << 10,
};
/// Connections that may wait while one is served.
const BACKLOG: usize = 4;

/// Starts the service's thread (charged to the kernel).
pub fn start() {
    let scope = quota::Scope {
        account: heap::kernel_account().id(),
        fallible: false,
    };
    if sched::spawn("echo", 16 << 10, scope, |_| serve_forever()).is_err() {
        kprintln!("echo: cannot start its thread");
    }
}

fn serve_forever() {
    let Ok(mut listener) = listen(PORT, BACKLOG) else {
        kprintln!("echo: the network is down");
        return;
    };
    // Said once sockets listen, so a client (a test) knows when to connect.
    if listener.arm_now(heap::kernel_account(), BUFFERS).is_ok() {
        kprintln!("echo: listening on port {PORT}");
    }
    loop {
        match listener.accept(heap::kernel_account(), BUFFERS) {
            Ok(conn) => {
                // A connection that fails mid-way is simply dropped.
                let _ = echo(&conn);
            }
            Err(NetError::Stop(_)) => return,
            Err(e) => {
                kprintln!("echo: cannot accept: {e}");
                let _ = sched::sleep_until(time::ticks() + time::TICK_HZ);
            }
        }
    }
}

fn echo(conn: &TcpStream) -> Result<(), NetError> {
    let peer = conn.peer();
    let banner = match peer {
        Some(peer) => alloc::format!("{BANNER}, {peer}\r\n"),
        None => alloc::format!("{BANNER}\r\n"),
    };
    conn.write_all(banner.as_bytes())?;
    drop(banner);
    let mut buf = [0u8; 512];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            conn.shutdown_write();
            return Ok(());
        }
        conn.write_all(&buf[..n])?;
    }
}
