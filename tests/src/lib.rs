//! Drives the real kernel in QEMU through its serial console, as a person
//! at the terminal would: type a line, read what comes back.
//!
//! Every guest has a hard deadline: a watchdog kills QEMU when it passes,
//! so a hung kernel fails its test instead of hanging CI. Each wait for
//! output has its own, shorter timeout.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The console shell's prompt (root's session).
pub const PROMPT: &str = "memquota# ";

/// The first line of every console session's greeting.
pub const BANNER: &str = "memquota: per-session kernel memory quotas";

/// How long one guest may live at most.
pub const GUEST_DEADLINE: Duration = Duration::from_mins(4);

/// How long to wait for one expected output.
pub const STEP_TIMEOUT: Duration = Duration::from_mins(1);

/// The workspace root.
///
/// # Panics
/// Never: `tests/` always has a parent directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Builds the release kernel with `features` (only `ktest` exists) into
/// `target_dir` (relative to the workspace) and returns the ELF's path.
///
/// The kernel is built by `scripts/build-kernel.sh`, as everywhere else:
/// with its own nightly, not the stable cargo running these tests.
///
/// # Panics
/// If the build fails.
pub fn build_kernel(features: &[&str], target_dir: &str) -> PathBuf {
    let mut build = Command::new(root().join("scripts/build-kernel.sh"));
    build.arg("--target-dir").arg(root().join(target_dir));
    for feature in features {
        assert_eq!(*feature, "ktest", "the kernel's only feature is ktest");
        build.arg("--ktest");
    }
    let output = build
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/build-kernel.sh");
    assert!(output.status.success(), "building the kernel failed");
    let elf = String::from_utf8(output.stdout).expect("a UTF-8 path");
    PathBuf::from(elf.trim())
}

/// The release kernel, built once per test binary.
pub fn kernel() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_kernel(&[], "target")).clone()
}

/// QEMU `virt` booting `elf` with `append` as its boot parameters, exactly
/// as `scripts/run.sh` boots it: through `scripts/qemu.sh`, the one place
/// the QEMU command line is written (128 MiB, `MEMQUOTA_CPUS` CPUs, 2
/// unless the environment says otherwise, the serial console on stdio,
/// semihosting for the test build's exit), with the guest's TCP port 22
/// forwarded from a free host port of its own. Set `MEMQUOTA_CPUS` on the
/// command (or use [`Guest::boot_with_cpus`]) for another CPU count.
pub fn qemu(elf: &Path, append: &str) -> Command {
    qemu_forwarding(elf, append, free_port())
}

/// As [`qemu`], forwarding `127.0.0.1:port` on the host to the guest's
/// TCP port 22.
pub fn qemu_forwarding(elf: &Path, append: &str, port: u16) -> Command {
    let mut qemu = Command::new(root().join("scripts/qemu.sh"));
    qemu.arg(elf)
        .env("MEMQUOTA_APPEND", append)
        .env("MEMQUOTA_SSH_PORT", port.to_string());
    qemu
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks
/// it), so that guests booted in parallel each forward their own.
///
/// # Panics
/// If no port can be bound at all.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("a bound address").port()
}

/// A booted guest.
pub struct Guest {
    child: Arc<Mutex<Child>>,
    /// Set when the guest is dropped: the watchdog stands down.
    done: Arc<(Mutex<bool>, Condvar)>,
    stdin: ChildStdin,
    output: Arc<(Mutex<Vec<u8>>, Condvar)>,
    /// Output before this offset has been consumed by `expect`.
    seen: usize,
    started: Instant,
    /// The host port forwarded to the guest's TCP port 22.
    ssh_port: u16,
    /// Markers [`Guest::sync`] has used.
    syncs: u64,
}

