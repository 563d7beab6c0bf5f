//! The server against tools from the Python venv that
//! `scripts/setup-python.sh` builds at `target/pyenv`: a second client
//! implementation (asyncssh) and `ssh-audit`. A missing venv is a failure
//! that says how to make it, never a skipped test.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use common::{Server, ServerOptions, TempDir, config, keygen, run};

const T: Duration = Duration::from_mins(1);
const MIB: usize = 1024 * 1024;

/// A program in the venv's `bin/`; panics with the way to make the venv
/// if it is not there.
fn venv_bin(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let venv = root.join("target/pyenv");
    let bin = venv.join("bin").join(name);
    assert!(
        bin.is_file(),
        "{} is missing: the Python venv is not set up; run scripts/setup-python.sh",
        bin.display()
    );
    bin
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// The bytes `i * 7 + salt` (mod 256), as `pattern()` in the client script.
fn pattern(n: usize, salt: usize) -> Vec<u8> {
    (0..n)
        .map(|i| u8::try_from((i * 7 + salt) % 256).unwrap())
        .collect()
}

/// `{"len": …, "sha256": …}` as the client script reports a payload.
fn digest(data: &[u8]) -> Value {
    let hex = Sha256::digest(data).iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    serde_json::json!({ "len": data.len(), "sha256": hex })
}

#[test]
fn asyncssh_exec_stdin_and_two_channels() {
    let python = venv_bin("python");
    let dir = TempDir::new("asyncssh");
    let (key, public) = keygen(&dir.0, "key");
    // A 1 MiB budget: windows of at most 512 KiB, so the 2 MiB sent to
    // `sink` needs the server's WINDOW_ADJUSTs.
    let s = Server::start(ServerOptions {
        budget: Some(MIB),
        config: Arc::new(config(&public)),
        refuse: None,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/asyncssh_client.py");
    let o = run(
        Command::new(python)
            .arg(script)
            .arg(s.port.to_string())
            .arg(&key),
        T,
    );
    assert!(o.status.success(), "client failed: {}", text(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("bad report ({e}): {}", text(&o.stdout)));

    assert_eq!(r["server_version"], "SSH-2.0-quota_sshd_0.1");
    assert_eq!(
        r["ciphers"],
        serde_json::json!([
            "chacha20-poly1305@openssh.com",
            "chacha20-poly1305@openssh.com"
        ])
    );
    assert_eq!(r["host_key"], "ssh-ed25519");

    let echo = &r["echo"];
    assert_eq!(echo["stdout"], "hi\n", "{echo}");
    assert_eq!(echo["stderr"], "", "{echo}");
    assert_eq!(echo["exit_status"], 0, "{echo}");

    for (cmd, status) in [("true", 0), ("false", 1), ("exit 3", 3), ("nosuch", 127)] {
        let x = &r["exits"][cmd];
        assert_eq!(x["exit_status"], status, "{cmd}: {x}");
        assert_eq!(x["exit_signal"], Value::Null, "{cmd}: {x}");
    }
    assert_eq!(
        r["exits"]["nosuch"]["stderr"], "nosuch: command not found\n",
        "stderr arrives as extended data"
    );

    let cat = &r["cat"];
    assert_eq!(cat["sent"], digest(&pattern(100_000, 0)));
    assert_eq!(cat["received"], cat["sent"], "cat echoed something else");
    assert_eq!(cat["exit_status"], 0);

    let sink = &r["sink"];
    assert_eq!(sink["stdout"], format!("{}\n", 2 * MIB), "{sink}");
    assert_eq!(sink["exit_status"], 0, "{sink}");

    let both = r["two_channels"].as_array().expect("two_channels");
    for (ch, (n, salt)) in both.iter().zip([(50_000, 1), (30_000, 2)]) {
        assert_eq!(ch["sent"], digest(&pattern(n, salt)));
        assert_eq!(ch["received"], ch["sent"], "{ch}");
        assert_eq!(ch["exit_status"], 0, "{ch}");
    }

    // The budget held with a client whose flow control is not OpenSSH's.
    let st = s.stats();
    assert!(st.conn_reserved_max <= MIB, "{st:?}");
    assert!(st.stdin_high_water <= MIB / 2, "{st:?}");
    assert_eq!(st.refused, 0, "{st:?}");
}

/// `(algorithm, level, note)` for every note `ssh-audit -j` attached to
/// an algorithm of the server's KEXINIT.
fn audit_notes(report: &Value) -> Vec<(String, String, String)> {
    let mut notes = Vec::new();
    for section in ["kex", "key", "enc", "mac"] {
        for alg in report[section].as_array().into_iter().flatten() {
            let name = alg["algorithm"].as_str().unwrap_or_default();
            for (level, list) in alg["notes"].as_object().into_iter().flatten() {
                for note in list.as_array().into_iter().flatten() {
                    let note = note.as_str().unwrap_or_default();
                    notes.push((name.to_string(), level.clone(), note.to_string()));
                }
            }
        }
    }
    notes
}

#[test]
fn ssh_audit_reports_no_failure() {
    let audit = venv_bin("ssh-audit");
    let dir = TempDir::new("audit");
    let (_key, public) = keygen(&dir.0, "key");
    let s = Server::start(ServerOptions {
        budget: None,
        config: Arc::new(config(&public)),
        refuse: None,
    });
    let o = run(
        Command::new(&audit)
            .args(["-j", "-t", "10", "-p", &s.port.to_string(), "127.0.0.1"])
            .env("NO_COLOR", "1"),
        T,
    );
    let out = text(&o.stdout);
    // ssh-audit's exit codes: 0 good, 1 connection error, 2 warnings,
    // 3 failures.
    assert!(
        matches!(o.status.code(), Some(0 | 2)),
        "ssh-audit: {}\n{out}\n{}",
        o.status,
        text(&o.stderr)
    );
    let r: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("bad JSON from ssh-audit ({e}): {out}"));
    let notes = audit_notes(&r);
    for (alg, level, note) in &notes {
        if level != "info" {
            eprintln!("ssh-audit {level}: {alg}: {note}");
        }
    }
    for note in r["additional_notes"].as_array().into_iter().flatten() {
        eprintln!("ssh-audit note: {note}");
    }

    let fails: Vec<_> = notes.iter().filter(|(_, l, _)| l == "fail").collect();
    assert!(fails.is_empty(), "ssh-audit failures: {fails:?}\n{out}");
    assert_eq!(r["cves"], serde_json::json!([]), "{out}");
    assert!(
        r["recommendations"].get("critical").is_none(),
        "critical recommendations: {}",
        r["recommendations"]
    );

    // What it saw is what we offer, and its only warnings are the known
    // one: no post-quantum key exchange (see README, Missing).
    let names = |section: &str| -> Vec<&str> {
        r[section]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["algorithm"].as_str())
            .collect()
    };
    assert_eq!(r["banner"]["raw"], "SSH-2.0-quota_sshd_0.1");
    assert_eq!(
        names("kex"),
        [
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "kex-strict-s-v00@openssh.com"
        ]
    );
    assert_eq!(names("key"), ["ssh-ed25519"]);
    assert_eq!(names("enc"), ["chacha20-poly1305@openssh.com"]);
    assert_eq!(names("mac"), ["hmac-sha2-256-etm@openssh.com"]);
    let warnings: Vec<_> = notes
        .iter()
        .filter(|(_, l, _)| l == "warn")
        .map(|(a, _, n)| (a.as_str(), n.as_str()))
        .collect();
    let pq = "does not provide protection against post-quantum attacks";
    assert_eq!(
        warnings,
        [
            ("curve25519-sha256", pq),
            ("curve25519-sha256@libssh.org", pq)
        ],
        "{out}"
    );
}
