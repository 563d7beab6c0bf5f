//! The kernel's SSH server with clients other than OpenSSH's `ssh`: the
//! Python `asyncssh` library (exec, exit statuses, stdin, two channels on
//! one connection) and `ssh-audit` (its algorithm audit, and its burst of
//! connections). Both come from the pinned venv `scripts/setup-python.sh`
//! makes (run by `scripts/test.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use system_tests::{BASELINE_KEYS, Guest, assert_same};

fn venv(bin: &str) -> PathBuf {
    let path = system_tests::root().join("target/pyenv/bin").join(bin);
    assert!(
        path.exists(),
        "{} is missing: the Python venv is not set up; run scripts/setup-python.sh",
        path.display()
    );
    path
}

/// Runs `cmd`, killing it after a minute.
fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output().expect("output"));
    });
    let Ok(out) = rx.recv_timeout(Duration::from_mins(1)) else {
        let _ = Command::new("kill").args(["-9", &pid]).status();
        panic!("{cmd:?} ran past a minute");
    };
    out
}

struct Keys(PathBuf);

impl Keys {
    fn new(name: &str) -> Keys {
        let dir =
            std::env::temp_dir().join(format!("memquota-interop-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("key dir");
        for key in ["host", "user"] {
            let made = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key))
                .status()
                .expect("ssh-keygen");
            assert!(made.success());
        }
        Keys(dir)
    }

    fn boot(&self) -> Guest {
        Guest::boot_with_ssh("", &self.0.join("host"), &self.0.join("user.pub"))
    }

    fn user(&self) -> PathBuf {
        self.0.join("user")
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn report(out: &Output) -> Value {
    assert!(
        out.status.success() || matches!(out.status.code(), Some(2)),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn asyncssh_runs_commands_feeds_stdin_and_opens_two_channels() {
    let keys = Keys::new("asyncssh");
    let mut g = keys.boot();
    let before = g.meminfo_quiet();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../sshd/tests/python/asyncssh_client.py");
    let out = run(Command::new(venv("python"))
        .arg(script)
        .arg(g.ssh_port().to_string())
        .arg(keys.user()));
    let r = report(&out);
    assert_eq!(r["server_version"], "SSH-2.0-quota_sshd_0.1");
    assert_eq!(r["host_key"], "ssh-ed25519");
    assert_eq!(r["echo"]["stdout"], "hi\n", "{}", r["echo"]);
    assert_eq!(r["echo"]["exit_status"], 0);
    for (cmd, status) in [("true", 0), ("false", 1), ("exit 3", 3), ("nosuch", 127)] {
        assert_eq!(
            r["exits"][cmd]["exit_status"], status,
            "{cmd}: {}",
            r["exits"][cmd]
        );
    }
    assert_eq!(r["cat"]["received"], r["cat"]["sent"], "{}", r["cat"]);
    assert_eq!(
        r["sink"]["stdout"],
        format!("{}\n", 2 << 20),
        "{}",
        r["sink"]
    );
    for ch in r["two_channels"].as_array().expect("two_channels") {
        assert_eq!(ch["received"], ch["sent"], "{ch}");
        assert_eq!(ch["exit_status"], 0, "{ch}");
    }
    let after = g.meminfo_settled(&before, BASELINE_KEYS);
    assert_same(&before, &after, BASELINE_KEYS);
}

#[test]
fn ssh_audit_finds_no_failure_and_its_connection_burst_leaves_nothing_behind() {
    let keys = Keys::new("audit");
    let mut g = keys.boot();
    let before = g.meminfo_quiet();
    // Its rate test opens dozens of connections at once (DHEat).
    let out = run(Command::new(venv("ssh-audit"))
        .args([
            "-j",
            "-t",
            "20",
            "-p",
            &g.ssh_port().to_string(),
            "127.0.0.1",
        ])
        .env("NO_COLOR", "1"));
    let r = report(&out);
    for section in ["kex", "key", "enc", "mac"] {
        for alg in r[section].as_array().into_iter().flatten() {
            let fails = &alg["notes"]["fail"];
            assert!(
                fails.is_null() || fails.as_array().is_some_and(Vec::is_empty),
                "{}: {fails}",
                alg["algorithm"]
            );
        }
    }
    assert_eq!(r["cves"], serde_json::json!([]), "{r}");
    // The kernel serves a login after the burst, and the burst is gone.
    assert_eq!(g.run("echo alive"), "alive\n");
    let login = run(Command::new("ssh")
        .args(["-p", &g.ssh_port().to_string(), "-i"])
        .arg(keys.user())
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "user@127.0.0.1",
            "echo in",
        ]));
    assert_eq!(String::from_utf8_lossy(&login.stdout), "in\n", "{login:?}");
    let after = g.meminfo_settled(&before, BASELINE_KEYS);
    assert_same(&before, &after, BASELINE_KEYS);
}

#[test]
fn a_client_that_ignores_its_window_is_disconnected_and_nothing_is_left() {
    let keys = Keys::new("ignorer");
    let mut g = Guest::boot_with_ssh(
        "session_max=1M",
        &keys.0.join("host"),
        &keys.0.join("user.pub"),
    );
    let before = g.meminfo_quiet();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/window_ignorer.py");
    let out = run(Command::new(venv("python"))
        .arg(script)
        .arg(g.ssh_port().to_string())
        .arg(keys.user()));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad report ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    eprintln!("{r}");
    let ended = r["ended"].as_str().unwrap_or_default();
    assert!(ended.contains("peer ignored channel window"), "{r}");
    assert_eq!(g.run("echo alive"), "alive\n");
    let after = g.meminfo_settled(&before, BASELINE_KEYS);
    assert_same(&before, &after, BASELINE_KEYS);
}