impl Guest {
    /// Boots the kernel with `append` as its boot parameters and waits for
    /// the first prompt.
    ///
    /// # Panics
    /// If QEMU cannot start or no prompt appears in time.
    pub fn boot(append: &str) -> Guest {
        let mut guest = Self::start(append, &[], GUEST_DEADLINE);
        guest.expect(PROMPT);
        guest
    }

    /// As [`Guest::boot`], for a guest that may run for `deadline` instead
    /// of [`GUEST_DEADLINE`] (the long soaks).
    ///
    /// # Panics
    /// As [`Guest::boot`].
    pub fn boot_for(append: &str, deadline: Duration) -> Guest {
        let mut guest = Self::start(append, &[], deadline);
        guest.expect(PROMPT);
        guest
    }

    /// As [`Guest::boot`], on `cpus` CPUs (QEMU's `-smp`; `scripts/qemu.sh`
    /// accepts 1 to 4) whatever `MEMQUOTA_CPUS` says.
    ///
    /// # Panics
    /// As [`Guest::boot`].
    pub fn boot_with_cpus(append: &str, cpus: u32) -> Guest {
        let cpus = cpus.to_string();
        let env = [("MEMQUOTA_CPUS", std::ffi::OsStr::new(&cpus))];
        let mut guest = Self::start(append, &env, GUEST_DEADLINE);
        guest.expect(PROMPT);
        guest
    }

    /// Boots the kernel with the SSH server's keys (`host_key`, an OpenSSH
    /// private key file, and `authorized_keys`) and waits for the prompt.
    ///
    /// # Panics
    /// As [`Guest::boot`].
    pub fn boot_with_ssh(append: &str, host_key: &Path, authorized_keys: &Path) -> Guest {
        let env = [
            ("MEMQUOTA_HOST_KEY", host_key.as_os_str()),
            ("MEMQUOTA_AUTHORIZED_KEYS", authorized_keys.as_os_str()),
        ];
        let mut guest = Self::start(append, &env, GUEST_DEADLINE);
        guest.expect(PROMPT);
        guest
    }

    /// Boots the kernel and types `early` at once, while it is still
    /// booting, as a person who starts typing early does; does not wait
    /// for the prompt.
    ///
    /// # Panics
    /// If QEMU cannot start.
    pub fn boot_typing(append: &str, early: &[u8]) -> Guest {
        let mut guest = Self::start(append, &[], GUEST_DEADLINE);
        guest.send(early);
        guest
    }

