//! `/tmp`: a flat directory of files kept in kernel memory.
//!
//! A file's data is charged to the account of the session that created it,
//! and reserved fallibly: a write that would take the session over its
//! limit fails with an error and changes nothing. The file holds its
//! session (and so its account) until it is removed, so file data can never
//! be used to take kernel memory without paying for it, and a session's
//! account is released only once its files are gone. The directory itself
//! (names, bookkeeping) is the kernel's, bounded by [`MAX_FILES`].

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

static FILES: IrqMutex<BTreeMap<String, File>> = IrqMutex::new(BTreeMap::new());

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
    let mut files = FILES.lock();
    if let Some(file) = files.get_mut(name) {
        may_write(caller, file)?;
        let old = core::mem::take(&mut file.data);
        drop(files);
        drop(old);
        return Ok(());
    }
    if files.len() >= MAX_FILES {
        return Err(FsError::NoSpace { max: MAX_FILES });
    }
    let file = File {
        data: Vec::new(),
        session: caller.session.clone(),
    };
    heap::as_kernel(|| files.insert(name.to_string(), file));
    Ok(())
}

/// Appends `bytes` to `name`, charged to the file's session.
///
/// # Errors
/// [`FsError::NotFound`], [`FsError::NotOwner`], or [`FsError::NoMemory`]
/// when the session's account refuses the bytes (the file is unchanged).
pub fn append(caller: &Process, name: &str, bytes: &[u8]) -> Result<(), FsError> {
    let mut files = FILES.lock();
    let file = files.get_mut(name).ok_or(FsError::NotFound)?;
    may_write(caller, file)?;
    let session = file.session.clone();
    // Amortised growth only: a file that stops growing leaves the session
    // headroom (up to its own size) for the shell to remove it.
    heap::charge_to(session.account(), || {
        heap::fallible(|| file.data.try_reserve(bytes.len()))
    })
    .map_err(|_| FsError::NoMemory)?;
    file.data.extend_from_slice(bytes);
    Ok(())
}

/// Copies `name` into `out` (charged to the reader, fallibly).
///
/// # Errors
/// [`FsError::NotFound`], or [`FsError::NoMemory`] if the reader cannot
/// afford the copy.
pub fn read(name: &str, out: &mut Buffer) -> Result<(), FsError> {
    let files = FILES.lock();
    let file = files.get(name).ok_or(FsError::NotFound)?;
    heap::fallible(|| out.0.try_reserve(file.data.len())).map_err(|_| FsError::NoMemory)?;
    out.0.extend_from_slice(&file.data);
    Ok(())
}

/// Removes `name`; its bytes are credited back to its session.
///
/// # Errors
/// [`FsError::NotFound`] or [`FsError::NotOwner`].
pub fn remove(caller: &Process, name: &str) -> Result<(), FsError> {
    let mut files = FILES.lock();
    may_write(caller, files.get(name).ok_or(FsError::NotFound)?)?;
    let removed = files.remove(name);
    drop(files);
    drop(removed);
    Ok(())
}

/// The files' names and sizes, in name order.
pub fn list() -> Vec<(String, usize)> {
    let files = FILES.lock();
    heap::as_kernel(|| {
        files
            .iter()
            .map(|(n, f)| (n.clone(), f.data.len()))
            .collect()
    })
}
