//! Paths under `/proc`, parsed into a [`ProcPath`], and directory listings.
//!
//! The tree:
//!
//! ```text
//! /proc                 directory: the entries of `root_entries`
//! /proc/meminfo         the heap        (read)
//! /proc/memquota        all accounts    (read)
//! /proc/cmdline         the kernel's command line (read)
//! /proc/<pid>           directory: memquota, status
//! /proc/<pid>/memquota  the process's account  (read, write)
//! /proc/<pid>/status    name, state, pids      (read)
//! /proc/self[/...]      the same, for the calling process
//! ```
//!
//! Parsing is syntactic: `<pid>` is a decimal `u32` without sign or leading
//! zeros (`0` itself is allowed), and whether that process exists is for the
//! kernel to say. `self` is kept as [`PidRef::SelfRef`] for the kernel to
//! resolve to the caller's pid. Repeated and trailing slashes are ignored
//! (`/proc//1/` is `/proc/1`); `.` and `..` are not interpreted (the VFS
//! normalizes first) and so are not found. Anything else is [`NotFound`].
//! `Display` gives the canonical path, which parses back to the same value.

use core::fmt;

/// Which process a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PidRef {
    /// `self`: the process making the request.
    SelfRef,
    /// A pid.
    Pid(u32),
}

impl PidRef {
    /// The pid, with `self` resolved to `caller`.
    pub const fn resolve(self, caller: u32) -> u32 {
        match self {
            PidRef::SelfRef => caller,
            PidRef::Pid(pid) => pid,
        }
    }
}

impl fmt::Display for PidRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidRef::SelfRef => f.write_str("self"),
            PidRef::Pid(pid) => write!(f, "{pid}"),
        }
    }
}

/// A file in a `/proc/<pid>` directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PidFile {
    /// `memquota`: the process's account; writable.
    Memquota,
    /// `status`: name, state and pids.
    Status,
}

impl PidFile {
    /// The file's name.
    pub const fn name(self) -> &'static str {
        match self {
            PidFile::Memquota => "memquota",
            PidFile::Status => "status",
        }
    }
}

/// A path under `/proc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcPath {
    /// `/proc`.
    Root,
    /// `/proc/<pid>` or `/proc/self`.
    PidDir(PidRef),
    /// `/proc/<pid>/<file>`.
    PidFile(PidRef, PidFile),
    /// `/proc/meminfo`.
    Meminfo,
    /// `/proc/memquota`.
    Memquota,
    /// `/proc/cmdline`.
    Cmdline,
}

/// The path names nothing under `/proc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NotFound;

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no such file or directory")
    }
}

impl core::error::Error for NotFound {}

impl ProcPath {
    /// Parses an absolute path.
    ///
    /// # Errors
    /// [`NotFound`] unless it is `/proc`, `/proc/meminfo`, `/proc/memquota`,
    /// `/proc/cmdline`, `/proc/<pid>` or `/proc/<pid>/{memquota,status}`,
    /// with `self` allowed for `<pid>`.
    pub fn parse(path: &str) -> Result<Self, NotFound> {
        let mut parts = path
            .strip_prefix('/')
            .ok_or(NotFound)?
            .split('/')
            .filter(|p| !p.is_empty());
        if parts.next() != Some("proc") {
            return Err(NotFound);
        }
        let parsed = match parts.next() {
            None => ProcPath::Root,
            Some("meminfo") => ProcPath::Meminfo,
            Some("memquota") => ProcPath::Memquota,
            Some("cmdline") => ProcPath::Cmdline,
            Some(pid) => {
                let pid = parse_pid(pid)?;
                match parts.next() {
                    None => ProcPath::PidDir(pid),
                    Some("memquota") => ProcPath::PidFile(pid, PidFile::Memquota),
                    Some("status") => ProcPath::PidFile(pid, PidFile::Status),
                    Some(_) => return Err(NotFound),
                }
            }
        };
        match parts.next() {
            None => Ok(parsed),
            Some(_) => Err(NotFound),
        }
    }

    /// Whether the path is a directory.
    pub const fn is_dir(self) -> bool {
        matches!(self, ProcPath::Root | ProcPath::PidDir(_))
    }

    /// Whether the file may be written (only `/proc/<pid>/memquota`).
    pub const fn is_writable(self) -> bool {
        matches!(self, ProcPath::PidFile(_, PidFile::Memquota))
    }

    /// The process the path is about, if any.
    pub const fn pid(self) -> Option<PidRef> {
        match self {
            ProcPath::PidDir(pid) | ProcPath::PidFile(pid, _) => Some(pid),
            _ => None,
        }
    }
}

impl fmt::Display for ProcPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("/proc")?;
        match self {
            ProcPath::Root => Ok(()),
            ProcPath::PidDir(pid) => write!(f, "/{pid}"),
            ProcPath::PidFile(pid, file) => write!(f, "/{pid}/{}", file.name()),
            ProcPath::Meminfo => f.write_str("/meminfo"),
            ProcPath::Memquota => f.write_str("/memquota"),
            ProcPath::Cmdline => f.write_str("/cmdline"),
        }
    }
}

fn parse_pid(s: &str) -> Result<PidRef, NotFound> {
    if s == "self" {
        return Ok(PidRef::SelfRef);
    }
    let canonical = s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return Err(NotFound);
    }
    s.parse().map(PidRef::Pid).map_err(|_| NotFound)
}

/// One name in a `/proc` directory listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DirEntry {
    /// A process's directory, named by its pid.
    Pid(u32),
    /// `self`, a directory.
    SelfDir,
    /// A file, by name.
    File(&'static str),
}

