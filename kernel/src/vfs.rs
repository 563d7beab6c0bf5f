//! A minimal VFS: `/`, `/proc` (rendered by the `procfs` crate from
//! snapshots), `/tmp` (files in kernel memory, see [`crate::ramfs`]) and
//! `/dev/null`. `cat`, `ls`, `rm` and the shell's `>` use it.
//!
//! Reading renders the whole file into a buffer charged to the reader and
//! refused, not forced, over its limit, so a reader at its limit gets an
//! error rather than a kill. Writing a `memquota` file parses the bytes into
//! a typed request and checks permissions before anything changes.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use procfs::{
    AccountRow, AccountTableView, Caller, CmdlineView, DirEntry, LimitKind, MeminfoView,
    MemquotaView, PidFile, ProcPath, SetLimit, StatusView, Target,
};
use quota::AccountFlags;

use crate::heap::{self, ACCOUNTS};
use crate::proc::{self, Pid, ProcState, Process};

/// Why a file operation failed; `Display` is one line.
#[derive(Debug)]
pub enum FsError {
    /// No such file or directory.
    NotFound,
    /// A directory where a file was needed.
    IsDirectory,
    /// A file where a directory was needed.
    NotDirectory,
    /// The file cannot be written.
    ReadOnly,
    /// The buffer for the file could not be charged.
    NoMemory,
    /// The written bytes are not a valid request.
    Invalid(procfs::WriteError),
    /// Not allowed.
    Permission(procfs::PermissionError),
    /// Another session's file.
    NotOwner,
    /// The directory is full.
    NoSpace,
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::NotFound => f.write_str("no such file or directory"),
            FsError::IsDirectory => f.write_str("is a directory"),
            FsError::NotDirectory => f.write_str("not a directory"),
            FsError::ReadOnly => f.write_str("read-only file"),
            FsError::NoMemory => f.write_str("cannot allocate memory (over the limit)"),
            FsError::Invalid(e) => write!(f, "{e}"),
            FsError::Permission(e) => write!(f, "permission denied: {e}"),
            FsError::NotOwner => f.write_str("permission denied: another session's file"),
            FsError::NoSpace => write!(
                f,
                "no space: /tmp holds at most {} files",
                crate::ramfs::MAX_FILES
            ),
        }
    }
}

/// A node of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node<'p> {
    /// `/`.
    Root,
    /// `/dev`.
    Dev,
    /// `/dev/null`.
    Null,
    /// `/tmp`.
    Tmp,
    /// A file name under `/tmp` (which may not exist yet).
    TmpFile(&'p str),
    /// Something under `/proc`, with `self` resolved.
    Proc(ProcPath),
}

/// A growable buffer whose growth is charged fallibly: `fmt::Error` when
/// the reader's account refuses it.
pub struct Buffer(pub Vec<u8>);

impl Write for Buffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        heap::fallible(|| self.0.try_reserve(s.len())).map_err(|_| fmt::Error)?;
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Resolves `path` for `caller`.
///
/// # Errors
/// [`FsError::NotFound`] for paths that name nothing.
pub fn resolve<'p>(caller: &Process, path: &'p str) -> Result<Node<'p>, FsError> {
    let trimmed = path.trim_end_matches('/');
    match trimmed {
        "" => return Ok(Node::Root),
        "/dev" => return Ok(Node::Dev),
        "/dev/null" => return Ok(Node::Null),
        "/tmp" => return Ok(Node::Tmp),
        _ => {}
    }
    if let Some(name) = path.strip_prefix("/tmp/") {
        return if crate::ramfs::valid_name(name) {
            Ok(Node::TmpFile(name))
        } else {
            Err(FsError::NotFound)
        };
    }
    let parsed = ProcPath::parse(path).map_err(|_| FsError::NotFound)?;
    let resolved = match parsed {
        ProcPath::PidDir(r) => ProcPath::PidDir(procfs::PidRef::Pid(r.resolve(caller.pid))),
        ProcPath::PidFile(r, file) => {
            ProcPath::PidFile(procfs::PidRef::Pid(r.resolve(caller.pid)), file)
        }
        other => other,
    };
    if let Some(pid) = resolved.pid() {
        proc::find(pid.resolve(caller.pid)).ok_or(FsError::NotFound)?;
    }
    Ok(Node::Proc(resolved))
}

fn caller_of(p: &Process) -> Caller {
    Caller {
        root: p.session.root,
        sid: p.session.sid,
    }
}

