//! A host for the sans-IO server over `std::net`, with a few test commands,
//! and helpers to run the real OpenSSH client against it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sshd::{
    AuthorizedKey, ChannelId, Clock, Config, Connection, Credentials, Event, Exit, Headroom,
    HostKey, Interrupts, Random, StdinRead, Stream,
};

/// What the commands saw, for assertions.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Largest stdin buffer + window of any channel.
    pub stdin_high_water: usize,
    /// Largest stdin reservation of any channel.
    pub stdin_reserved_max: usize,
    /// Largest total reservation of a connection.
    pub conn_reserved_max: usize,
    /// Connections that ended with an error of ours.
    pub refused: usize,
}

struct TestHost {
    start: Instant,
    rng: File,
    budget: Option<usize>,
    used: usize,
}

impl Clock for TestHost {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Random for TestHost {
    fn fill(&mut self, buf: &mut [u8]) {
        self.rng.read_exact(buf).expect("/dev/urandom");
    }
}

impl Headroom for TestHost {
    fn headroom(&self) -> Option<usize> {
        self.budget.map(|b| b.saturating_sub(self.used))
    }
}

impl Interrupts for TestHost {
    /// The commands here run inside the server loop, never as a job in
    /// the foreground: Ctrl-C stays in stdin.
    fn interrupt(&mut self, _channel: ChannelId) -> bool {
        false
    }
}

/// A command running "inside" the server.
enum Cmd {
    Echo(Vec<u8>),
    Cat { pending: Vec<u8> },
    Sink { count: u64 },
    Exit(u32),
    Yes,
    Unknown(String),
}

impl Cmd {
    fn parse(text: Option<&str>) -> Self {
        let text = text.unwrap_or("").trim();
        let (name, args) = text.split_once(' ').unwrap_or((text, ""));
        match name {
            "echo" => Cmd::Echo(format!("{args}\n").into_bytes()),
            "cat" => Cmd::Cat {
                pending: Vec::new(),
            },
            "sink" => Cmd::Sink { count: 0 },
            "exit" => Cmd::Exit(args.trim().parse().unwrap_or(255)),
            "true" => Cmd::Exit(0),
            "false" => Cmd::Exit(1),
            "yes" => Cmd::Yes,
            _ => Cmd::Unknown(name.to_string()),
        }
    }

