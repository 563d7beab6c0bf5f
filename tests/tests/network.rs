//! The network from the host: the guest's TCP port 22 is forwarded from a
//! free host port (`Guest::ssh_port`), and the kernel's echo service there
//! answers through virtio-net, smoltcp and QEMU's user networking.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use system_tests::{Guest, assert_same, field};

const TIMEOUT: Duration = Duration::from_secs(15);
const BANNER: &str = "memquota echo: each line comes back";

fn connect(g: &Guest) -> TcpStream {
    let addr = SocketAddr::from(([127, 0, 0, 1], g.ssh_port()));
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect to the forwarded port");
    stream
        .set_read_timeout(Some(TIMEOUT))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(TIMEOUT))
        .expect("write timeout");
    stream
}

/// Reads up to and including the next `\n`.
fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8];
    while line.last() != Some(&b'\n') {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => line.push(byte[0]),
            Err(e) => panic!("reading after {:?}: {e}", String::from_utf8_lossy(&line)),
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// One whole conversation: banner, two lines echoed, then close.
fn converse(g: &Guest, n: usize) {
    let mut s = connect(g);
    let banner = read_line(&mut s);
    assert!(
        banner.starts_with(BANNER),
        "conversation {n}: banner: {banner:?}"
    );
    for line in [format!("hello {n}\n"), "a second line\n".to_string()] {
        s.write_all(line.as_bytes()).expect("send a line");
        assert_eq!(read_line(&mut s), line);
    }
}

/// The `/proc/meminfo` fields that must return to their baseline.
const KEYS: [&str; 6] = [
    "HeapUsed",
    "KernelBytes",
    "SessionBytes",
    "AccountsLive",
    "AccountsOrphaned",
    "AccountingErrors",
];

/// `/proc/meminfo` once it matches `before` in [`KEYS`], or after 20 s:
/// closed connections are freed once their FIN is acknowledged, within
/// the kernel's 10 s linger at most.
fn settle(g: &mut Guest, before: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = g.run("cat /proc/meminfo");
        let same = KEYS.iter().all(|k| field(&now, k) == field(before, k));
        if same || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn boot_with_network(append: &str) -> Guest {
    let mut g = Guest::boot(append);
    let line = g.expect_line_since_boot("net: up ");
    assert!(
        line.contains("net: up 10.0.2.15/24 gateway 10.0.2.2"),
        "{line}"
    );
    // The service's sockets listen (a SYN before that is reset).
    g.expect_line_since_boot("echo: listening on port 22");
    g
}

#[test]
fn the_echo_service_answers_on_the_forwarded_port() {
    let mut g = boot_with_network("");
    let card = g.expect_line_since_boot("net: virtio-net at ");
    assert!(card.contains("MAC 52:54:00:"), "{card}");
    let mut s = connect(&g);
    let banner = read_line(&mut s);
    assert!(banner.starts_with(BANNER), "{banner:?}");
    // The banner names the client as the guest sees it: QEMU's gateway.
    assert!(banner.contains("10.0.2.2:"), "{banner:?}");
    s.write_all(b"hello, kernel\n").expect("send");
    assert_eq!(read_line(&mut s), "hello, kernel\n");
    // Bigger than a socket buffer (4 KiB), so the window is exercised.
    let big: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz"
        .iter()
        .cycle()
        .take(64 * 1024)
        .copied()
        .collect();
    let mut reader = s.try_clone().expect("clone the stream");
    let expected = big.clone();
    let echoed = std::thread::spawn(move || {
        let mut got = vec![0u8; expected.len()];
        reader.read_exact(&mut got).expect("read the echo");
        got == expected
    });
    s.write_all(&big).expect("send 64 KiB");
    assert!(echoed.join().expect("reader"), "64 KiB came back changed");
    // Half-close: the service sees the end and closes too.
    s.shutdown(Shutdown::Write).expect("shutdown");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("read to the end");
    assert!(rest.is_empty(), "{rest:?}");
    // The console carries on.
    assert_eq!(g.run("echo still here"), "still here\n");
}

#[test]
fn connections_leave_the_heap_and_accounts_at_baseline() {
    let mut g = boot_with_network("");
    // One conversation first, so that everything set up once (the ARP
    // cache, the service's first accept) is in the baseline.
    converse(&g, 0);
    std::thread::sleep(Duration::from_secs(2));
    let before = g.run("cat /proc/meminfo");
    for n in 1..=40 {
        converse(&g, n);
    }
    // Connections dropped abruptly: without reading the banner, and with
    // unread data in flight.
    for _ in 0..10 {
        let mut s = connect(&g);
        s.write_all(b"unread\n").expect("send");
        drop(s);
    }
    let after = settle(&mut g, &before);
    assert_same(&before, &after, &KEYS);
    // And the service still answers.
    converse(&g, 99);
}