fn target_of(p: &Process) -> Target {
    let session_max = ACCOUNTS
        .snapshot(p.session.account().id())
        .map_or(quota::Limit::Unlimited, |s| s.max);
    Target {
        pid: p.pid,
        sid: p.session.sid,
        session_account: p.is_leader(),
        session_max,
    }
}

fn target_process(caller: &Process, pid_ref: procfs::PidRef) -> Result<Arc<Process>, FsError> {
    proc::find(pid_ref.resolve(caller.pid)).ok_or(FsError::NotFound)
}

/// Reads a whole file.
///
/// # Errors
/// An [`FsError`]; nothing is charged on failure.
pub fn read(caller: &Process, path: &str) -> Result<Vec<u8>, FsError> {
    let mut out = Buffer(Vec::new());
    let rendered = match resolve(caller, path)? {
        Node::Root | Node::Dev | Node::Tmp => return Err(FsError::IsDirectory),
        Node::Null => Ok(()),
        Node::TmpFile(name) => {
            crate::ramfs::read(name, &mut out)?;
            Ok(())
        }
        Node::Proc(p) => render(caller, p, &mut out)?,
    };
    rendered.map_err(|_| FsError::NoMemory)?;
    Ok(out.0)
}

fn render(caller: &Process, path: ProcPath, out: &mut Buffer) -> Result<fmt::Result, FsError> {
    Ok(match path {
        ProcPath::Root | ProcPath::PidDir(_) => return Err(FsError::IsDirectory),
        ProcPath::Meminfo => write!(out, "{}", MeminfoView(heap::snapshot())),
        ProcPath::Cmdline => write!(out, "{}", CmdlineView(crate::cmdline::raw())),
        ProcPath::Memquota => render_table(out),
        ProcPath::PidFile(r, PidFile::Status) => {
            let p = target_process(caller, r)?;
            procfs::check_read(caller_of(caller), target_of(&p)).map_err(FsError::Permission)?;
            let state = match p.state() {
                ProcState::Live if p.pid == caller.pid => procfs::ProcState::Running,
                ProcState::Live => procfs::ProcState::Blocked,
                ProcState::Exited(_) => procfs::ProcState::Zombie,
            };
            let view = StatusView {
                name: &p.name,
                state,
                pid: p.pid,
                ppid: p.ppid,
                sid: p.session.sid,
            };
            write!(out, "{view}")
        }
        ProcPath::PidFile(r, PidFile::Memquota) => {
            let p = target_process(caller, r)?;
            procfs::check_read(caller_of(caller), target_of(&p)).map_err(FsError::Permission)?;
            let (Some(process), Some(session)) = (
                p.account_snapshot(),
                ACCOUNTS.snapshot(p.session.account().id()),
            ) else {
                return Err(FsError::NotFound);
            };
            write!(
                out,
                "{}",
                MemquotaView {
                    pid: p.pid,
                    sid: p.session.sid,
                    process,
                    session
                }
            )
        }
    })
}

/// Renders the account table (`/proc/memquota`, the `memquota` command).
///
/// Its working memory is charged to the reader and reserved fallibly: a
/// reader at its limit gets `fmt::Error`, not a kill.
pub fn render_table(out: &mut impl Write) -> fmt::Result {
    let kernel = heap::kernel_account().id();
    let users = heap::users_account().id();
    // Room for the accounts now and a few created meanwhile; `take` keeps
    // the vectors from growing (infallibly) past what was reserved.
    let room = ACCOUNTS.snapshots().count() + 8;
    let mut snaps: Vec<quota::AccountSnapshot> = Vec::new();
    let mut rows: Vec<AccountRow<'_>> = Vec::new();
    heap::fallible(|| {
        snaps
            .try_reserve_exact(room)
            .and_then(|()| rows.try_reserve_exact(room))
    })
    .map_err(|_| fmt::Error)?;
    snaps.extend(ACCOUNTS.snapshots().take(room));
    rows.extend(snaps.iter().map(|a| {
        let (pid, sid) = proc::owner_of(a.tag);
        let owned = a.tag != 0;
        let label = if a.id == quota::AccountId::ROOT {
            "root"
        } else if a.id == kernel || a.flags.contains(AccountFlags::KERNEL) {
            "kernel"
        } else if a.id == users {
            "users"
        } else if owned && pid == sid {
            "session"
        } else {
            "process"
        };
        AccountRow {
            account: *a,
            pid: owned.then_some(pid),
            sid: owned.then_some(sid),
            label,
        }
    }));
    write!(out, "{}", AccountTableView { rows: &rows })
}

