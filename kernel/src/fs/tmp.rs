//! `/tmp`: a flat directory of files kept in kernel memory.
//!
//! A file's data is charged to the account of the session that created it,
//! and reserved fallibly: a write that would take the session over its
//! limit fails with an error and changes nothing. The file holds its
//! session (and so its account) until it is removed, so file data can never
//! be used to take kernel memory without paying for it, and a session's
//! account is released only once its files are gone, which may be after
//! the session ended: such files stay charged and listed (`ls -l` names
//! their session and says it ended) until root or their session removes
//! them. The directory itself (names, bookkeeping) is the kernel's, bounded
//! by [`MAX_FILES`].
//!
//! Like Linux tmpfs's `size=`, `/tmp` holds at most a boot parameter's
//! worth of file data (`tmp_size`, shown in `/proc/meminfo`): counted as
//! the bytes reserved for the files' data, so it bounds what files can
//! hold in the heap, not just what they say they hold.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Buffer, FsError};
use crate::heap;
use crate::proc::{Process, Session};
use crate::sync::IrqMutex;

/// Most files `/tmp` holds.
pub const MAX_FILES: usize = 64;
/// Longest file name, in bytes.
pub const MAX_NAME: usize = 64;

struct File {
    data: Vec<u8>,
    session: Arc<Session>,
}

struct Dir {
    files: BTreeMap<String, File>,
    /// Bytes reserved for file data (the files' capacities).
    used: usize,
    /// Most bytes of file data (`tmp_size`).
    size: usize,
}

static DIR: IrqMutex<Dir> = IrqMutex::new(Dir {
    files: BTreeMap::new(),
    used: 0,
    size: usize::MAX,
});

/// Sets the most bytes of file data `/tmp` holds (at boot).
pub fn set_size(bytes: usize) {
    DIR.lock().size = bytes;
}

/// `/tmp`'s size limit and the bytes its files hold.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// Most bytes of file data.
    pub size: usize,
    /// Bytes reserved for file data now.
    pub used: usize,
}

/// The size limit and what is used.
pub fn usage() -> Usage {
    let dir = DIR.lock();
    Usage {
        size: dir.size,
        used: dir.used,
    }
}

/// One file, as `ls -l` shows it.
pub struct Entry {
    /// Its name.
    pub name: String,
    /// Bytes of data.
    pub len: usize,
    /// The session it is charged to.
    pub sid: u32,
    /// Whether that session has ended.
    pub ended: bool,
}

/// Whether `name` may name a file: 1 to [`MAX_NAME`] printable bytes, no `/`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
        && name != "."
        && name != ".."
}

fn may_write(caller: &Process, file: &File) -> Result<(), FsError> {
    if caller.session.root || Arc::ptr_eq(&caller.session, &file.session) {
        Ok(())
    } else {
        Err(FsError::NotOwner)
    }
}

/// Creates `name` empty, or empties it if it exists (the shell's `>`).
///
/// # Errors
/// [`FsError::NotOwner`] for another session's file, [`FsError::NoSpace`]
/// when [`MAX_FILES`] exist.
pub fn create(caller: &Process, name: &str) -> Result<(), FsError> {
    let mut dir = DIR.lock();
    let dir = &mut *dir;
    if let Some(file) = dir.files.get_mut(name) {
        may_write(caller, file)?;
        let old = core::mem::take(&mut file.data);
        dir.used -= old.capacity();
        drop(old);
        return Ok(());
    }
    if dir.files.len() >= MAX_FILES {
        return Err(FsError::NoSpace { max: MAX_FILES });
    }
    let file = File {
        data: Vec::new(),
        session: caller.session.clone(),
    };
    heap::as_kernel(|| dir.files.insert(name.to_string(), file));
    Ok(())
}

/// Appends `bytes` to `name`, charged to the file's session.
///
/// # Errors
/// [`FsError::NotFound`], [`FsError::NotOwner`], [`FsError::TmpFull`] when
/// `/tmp` would hold more than its size, or [`FsError::NoMemory`] when the
/// session's account refuses the bytes (the file is unchanged).
pub fn append(caller: &Process, name: &str, bytes: &[u8]) -> Result<(), FsError> {
    let mut dir = DIR.lock();
    let dir = &mut *dir;
    let file = dir.files.get_mut(name).ok_or(FsError::NotFound)?;
    may_write(caller, file)?;
    let (len, capacity) = (file.data.len(), file.data.capacity());
    let need = len
        .checked_add(bytes.len())
        .ok_or(FsError::NoMemory(heap::NoMemory::unexplained()))?;
    if need > capacity {
        // Amortised growth, capped by the room left in /tmp: a file that
        // stops growing leaves the session headroom (up to its own size)
        // for the shell to remove it.
        let room = dir.size.saturating_sub(dir.used - capacity);
        if need > room {
            return Err(FsError::TmpFull { size: dir.size });
        }
        let want = need.max(capacity.saturating_mul(2)).min(room);
        let session = file.session.clone();
        heap::charge_to(session.account(), || {
            heap::try_fallible(|| file.data.try_reserve_exact(want - len))
        })
        .map_err(FsError::NoMemory)?;
        dir.used = dir.used - capacity + file.data.capacity();
    }
    file.data.extend_from_slice(bytes);
    Ok(())
}

/// Copies `name` into `out` (charged to the reader, fallibly).
///
/// # Errors
/// [`FsError::NotFound`], or [`FsError::NoMemory`] if the reader cannot
/// afford the copy.
pub fn read(name: &str, out: &mut Buffer) -> Result<(), FsError> {
    let dir = DIR.lock();
    let file = dir.files.get(name).ok_or(FsError::NotFound)?;
    heap::try_fallible(|| out.0.try_reserve(file.data.len())).map_err(FsError::NoMemory)?;
    out.0.extend_from_slice(&file.data);
    Ok(())
}

/// Removes `name`; its bytes are credited back to its session.
///
/// # Errors
/// [`FsError::NotFound`] or [`FsError::NotOwner`].
pub fn remove(caller: &Process, name: &str) -> Result<(), FsError> {
    let mut dir = DIR.lock();
    may_write(caller, dir.files.get(name).ok_or(FsError::NotFound)?)?;
    let removed = dir.files.remove(name);
    dir.used -= removed.as_ref().map_or(0, |f| f.data.capacity());
    // An empty map may keep its root node: drop it, so that /tmp with no
    // files holds no memory at all.
    let emptied = dir
        .files
        .is_empty()
        .then(|| core::mem::take(&mut dir.files));
    drop(dir);
    drop(removed);
    drop(emptied);
    Ok(())
}

/// The files, in name order.
pub fn list() -> Vec<Entry> {
    let dir = DIR.lock();
    heap::as_kernel(|| {
        dir.files
            .iter()
            .map(|(name, f)| Entry {
                name: name.clone(),
                len: f.data.len(),
                sid: f.session.sid,
                ended: f.session.ended(),
            })
            .collect()
    })
}
