//! The server against the real OpenSSH client (`/usr/bin/ssh`) on
//! 127.0.0.1, with commands implemented in the test host.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Input, Server, ServerOptions, TempDir, config, keygen, ssh};

const T: Duration = Duration::from_mins(1);

fn setup(budget: Option<usize>) -> (TempDir, std::path::PathBuf, Server) {
    let dir = TempDir::new("ssh");
    let (key, public) = keygen(&dir.0, "key");
    let cfg = config(&public);
    let server = Server::start(ServerOptions {
        budget,
        config: Arc::new(cfg),
        refuse: None,
    });
    (dir, key, server)
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

#[test]
fn key_login_and_echo() {
    let (_d, key, s) = setup(None);
    let o = ssh(s.port, &key, &[], "echo hi", Input::Null, T);
    assert_eq!(text(&o.stdout), "hi\n", "stderr: {}", text(&o.stderr));
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn a_refused_session_shows_the_reason() {
    let dir = TempDir::new("refuse");
    let (key, public) = keygen(&dir.0, "key");
    let s = Server::start(ServerOptions {
        budget: None,
        config: Arc::new(config(&public)),
        refuse: Some("memory is short, try later"),
    });
    let o = ssh(
        s.port,
        &key,
        &["-o", "LogLevel=INFO"],
        "echo hi",
        Input::Null,
        T,
    );
    assert_eq!(o.status.code(), Some(255));
    assert!(
        text(&o.stderr).contains("memory is short, try later"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn exit_statuses_arrive() {
    let (_d, key, s) = setup(None);
    for (cmd, code) in [("exit 3", 3), ("true", 0), ("false", 1), ("nosuch", 127)] {
        let o = ssh(s.port, &key, &[], cmd, Input::Null, T);
        assert_eq!(o.status.code(), Some(code), "{cmd}: {}", text(&o.stderr));
    }
}

#[test]
fn stdin_reaches_cat() {
    let (_d, key, s) = setup(None);
    let o = ssh(s.port, &key, &[], "cat", Input::Data(b"hi\n".to_vec()), T);
    assert_eq!(text(&o.stdout), "hi\n", "stderr: {}", text(&o.stderr));
    assert_eq!(o.status.code(), Some(0));
}

const MIB: usize = 1024 * 1024;

fn flood(extra: &[&str], size: usize) {
    let (_d, key, s) = setup(Some(MIB));
    let start = std::time::Instant::now();
    let o = ssh(s.port, &key, extra, "sink", Input::Zeros(size), T);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        text(&o.stdout),
        format!("{size}\n"),
        "stderr: {}",
        text(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0));
    let st = s.stats();
    #[allow(clippy::cast_precision_loss)] // a throughput figure for the log
    let rate = size as f64 / MIB as f64 / secs;
    eprintln!(
        "flood {size} bytes {extra:?}: {:.1} MiB/s, stdin high water {} reserved {} conn {}",
        rate, st.stdin_high_water, st.stdin_reserved_max, st.conn_reserved_max
    );
    assert!(st.stdin_high_water <= MIB, "{st:?}");
    assert!(st.stdin_reserved_max <= MIB, "{st:?}");
    assert!(st.conn_reserved_max <= MIB, "{st:?}");
    assert!(st.stdin_high_water > 0);
}

/// The flood size: `SSHD_FLOOD_MIB`, else 64 MiB in an optimised build
/// and 16 MiB in a debug one (where the crypto runs at a few MiB/s).
fn flood_size() -> usize {
    let default = if cfg!(debug_assertions) { 16 } else { 64 };
    std::env::var("SSHD_FLOOD_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        * MIB
}

#[test]
fn flood_stays_within_budget() {
    flood(&[], flood_size());
}

#[test]
fn flood_with_client_rekeying_every_megabyte() {
    flood(&["-o", "RekeyLimit=1M"], flood_size());
}

#[test]
fn wrong_key_is_refused() {
    let (d, _key, s) = setup(None);
    let (other, _) = keygen(&d.0, "other");
    let o = ssh(s.port, &other, &[], "echo hi", Input::Null, T);
    assert_eq!(o.status.code(), Some(255));
    assert!(
        text(&o.stderr).contains("Permission denied"),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn random_bytes_get_a_clean_close_then_a_good_login_works() {
    use std::io::{Read, Write};
    let (_d, key, s) = setup(None);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..3 {
        let mut sock = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // A version line first in later rounds, so the packet decoder sees
        // the garbage too.
        if round > 0 {
            sock.write_all(b"SSH-2.0-garbage\r\n").unwrap();
        }
        let junk: Vec<u8> = (0..4096)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()[0]
            })
            .collect();
        let _ = sock.write_all(&junk);
        // The server ends the connection: read to EOF (or a reset).
        let mut sink = Vec::new();
        let r = sock.read_to_end(&mut sink);
        assert!(r.is_ok() || r.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset));
        assert!(sink.starts_with(b"SSH-2.0-"));
    }
    let o = ssh(s.port, &key, &[], "echo still here", Input::Null, T);
    assert_eq!(text(&o.stdout), "still here\n");
    assert!(s.stats().refused >= 3, "{:?}", s.stats());
}

#[test]
fn endless_output_read_slowly_then_cut_stays_bounded() {
    use std::io::Read;
    let (_d, key, s) = setup(Some(MIB));
    let mut child = std::process::Command::new("/usr/bin/ssh")
        .args(common::SSH_OPTIONS)
        .args(["-p", &s.port.to_string(), "-i"])
        .arg(&key)
        .args(["test@127.0.0.1", "yes"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    let start = std::time::Instant::now();
    // Read slowly: the server's output buffer fills and `yes` waits.
    while total < 4 * MIB && start.elapsed() < Duration::from_secs(20) {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0);
        assert!(buf[..n].iter().all(|&b| b == b'y' || b == b'\n'));
        total += n;
        std::thread::sleep(Duration::from_millis(2));
    }
    let before = s.connections.load(std::sync::atomic::Ordering::SeqCst);
    child.kill().unwrap();
    child.wait().unwrap();
    // The server notices the cut and tears the connection down.
    while s.connections.load(std::sync::atomic::Ordering::SeqCst) == before {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "connection not torn down"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(total >= MIB, "read only {total} bytes");
    let st = s.stats();
    assert!(st.conn_reserved_max <= MIB, "{st:?}");
}

/// Loopback throughput with the real client, for the README: run with
/// `cargo test --release -p sshd --test openssh -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn throughput() {
    use std::io::Read;
    let size = 256 * MIB;
    for budget in [Some(MIB), None] {
        let (_d, key, s) = setup(budget);
        let start = std::time::Instant::now();
        let o = ssh(s.port, &key, &[], "sink", Input::Zeros(size), T);
        assert_eq!(text(&o.stdout), format!("{size}\n"));
        #[allow(clippy::cast_precision_loss)]
        let rate = size as f64 / MIB as f64 / start.elapsed().as_secs_f64();
        eprintln!(
            "inbound, budget {budget:?}: {rate:.0} MiB/s, stats {:?}",
            s.stats()
        );

        let mut child = std::process::Command::new("/usr/bin/ssh")
            .args(common::SSH_OPTIONS)
            .args(["-p", &s.port.to_string(), "-i"])
            .arg(&key)
            .args(["test@127.0.0.1", "yes"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0;
        let start = std::time::Instant::now();
        while total < size {
            total += out.read(&mut buf).unwrap();
        }
        #[allow(clippy::cast_precision_loss)]
        let rate = total as f64 / MIB as f64 / start.elapsed().as_secs_f64();
        child.kill().unwrap();
        child.wait().unwrap();
        eprintln!(
            "outbound, budget {budget:?}: {rate:.0} MiB/s, stats {:?}",
            s.stats()
        );
    }
}