/// Writes `bytes` to a file.
///
/// # Errors
/// An [`FsError`]; on error nothing changed.
pub fn write(caller: &Process, path: &str, bytes: &[u8]) -> Result<(), FsError> {
    match resolve(caller, path)? {
        Node::Null => Ok(()),
        Node::Root | Node::Dev | Node::Tmp => Err(FsError::IsDirectory),
        Node::TmpFile(name) => crate::ramfs::append(caller, name, bytes),
        Node::Proc(ProcPath::PidFile(r, PidFile::Memquota)) => {
            let request = SetLimit::parse(bytes).map_err(FsError::Invalid)?;
            let target = target_process(caller, r)?;
            set_limit(caller, &target, request)
        }
        Node::Proc(_) => Err(FsError::ReadOnly),
    }
}

/// Applies a limit request to `target` on behalf of `caller`.
///
/// # Errors
/// [`FsError::Permission`] if the rules forbid it.
pub fn set_limit(caller: &Process, target: &Process, request: SetLimit) -> Result<(), FsError> {
    let ok = procfs::check_write(caller_of(caller), target_of(target), request)
        .map_err(FsError::Permission)?
        .request();
    let id = target.account_id();
    let result = match ok.kind() {
        LimitKind::Max => ACCOUNTS.set_max(id, ok.limit()),
        LimitKind::High => ACCOUNTS.set_high(id, ok.limit()),
    };
    result.map_err(|_| FsError::NotFound)
}

/// Opens `path` for writing by `caller`, as the shell's `>` does before a
/// command runs (so its errors come first): a `/tmp` file is created or
/// emptied; a `memquota` file or `/dev/null` is checked.
///
/// # Errors
/// As [`write`] would fail to find or write the file.
pub fn open_for_write(caller: &Process, path: &str) -> Result<(), FsError> {
    match resolve(caller, path)? {
        Node::Null | Node::Proc(ProcPath::PidFile(_, PidFile::Memquota)) => Ok(()),
        Node::TmpFile(name) => crate::ramfs::create(caller, name),
        Node::Root | Node::Dev | Node::Tmp => Err(FsError::IsDirectory),
        Node::Proc(_) => Err(FsError::ReadOnly),
    }
}

/// Removes a file.
///
/// # Errors
/// [`FsError::NotFound`], [`FsError::NotOwner`], or [`FsError::ReadOnly`]
/// for anything but a `/tmp` file.
pub fn remove(caller: &Process, path: &str) -> Result<(), FsError> {
    match resolve(caller, path)? {
        Node::TmpFile(name) => crate::ramfs::remove(caller, name),
        Node::Root | Node::Dev | Node::Tmp => Err(FsError::IsDirectory),
        _ => Err(FsError::ReadOnly),
    }
}

/// The names in a directory, directories marked with a trailing `/`.
///
/// # Errors
/// [`FsError::NotFound`] or [`FsError::NotDirectory`].
pub fn list(caller: &Process, path: &str) -> Result<Vec<String>, FsError> {
    let entries: Vec<String> = match resolve(caller, path)? {
        Node::Root => heap::as_kernel(|| {
            ["dev/", "proc/", "tmp/"]
                .iter()
                .map(ToString::to_string)
                .collect()
        }),
        Node::Tmp => heap::as_kernel(|| {
            crate::ramfs::list()
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        }),
        Node::Dev => heap::as_kernel(|| ["null"].iter().map(ToString::to_string).collect()),
        Node::Proc(ProcPath::Root) => {
            let pids: Vec<Pid> = proc::list().iter().map(|p| p.pid).collect();
            name_all(procfs::root_entries(pids))
        }
        Node::Proc(ProcPath::PidDir(_)) => name_all(procfs::pid_entries()),
        Node::Null | Node::TmpFile(_) | Node::Proc(_) => return Err(FsError::NotDirectory),
    };
    Ok(entries)
}

fn name_all(entries: impl Iterator<Item = DirEntry>) -> Vec<String> {
    heap::as_kernel(|| {
        entries
            .map(|e| {
                if e.is_dir() {
                    alloc::format!("{e}/")
                } else {
                    alloc::format!("{e}")
                }
            })
            .collect()
    })
}
