//! Why a file operation failed. Every variant carries what its message
//! needs, so this module depends on nothing else in `fs`.

use core::fmt;

/// Why a file operation failed; `Display` is one line. Nothing changed.
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
    NoMemory(crate::heap::NoMemory),
    /// The written bytes are not a valid request.
    Invalid(procfs::WriteError),
    /// Not allowed.
    Permission(procfs::PermissionError),
    /// Another session's file.
    NotOwner,
    /// The directory holds as many files as it may.
    NoSpace {
        /// Most files it holds.
        max: usize,
    },
    /// A file name longer than the directory allows.
    NameTooLong {
        /// The longest name, in bytes.
        max: usize,
    },
    /// `/tmp` holds as much data as its size allows.
    TmpFull {
        /// Its size, in bytes.
        size: usize,
    },
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::NotFound => f.write_str("no such file or directory"),
            FsError::IsDirectory => f.write_str("is a directory"),
            FsError::NotDirectory => f.write_str("not a directory"),
            FsError::ReadOnly => f.write_str("read-only file"),
            FsError::NoMemory(why) => write!(f, "{why}"),
            FsError::Invalid(e) => write!(f, "{e}"),
            // The error says "permission denied" itself.
            FsError::Permission(e) => write!(f, "{e}"),
            FsError::NotOwner => f.write_str("permission denied: another session's file"),
            FsError::NoSpace { max } => write!(f, "no space: /tmp holds at most {max} files"),
            FsError::NameTooLong { max } => {
                write!(f, "file name too long ({max} bytes at most)")
            }
            FsError::TmpFull { size } => {
                write!(f, "no space left on /tmp (tmp_size is {size} bytes)")
            }
        }
    }
}
