//! A minimal VFS: nodes, path resolution and dispatch. The tree is `/`,
//! `/dev/null`, `/proc` (rendered and written by [`proc`](self::proc) with
//! the `procfs` crate) and `/tmp` (files in kernel memory, [`tmp`]). `cat`,
//! `ls`, `rm` and the shell's `>` use it.
//!
//! Reading renders the whole file into a buffer charged to the reader and
//! refused, not forced, over its limit, so a reader at its limit gets an
//! error rather than a kill. Writing a `memquota` file parses the bytes into
//! a typed request and checks permissions before anything changes.

mod error;
mod proc;
mod tmp;

pub use error::FsError;
pub use tmp::{Entry as TmpEntry, Usage as TmpUsage};

/// `/tmp`'s files with their sizes and sessions (`ls -l /tmp`).
pub fn tmp_entries() -> Vec<TmpEntry> {
    tmp::list()
}

/// `/tmp`'s size limit and the bytes its files hold.
pub fn tmp_usage() -> TmpUsage {
    tmp::usage()
}

/// Sets `/tmp`'s size limit (boot parameter `tmp_size`).
pub fn set_tmp_size(bytes: usize) {
    tmp::set_size(bytes);
}
pub use proc::{render_table, set_limit};

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write};

use procfs::{DirEntry, MemquotaWrite, PidFile, ProcPath};

use crate::heap;
use crate::proc::{Pid, Process};

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
        // A failure's reason stays for `heap::NoMemory::last`.
        heap::try_fallible(|| self.0.try_reserve(s.len())).map_err(|_| fmt::Error)?;
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
        return if tmp::valid_name(name) {
            Ok(Node::TmpFile(name))
        } else if name.len() > tmp::MAX_NAME {
            Err(FsError::NameTooLong { max: tmp::MAX_NAME })
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
        crate::proc::find(pid.resolve(caller.pid)).ok_or(FsError::NotFound)?;
    }
    Ok(Node::Proc(resolved))
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
            tmp::read(name, &mut out)?;
            Ok(())
        }
        Node::Proc(p) => proc::render(caller, p, &mut out)?,
    };
    rendered.map_err(|_| FsError::NoMemory(heap::NoMemory::last()))?;
    Ok(out.0)
}

/// Writes `bytes` to a file.
///
/// # Errors
/// An [`FsError`]; on error nothing changed.
pub fn write(caller: &Process, path: &str, bytes: &[u8]) -> Result<(), FsError> {
    match resolve(caller, path)? {
        Node::Null => Ok(()),
        Node::Root | Node::Dev | Node::Tmp => Err(FsError::IsDirectory),
        Node::TmpFile(name) => tmp::append(caller, name, bytes),
        Node::Proc(ProcPath::PidFile(r, PidFile::Memquota)) => {
            let request = MemquotaWrite::parse(bytes).map_err(FsError::Invalid)?;
            let target = proc::target_process(caller, r)?;
            set_limit(caller, &target, request)
        }
        Node::Proc(_) => Err(FsError::ReadOnly),
    }
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
        Node::TmpFile(name) => tmp::create(caller, name),
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
        Node::TmpFile(name) => tmp::remove(caller, name),
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
        Node::Tmp => heap::as_kernel(|| tmp::list().into_iter().map(|e| e.name).collect()),
        Node::Dev => heap::as_kernel(|| ["null"].iter().map(ToString::to_string).collect()),
        Node::Proc(ProcPath::Root) => {
            let pids: Vec<Pid> = crate::proc::list()
                .iter()
                .filter(|p| caller.may_read(p))
                .map(|p| p.pid)
                .collect();
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