    fn start(append: &str, env: &[(&str, &std::ffi::OsStr)], deadline: Duration) -> Guest {
        let ssh_port = free_port();
        let mut child = qemu_forwarding(&kernel(), append, ssh_port)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start qemu-system-aarch64 (scripts/test.sh installs it)");
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let output = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let (lock, cv) = &*sink;
                lock.lock()
                    .expect("output lock")
                    .extend_from_slice(&buf[..n]);
                cv.notify_all();
            }
        });
        let child = Arc::new(Mutex::new(child));
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let (watched, flag) = (child.clone(), done.clone());
        std::thread::spawn(move || {
            let (lock, cv) = &*flag;
            let guard = lock.lock().expect("watchdog lock");
            let (guard, _) = cv
                .wait_timeout_while(guard, deadline, |done| !*done)
                .expect("watchdog lock");
            if !*guard {
                // The guest outlived its deadline: kill it so the test fails.
                let _ = watched.lock().expect("child lock").kill();
            }
        });
        Guest {
            child,
            done,
            stdin,
            output,
            seen: 0,
            started: Instant::now(),
            ssh_port,
            syncs: 0,
        }
    }

    /// The host port (on 127.0.0.1) forwarded to the guest's TCP port 22.
    pub fn ssh_port(&self) -> u16 {
        self.ssh_port
    }

    /// Time since QEMU was started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Sends raw bytes to the console.
    ///
    /// # Panics
    /// If QEMU has gone.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stdin
            .write_all(bytes)
            .expect("write to the guest console");
        self.stdin.flush().expect("flush the guest console");
    }

    /// Waits until `pattern` appears after what was already consumed and
    /// returns the output up to and including it.
    ///
    /// # Panics
    /// If it does not appear within [`STEP_TIMEOUT`], showing the output.
    pub fn expect(&mut self, pattern: &str) -> String {
        self.expect_within(pattern, STEP_TIMEOUT)
            .unwrap_or_else(|| panic!("timed out waiting for {pattern:?}; {}", self.context()))
    }

    /// The output around what was consumed, for a failure's message.
    fn context(&self) -> String {
        let out = self.output.0.lock().expect("output lock");
        let unread = &out[self.seen..];
        format!(
            "before that:\n{}\n--- output so far:\n{}",
            String::from_utf8_lossy(&out[self.seen.saturating_sub(2000)..self.seen]),
            String::from_utf8_lossy(&unread[..unread.len().min(4000)])
        )
    }

    /// Like [`Guest::expect`], but gives up after `wait`: `None` then.
    ///
    /// # Panics
    /// If the output lock is poisoned.
    pub fn expect_within(&mut self, pattern: &str, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        let needle = pattern.as_bytes();
        let (lock, cv) = &*self.output;
        let mut out = lock.lock().expect("output lock");
        let mut searched: usize = 0;
        loop {
            let unread = &out[self.seen..];
            // Search only what arrived since the last look (plus the
            // pattern's length less one): a flood of output stays linear.
            let from = searched.saturating_sub(needle.len().saturating_sub(1));
            let found = unread[from.min(unread.len())..]
                .windows(needle.len())
                .position(|w| w == needle)
                .map(|at| at + from);
            searched = unread.len();
            if let Some(at) = found {
                let end = at + needle.len();
                let text = String::from_utf8_lossy(&unread[..end]).into_owned();
                self.seen += end;
                return Some(text);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            out = cv.wait_timeout(out, deadline - now).expect("output lock").0;
        }
    }

    /// Waits until one of `patterns` appears after what was already
    /// consumed; returns its index and the output up to and including it.
    ///
    /// # Panics
    /// If none appears within [`STEP_TIMEOUT`], showing the output.
    pub fn expect_any(&mut self, patterns: &[&str]) -> (usize, String) {
        self.expect_any_within(patterns, STEP_TIMEOUT)
            .unwrap_or_else(|| {
                panic!(
                    "timed out waiting for any of {patterns:?}; {}",
                    self.context()
                )
            })
    }

    /// Like [`Guest::expect_any`], but gives up after `wait`: `None` then.
    ///
    /// # Panics
    /// If the output lock is poisoned.
    pub fn expect_any_within(
        &mut self,
        patterns: &[&str],
        wait: Duration,
    ) -> Option<(usize, String)> {
        let deadline = Instant::now() + wait;
        let (lock, cv) = &*self.output;
        let mut out = lock.lock().expect("output lock");
        loop {
            let unread = &out[self.seen..];
            let found = patterns
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let needle = p.as_bytes();
                    unread
                        .windows(needle.len())
                        .position(|w| w == needle)
                        .map(|at| (at + needle.len(), i))
                })
                .min();
            if let Some((end, index)) = found {
                let text = String::from_utf8_lossy(&unread[..end]).into_owned();
                self.seen += end;
                return Some((index, text));
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            out = cv.wait_timeout(out, deadline - now).expect("output lock").0;
        }
    }

    /// Waits until `pattern` appears anywhere in the output since boot
    /// (before or after what `expect` consumed, which it leaves alone) and
    /// returns the whole line it is on. For lines printed by kernel threads
    /// at their own pace, such as the network's.
    ///
    /// # Panics
    /// If it does not appear within [`STEP_TIMEOUT`], showing the output.
    pub fn expect_line_since_boot(&mut self, pattern: &str) -> String {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let (lock, cv) = &*self.output;
        let mut out = lock.lock().expect("output lock");
        loop {
            let text = String::from_utf8_lossy(&out);
            if let Some(line) = text.lines().find(|l| l.contains(pattern)) {
                return line.trim_end().to_string();
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out waiting for {pattern:?}; output so far:\n{text}"
            );
            drop(text);
            out = cv.wait_timeout(out, deadline - now).expect("output lock").0;
        }
    }

    /// Brings the test and the console back in step, whatever happened
    /// before: presses Ctrl-C (ending a foreground job, or abandoning a
    /// half-typed line), then runs `echo sync N` with a fresh `N` and waits
    /// for its output line and the prompt after it, so no earlier prompt is
    /// mistaken for a later one. If a new session's banner comes first (the
    /// shell ended, taking the line with it), it tries again at once.
    /// Returns how many tries went unanswered for [`STEP_TIMEOUT`] / 3.
    ///
    /// # Panics
    /// If the console does not answer within three such waits, or the
    /// shell keeps ending.
    pub fn sync(&mut self) -> u32 {
        let mut unanswered = 0;
        for _ in 0..20 {
            self.syncs += 1;
            self.send(b"\x03");
            self.send(format!("echo sync {}\r", self.syncs).as_bytes());
            // First the line's echo (the prompt before it may be a stale
            // one), then its output line, or a prompt without it (the
            // `echo` itself was refused or killed), or a new session. A
            // background job's output may land inside the echo (another
            // CPU runs it): then the answer on a line of its own is enough.
            let echoed = format!("echo sync {}\r\n", self.syncs);
            let answer = format!("sync {}\r\n", self.syncs);
            let answer_line = format!("\nsync {}\r\n", self.syncs);
            let wait = STEP_TIMEOUT / 3;
            let outcome = match self.expect_any_within(&[&echoed, BANNER, &answer_line], wait) {
                Some((0, _)) => self.expect_any_within(&[&answer, PROMPT, BANNER], wait),
                Some((2, text)) => Some((0, text)),
                other => other,
            };
            match outcome {
                Some((0, _)) => {
                    self.expect(PROMPT);
                    return unanswered;
                }
                Some(_) => {}
                None => {
                    eprintln!("sync {} was not answered; {}", self.syncs, self.context());
                    unanswered += 1;
                    assert!(unanswered < 3, "the console stopped answering");
                }
            }
        }
        panic!("the shell kept ending; {}", self.context())
    }

    /// Reads `/proc/meminfo` until `keys` read as in `before` (what ended
    /// may still be closing: a TCP connection's buffers are freed once its
    /// close completes), for at most [`STEP_TIMEOUT`] / 4, and returns the
    /// last reading, for [`assert_same`] to judge.
    pub fn meminfo_settled(&mut self, before: &str, keys: &[&str]) -> String {
        let deadline = Instant::now() + STEP_TIMEOUT / 4;
        loop {
            let now = self.run("cat /proc/meminfo");
            let same = keys.iter().all(|k| {
                procfs::find_field(&now, k).is_some()
                    && procfs::find_field(&now, k) == procfs::find_field(before, k)
            });
            if same || Instant::now() >= deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Reads `/proc/meminfo` until two readings 250 ms apart agree on
    /// [`BASELINE_KEYS`] (whatever ended before has finished closing), for
    /// at most [`STEP_TIMEOUT`] / 4: a baseline to compare with later.
    pub fn meminfo_quiet(&mut self) -> String {
        let mut last = self.run("cat /proc/meminfo");
        let deadline = Instant::now() + STEP_TIMEOUT / 4;
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let now = self.run("cat /proc/meminfo");
            let same = BASELINE_KEYS
                .iter()
                .all(|k| procfs::find_field(&now, k) == procfs::find_field(&last, k));
            if same || Instant::now() >= deadline {
                return now;
            }
            last = now;
        }
    }

    /// Types `line` at the prompt and returns what it printed, without the
    /// echoed line, the next prompt and any [`NOTICES`] line the kernel
    /// printed meanwhile.
    pub fn run(&mut self, line: &str) -> String {
        self.send(line.as_bytes());
        self.send(b"\r");
        let out = without_notices(&self.expect(PROMPT));
        let body = out.strip_suffix(PROMPT).unwrap_or(&out);
        let body = body.replace("\r\n", "\n");
        match body.split_once('\n') {
            Some((echo, rest)) if echo.ends_with(line) => rest.to_string(),
            _ => body,
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let (lock, cv) = &*self.done;
        *lock.lock().expect("watchdog lock") = true;
        cv.notify_all();
        let mut child = self.child.lock().expect("child lock");
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Starts of the lines the kernel prints at its own pace, whenever
/// something changes, which may land in the middle of a command's output:
/// [`Guest::run`] leaves them out (read them with
/// [`Guest::lines_since_boot`]).
pub const NOTICES: &[&str] = &["memory pressure: "];

/// `text` without the [`NOTICES`] lines (each goes out whole, with its
/// `\r\n`, so taking it out leaves the output around it as it was).
fn without_notices(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, _)) = NOTICES
        .iter()
        .filter_map(|n| rest.find(n).map(|at| (at, n)))
        .min()
    {
        kept.push_str(&rest[..at]);
        rest = rest[at..]
            .find("\r\n")
            .map_or("", |end| &rest[at + end + 2..]);
    }
    kept.push_str(rest);
    kept
}

/// The value of `key` in a `key value` or `Key: value` file.
///
/// # Panics
/// If the key is missing or not a number.
pub fn field(text: &str, key: &str) -> u64 {
    let value = procfs::find_field(text, key).unwrap_or_else(|| panic!("no {key} in:\n{text}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("{key} = {value:?} is not a number"))
}

/// The `/proc/meminfo` keys that must come back exactly once whatever a
/// test did has ended: the heap, the accounts, and the error counter.
pub const BASELINE_KEYS: &[&str] = &[
    "HeapUsed",
    "KernelBytes",
    "SessionBytes",
    "Allocations",
    "AccountsLive",
    "AccountsOrphaned",
    "AccountingErrors",
];

/// Asserts `keys` have the same value in two readings of a key/value file
/// (e.g. `/proc/meminfo` before and after), showing both on a mismatch.
///
/// # Panics
/// On a mismatch, or a key missing from either reading.
pub fn assert_same(before: &str, after: &str, keys: &[&str]) {
    for key in keys {
        assert_eq!(
            field(after, key),
            field(before, key),
            "{key}:\n{before}\n---\n{after}"
        );
    }
}

impl Guest {
    /// Every line printed since boot (consumed by `expect` or not) that
    /// contains `pattern`, from where the pattern starts: for counting the
    /// lines kernel threads print at their own pace, which may land in the
    /// middle of a command's output.
    ///
    /// # Panics
    /// If the output lock is poisoned.
    pub fn lines_since_boot(&self, pattern: &str) -> Vec<String> {
        let out = self.output.0.lock().expect("output lock");
        String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.find(pattern).map(|at| l[at..].trim_end().to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::without_notices;

    #[test]
    fn notices_are_taken_out_whole_wherever_they_land() {
        let line = "memory pressure: back to normal: sessions use 1% of the heap budget (1 of 100 bytes)\r\n";
        assert_eq!(
            without_notices(&format!("echo $?\r\n{line}137\r\nmemquota# ")),
            "echo $?\r\n137\r\nmemquota# "
        );
        assert_eq!(
            without_notices(&format!("HeapU{line}sed: 1\r\n{line}{line}")),
            "HeapUsed: 1\r\n"
        );
        assert_eq!(without_notices("no notice\r\n"), "no notice\r\n");
        assert_eq!(without_notices("cut memory pressure: x"), "cut ");
    }
}