impl DirEntry {
    /// Whether the entry is a directory.
    pub const fn is_dir(self) -> bool {
        matches!(self, DirEntry::Pid(_) | DirEntry::SelfDir)
    }
}

impl fmt::Display for DirEntry {
    /// The entry's name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirEntry::Pid(pid) => write!(f, "{pid}"),
            DirEntry::SelfDir => f.write_str("self"),
            DirEntry::File(name) => f.write_str(name),
        }
    }
}

/// The fixed entries of `/proc`, listed before the pids.
const ROOT_FIXED: [DirEntry; 4] = [
    DirEntry::SelfDir,
    DirEntry::File("meminfo"),
    DirEntry::File("memquota"),
    DirEntry::File("cmdline"),
];

/// The listing of `/proc`: `self`, `meminfo`, `memquota`, `cmdline`, then
/// one directory per pid in `pids`, in the order given.
pub fn root_entries<I>(pids: I) -> impl Iterator<Item = DirEntry>
where
    I: IntoIterator<Item = u32>,
{
    ROOT_FIXED
        .into_iter()
        .chain(pids.into_iter().map(DirEntry::Pid))
}

/// The listing of `/proc/<pid>`: `memquota`, `status`.
pub fn pid_entries() -> impl Iterator<Item = DirEntry> {
    [PidFile::Memquota, PidFile::Status]
        .into_iter()
        .map(|f| DirEntry::File(f.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> ProcPath {
        ProcPath::parse(s).unwrap()
    }

    #[test]
    fn top_level_paths() {
        assert_eq!(ok("/proc"), ProcPath::Root);
        assert_eq!(ok("/proc/"), ProcPath::Root);
        assert_eq!(ok("/proc/meminfo"), ProcPath::Meminfo);
        assert_eq!(ok("/proc/memquota"), ProcPath::Memquota);
        assert_eq!(ok("/proc/cmdline"), ProcPath::Cmdline);
    }

    #[test]
    fn pid_paths() {
        let p = PidRef::Pid(42);
        assert_eq!(ok("/proc/42"), ProcPath::PidDir(p));
        assert_eq!(ok("/proc/42/"), ProcPath::PidDir(p));
        assert_eq!(
            ok("/proc/42/memquota"),
            ProcPath::PidFile(p, PidFile::Memquota)
        );
        assert_eq!(ok("/proc/42/status"), ProcPath::PidFile(p, PidFile::Status));
        assert_eq!(ok("/proc/0"), ProcPath::PidDir(PidRef::Pid(0)));
        assert_eq!(
            ok("/proc/4294967295"),
            ProcPath::PidDir(PidRef::Pid(u32::MAX))
        );
    }

    #[test]
    fn self_paths_are_kept_for_the_kernel_to_resolve() {
        let s = PidRef::SelfRef;
        assert_eq!(ok("/proc/self"), ProcPath::PidDir(s));
        assert_eq!(
            ok("/proc/self/memquota"),
            ProcPath::PidFile(s, PidFile::Memquota)
        );
        assert_eq!(
            ok("/proc/self/status"),
            ProcPath::PidFile(s, PidFile::Status)
        );
        assert_eq!(s.resolve(9), 9);
        assert_eq!(PidRef::Pid(4).resolve(9), 4);
    }

    #[test]
    fn repeated_slashes_are_ignored() {
        assert_eq!(
            ok("//proc//7///status/"),
            ProcPath::PidFile(PidRef::Pid(7), PidFile::Status)
        );
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for s in [
            "",
            "proc",
            "/",
            "/pro",
            "/procx",
            "/sys/proc",
            "/proc/foo",
            "/proc/-1",
            "/proc/+1",
            "/proc/01",
            "/proc/4294967296",
            "/proc/1/foo",
            "/proc/1/memquota/x",
            "/proc/self/self",
            "/proc/meminfo/x",
            "/proc/./1",
            "/proc/1/../2",
            "/proc/ 1",
        ] {
            assert_eq!(ProcPath::parse(s), Err(NotFound), "{s:?}");
        }
    }

    #[test]
    fn kinds_of_paths() {
        assert!(ok("/proc").is_dir());
        assert!(ok("/proc/self").is_dir());
        assert!(!ok("/proc/meminfo").is_dir());
        assert!(ok("/proc/3/memquota").is_writable());
        assert!(!ok("/proc/3/status").is_writable());
        assert!(!ok("/proc/memquota").is_writable());
        assert_eq!(ok("/proc/3/status").pid(), Some(PidRef::Pid(3)));
        assert_eq!(ok("/proc/cmdline").pid(), None);
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(ok("//proc/7/").to_string(), "/proc/7");
        assert_eq!(ok("/proc/self/memquota").to_string(), "/proc/self/memquota");
        assert_eq!(ok("/proc/").to_string(), "/proc");
    }

    #[test]
    fn root_listing_has_fixed_entries_then_pids() {
        let names: Vec<String> = root_entries([1, 5, 12]).map(|e| e.to_string()).collect();
        assert_eq!(
            names,
            ["self", "meminfo", "memquota", "cmdline", "1", "5", "12"]
        );
        let dirs: Vec<bool> = root_entries([1]).map(DirEntry::is_dir).collect();
        assert_eq!(dirs, [true, false, false, false, true]);
    }

    #[test]
    fn every_listed_name_parses() {
        for e in root_entries([3]) {
            let p = ok(&format!("/proc/{e}"));
            assert_eq!(p.is_dir(), e.is_dir());
        }
        for e in pid_entries() {
            assert!(!ok(&format!("/proc/3/{e}")).is_dir());
        }
    }

    #[test]
    fn pid_listing() {
        let names: Vec<String> = pid_entries().map(|e| e.to_string()).collect();
        assert_eq!(names, ["memquota", "status"]);
    }
}
