//! A measurement, not a check: loopback throughput of this server (the
//! host build, in-process) beside OpenSSH's own `sshd`, with the same
//! client (`/usr/bin/ssh`), cipher (chacha20-poly1305@openssh.com), key
//! and data, measured in one run and printed as ratios. Run by
//! `scripts/bench-ssh.sh`, which installs `openssh-server`:
//! `cargo test --release -p sshd --test versus_openssh -- --ignored --nocapture`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, ServerOptions, TempDir, config, keygen};

const MIB: usize = 1 << 20;
const SIZE: usize = 256 * MIB;

fn client(port: u16, key: &Path, user: &str, remote: &str) -> Command {
    let mut ssh = Command::new("/usr/bin/ssh");
    ssh.args(common::SSH_OPTIONS)
        .args([
            "-c",
            "chacha20-poly1305@openssh.com",
            "-p",
            &port.to_string(),
            "-i",
        ])
        .arg(key)
        .arg(format!("{user}@127.0.0.1"))
        .arg(remote)
        .stderr(Stdio::inherit());
    ssh
}

/// MiB/s of `SIZE` zero bytes into `remote`.
#[allow(clippy::cast_precision_loss)] // a figure for the log
fn inbound(port: u16, key: &Path, user: &str, remote: &str) -> f64 {
    let mut child = client(port, key, user, remote)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("ssh");
    let mut stdin = child.stdin.take().expect("stdin");
    let start = Instant::now();
    let chunk = vec![0u8; 256 * 1024];
    let mut left = SIZE;
    while left > 0 {
        let n = left.min(chunk.len());
        stdin.write_all(&chunk[..n]).expect("feed ssh");
        left -= n;
    }
    drop(stdin);
    assert!(
        child.wait().expect("ssh").success(),
        "inbound to {remote} failed"
    );
    SIZE as f64 / MIB as f64 / start.elapsed().as_secs_f64()
}

/// MiB/s of `SIZE` bytes read from `remote` (endless output).
#[allow(clippy::cast_precision_loss)] // a figure for the log
fn outbound(port: u16, key: &Path, user: &str, remote: &str) -> f64 {
    let mut child = client(port, key, user, remote)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ssh");
    let mut out = child.stdout.take().expect("stdout");
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    let start = Instant::now();
    while total < SIZE {
        let n = out.read(&mut buf).expect("read ssh");
        assert!(n > 0, "{remote} ended after {total} bytes");
        total += n;
    }
    let rate = total as f64 / MIB as f64 / start.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    rate
}

/// OpenSSH's `sshd` on 127.0.0.1:`port`, accepting `authorized` for the
/// user running the test, killed on drop.
struct OpenSshd(Child);

impl OpenSshd {
    fn start(dir: &Path, port: u16, authorized: &str) -> Self {
        let (host, _) = keygen(dir, "host");
        std::fs::write(dir.join("authorized_keys"), authorized).expect("authorized_keys");
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             Ciphers chacha20-poly1305@openssh.com\n",
            host.display(),
            dir.join("authorized_keys").display(),
            dir.join("sshd.pid").display(),
        );
        std::fs::write(dir.join("sshd_config"), config).expect("sshd_config");
        // Debian's sshd wants its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdout(Stdio::null())
            .spawn()
            .expect("/usr/sbin/sshd (scripts/bench-ssh.sh installs openssh-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "OpenSSH's sshd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child)
    }
}

impl Drop for OpenSshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "a measurement, not a check: scripts/bench-ssh.sh"]
fn throughput_beside_openssh_sshd() {
    let dir = TempDir::new("versus");
    let (key, public) = keygen(&dir.0, "key");
    let ours = Server::start(ServerOptions {
        budget: None,
        config: Arc::new(config(&public)),
        refuse: None,
    });
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("port").port()
    };
    let theirs = OpenSshd::start(&dir.0, port, &public);
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    // Interleaved, so drift on a shared machine hits both alike.
    let (mut ours_in, mut theirs_in, mut ours_out, mut theirs_out) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..2 {
        ours_in += inbound(ours.port, &key, "test", "sink") / 2.0;
        theirs_in += inbound(port, &key, &user, "cat > /dev/null") / 2.0;
        ours_out += outbound(ours.port, &key, "test", "yes") / 2.0;
        theirs_out += outbound(port, &key, &user, "yes") / 2.0;
    }
    drop(theirs);
    eprintln!(
        "loopback, chacha20-poly1305, {} MiB each way, mean of 2:",
        SIZE / MIB
    );
    eprintln!("| direction | this sshd (host build) | OpenSSH sshd | ratio |");
    eprintln!("|---|---|---|---|");
    eprintln!(
        "| inbound (client → sink) | {ours_in:.0} MiB/s | {theirs_in:.0} MiB/s | {:.2}× |",
        ours_in / theirs_in
    );
    eprintln!(
        "| outbound (yes → client) | {ours_out:.0} MiB/s | {theirs_out:.0} MiB/s | {:.2}× |",
        ours_out / theirs_out
    );
}
