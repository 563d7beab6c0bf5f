//! procfs through the VFS, from inside a process.

use alloc::string::String;

use quota::Limit;

use super::Test;
use crate::fs::{self, FsError};

pub const TESTS: &[Test] = crate::tests![read_write_and_refuse];

fn check(process: &alloc::sync::Arc<crate::proc::Process>) -> Result<(), String> {
    let read = |path: &str| -> Result<String, String> {
        let bytes = fs::read(process, path).map_err(|e| alloc::format!("read {path}: {e}"))?;
        String::from_utf8(bytes).map_err(|_| "not UTF-8".into())
    };
    let file = read("/proc/self/memquota")?;
    let parsed = procfs::MemquotaFile::parse(&file).map_err(|e| alloc::format!("{e}: {file}"))?;
    crate::ensure!(parsed.pid == process.pid, "pid {} in {file}", parsed.pid);
    fs::write(process, "/proc/self/memquota", b"2M\n")
        .map_err(|e| alloc::format!("write 2M: {e}"))?;
    let max = procfs::find_field(&read("/proc/self/memquota")?, "max").map(String::from);
    crate::ensure!(max.as_deref() == Some("2097152"), "max {max:?}");
    let bad = fs::write(process, "/proc/self/memquota", b"abc");
    crate::ensure!(
        matches!(bad, Err(FsError::Invalid(_))),
        "abc accepted: {bad:?}"
    );
    let max = procfs::find_field(&read("/proc/self/memquota")?, "max").map(String::from);
    crate::ensure!(
        max.as_deref() == Some("2097152"),
        "a bad write changed max to {max:?}"
    );
    let raise = fs::write(process, "/proc/self/memquota", b"3M");
    crate::ensure!(
        matches!(raise, Err(FsError::Permission(_))),
        "a non-root session raised its max: {raise:?}"
    );
    let ro = fs::write(process, "/proc/meminfo", b"1");
    crate::ensure!(
        matches!(ro, Err(FsError::ReadOnly)),
        "meminfo written: {ro:?}"
    );
    let missing = fs::read(process, "/proc/99999/status");
    crate::ensure!(matches!(missing, Err(FsError::NotFound)), "{missing:?}");
    let status = read("/proc/self/status")?;
    crate::ensure!(status.contains("Name:\tktest"), "{status}");
    Ok(())
}

fn read_write_and_refuse() -> Result<(), String> {
    super::process::in_session(Limit::Bytes(4 << 20), check)
}