    /// Runs a step; returns the exit status when done, and whether it did
    /// anything.
    fn step(
        &mut self,
        ch: ChannelId,
        conn: &mut Connection,
        host: &mut TestHost,
    ) -> (Option<Exit>, bool) {
        let mut buf = [0u8; 16 * 1024];
        match self {
            Cmd::Echo(text) => {
                let n = conn.write(ch, Stream::Stdout, text).unwrap_or(text.len());
                text.drain(..n);
                (text.is_empty().then_some(Exit::Status(0)), n > 0)
            }
            Cmd::Exit(s) => (Some(Exit::Status(*s)), true),
            Cmd::Unknown(name) => {
                let msg = format!("{name}: command not found\n");
                let _ = conn.write(ch, Stream::Stderr, msg.as_bytes());
                (Some(Exit::Status(127)), true)
            }
            Cmd::Yes => {
                let chunk = b"y\n".repeat(4096);
                match conn.write(ch, Stream::Stdout, &chunk) {
                    Ok(n) => (None, n > 0),
                    Err(_) => (Some(Exit::Status(0)), true),
                }
            }
            Cmd::Cat { pending } => {
                let mut did = false;
                loop {
                    if !pending.is_empty() {
                        match conn.write(ch, Stream::Stdout, pending) {
                            Ok(0) => return (None, did),
                            Ok(n) => {
                                pending.drain(..n);
                                did = true;
                                continue;
                            }
                            Err(_) => return (Some(Exit::Status(1)), true),
                        }
                    }
                    match conn.read_stdin(ch, &mut buf, host) {
                        StdinRead::Data(n) => {
                            pending.extend_from_slice(&buf[..n]);
                            did = true;
                        }
                        StdinRead::WouldBlock => return (None, did),
                        StdinRead::Eof | StdinRead::Gone => return (Some(Exit::Status(0)), true),
                    }
                }
            }
            Cmd::Sink { count } => {
                let mut did = false;
                loop {
                    match conn.read_stdin(ch, &mut buf, host) {
                        StdinRead::Data(n) => {
                            *count += n as u64;
                            did = true;
                        }
                        StdinRead::WouldBlock => return (None, did),
                        StdinRead::Eof | StdinRead::Gone => {
                            let out = format!("{count}\n");
                            let _ = conn.write(ch, Stream::Stdout, out.as_bytes());
                            return (Some(Exit::Status(0)), true);
                        }
                    }
                }
            }
        }
    }
}

/// Server settings for a test.
#[derive(Clone)]
pub struct ServerOptions {
    /// Memory the connection may use for channel buffers.
    pub budget: Option<usize>,
    /// The server configuration.
    pub config: Arc<Config>,
    /// Refuse every connection with this message (admission control).
    pub refuse: Option<&'static str>,
}

/// A running test server.
pub struct Server {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// What its commands saw.
    pub stats: Arc<Mutex<Stats>>,
    /// Connections handled so far.
    pub connections: Arc<AtomicUsize>,
}

impl Server {
    /// Starts a server on an ephemeral port; it serves until the test ends.
    pub fn start(opts: ServerOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let stats = Arc::new(Mutex::new(Stats::default()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (s, c) = (stats.clone(), connections.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (o, s, c) = (opts.clone(), s.clone(), c.clone());
                thread::spawn(move || {
                    serve(stream, &o, &s);
                    c.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            port,
            stats,
            connections,
        }
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> Stats {
        self.stats.lock().unwrap().clone()
    }
}

fn serve(mut sock: TcpStream, opts: &ServerOptions, stats: &Mutex<Stats>) {
    sock.set_nonblocking(true).unwrap();
    sock.set_nodelay(true).unwrap();
    let mut host = TestHost {
        start: Instant::now(),
        rng: File::open("/dev/urandom").unwrap(),
        budget: opts.budget,
        used: 0,
    };
    let mut conn = Connection::new(opts.config.clone(), &mut host);
    if let Some(why) = opts.refuse {
        conn.disconnect(why);
    }
    let mut cmds: HashMap<ChannelId, Cmd> = HashMap::new();
    let mut inbuf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut eof = false;
    let deadline = Instant::now() + Duration::from_mins(2);
    let mut last_poll = Instant::now();
    let mut failed = false;
    while Instant::now() < deadline {
        let mut progress = false;
        if pending.is_empty() && !eof {
            match sock.read(&mut inbuf) {
                Ok(0) => {
                    eof = true;
                    conn.close_input();
                }
                Ok(n) => {
                    pending.extend_from_slice(&inbuf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        if !pending.is_empty() || eof {
            match conn.input(&pending, &mut host) {
                Ok(n) => {
                    pending.drain(..n);
                    progress |= n > 0;
                }
                Err(d) => {
                    failed = !d.by_peer;
                }
            }
        }
        if last_poll.elapsed() > Duration::from_millis(500) {
            last_poll = Instant::now();
            if let Err(d) = conn.poll(&mut host) {
                failed = !d.by_peer;
            }
        }
        while let Some(ev) = conn.event() {
            progress = true;
            match ev {
                Event::Start { channel, command } => {
                    cmds.insert(channel, Cmd::parse(command.exec.as_deref()));
                }
                Event::Closed(ch) => {
                    cmds.remove(&ch);
                }
                _ => {}
            }
        }
        progress |= run_commands(&mut cmds, &mut conn, &mut host);
        record(&conn, &mut host, stats);
        let out = conn.output();
        if !out.is_empty() {
            match sock.write(out) {
                Ok(n) => {
                    conn.consume_output(n);
                    progress |= n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        if conn.closed().is_some() && conn.output().is_empty() {
            break;
        }
        if !progress {
            thread::sleep(Duration::from_micros(300));
        }
    }
    if failed {
        stats.lock().unwrap().refused += 1;
    }
    // Half-close, then drain what the peer still sends, so it reads our
    // DISCONNECT instead of a reset.
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_read_timeout(Some(Duration::from_secs(2)));
    while matches!(sock.read(&mut inbuf), Ok(n) if n > 0) {}
}

/// Runs a step of every command; returns whether any did something.
fn run_commands(
    cmds: &mut HashMap<ChannelId, Cmd>,
    conn: &mut Connection,
    host: &mut TestHost,
) -> bool {
    let mut progress = false;
    let ids: Vec<ChannelId> = cmds.keys().copied().collect();
    for ch in ids {
        let (exit, did) = cmds.get_mut(&ch).unwrap().step(ch, conn, host);
        progress |= did;
        if let Some(e) = exit {
            cmds.remove(&ch);
            conn.exit(ch, e);
        }
    }
    progress
}

/// Updates the host's idea of used memory and the high-water marks.
fn record(conn: &Connection, host: &mut TestHost, stats: &Mutex<Stats>) {
    host.used = conn.reserved_bytes();
    let mut s = stats.lock().unwrap();
    s.conn_reserved_max = s.conn_reserved_max.max(host.used);
    for ch in conn.channels() {
        if let Some(st) = conn.stdin_stats(ch) {
            s.stdin_high_water = s.stdin_high_water.max(st.high_water);
            s.stdin_reserved_max = s.stdin_reserved_max.max(st.reserved);
        }
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory.
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "sshd-test-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes an ed25519 key with `ssh-keygen` and returns its private key path
/// and its `authorized_keys` line.
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let st = Proc::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(&key)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public)
}

/// A config accepting `authorized` and a fresh random host key.
pub fn config(authorized: &str) -> Config {
    let mut seed = [0u8; 32];
    File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut seed)
        .unwrap();
    let creds = Credentials {
        authorized_keys: AuthorizedKey::parse_file(authorized),
        password: None,
    };
    assert!(!creds.authorized_keys.is_empty());
    Config::new(HostKey::from_seed(&seed), creds)
}

/// The client options every test uses.
pub const SSH_OPTIONS: &[&str] = &[
    "-F",
    "/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=10",
];

/// Runs `ssh` against the server with `extra` options and `remote`
/// command; `stdin_bytes` zero bytes (or `stdin_data`) are fed to it.
/// Kills it after `timeout`.
pub fn ssh(
    port: u16,
    key: &Path,
    extra: &[&str],
    remote: &str,
    stdin: Input,
    timeout: Duration,
) -> Output {
    let mut cmd = Proc::new("/usr/bin/ssh");
    // `extra` first: for ssh the first value given for an option wins.
    cmd.args(extra)
        .args(SSH_OPTIONS)
        .args(["-p", &port.to_string(), "-i"])
        .arg(key)
        .args(["test@127.0.0.1", remote])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn ssh");
    let mut sin = child.stdin.take().unwrap();
    let feeder = thread::spawn(move || match stdin {
        Input::Null => {}
        Input::Data(d) => {
            let _ = sin.write_all(&d);
        }
        Input::Zeros(mut n) => {
            let chunk = vec![0u8; 64 * 1024];
            while n > 0 {
                let k = n.min(chunk.len());
                if sin.write_all(&chunk[..k]).is_err() {
                    break;
                }
                n -= k;
            }
        }
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let outt = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let errt = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_or_kill(&mut child, timeout, remote);
    let _ = feeder.join();
    Output {
        status,
        stdout: outt.join().unwrap(),
        stderr: errt.join().unwrap(),
    }
}

/// Waits for `child`; kills it and panics, naming `what`, after `timeout`.
fn wait_or_kill(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let st = child.wait().unwrap();
            panic!("{what:?} timed out after {timeout:?} ({st})");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` with stdin closed, collecting its output; kills it and
/// panics after `timeout`.
pub fn run(cmd: &mut Proc, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let outt = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let errt = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_or_kill(&mut child, timeout, &what);
    Output {
        status,
        stdout: outt.join().unwrap(),
        stderr: errt.join().unwrap(),
    }
}

/// What `ssh` reads on its stdin.
pub enum Input {
    /// Nothing: stdin closed at once.
    Null,
    /// These bytes.
    Data(Vec<u8>),
    /// This many zero bytes.
    Zeros(usize),
}
