//! `/tmp` through the VFS: files charged to their session, listed, read,
//! bounded in number, and removed without a trace.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use quota::Limit;

use super::Test;
use crate::ensure;
use crate::fs::{self, Buffer, FsError};
use crate::heap::{self, ACCOUNTS};
use crate::proc::Process;

pub const TESTS: &[Test] = crate::tests![
    tmp_files_come_and_go,
    listings_and_the_table,
    tmp_holds_at_most_its_size,
];

fn files(me: &Arc<Process>) -> Result<(), String> {
    let session = me.session.account().id();
    let before = ACCOUNTS.snapshot(session).map_or(0, |a| a.current);
    fs::open_for_write(me, "/tmp/k").map_err(|e| alloc::format!("create: {e}"))?;
    fs::write(me, "/tmp/k", &[7u8; 1000]).map_err(|e| alloc::format!("write: {e}"))?;
    let charged = ACCOUNTS.snapshot(session).map_or(0, |a| a.current);
    ensure!(
        charged >= before + 1000,
        "1000 bytes of file charged {charged} - {before}"
    );
    let names = fs::list(me, "/tmp").map_err(|e| alloc::format!("ls: {e}"))?;
    ensure!(names.iter().any(|n| n == "k"), "ls /tmp: {names:?}");
    drop(names);
    let data = fs::read(me, "/tmp/k").map_err(|e| alloc::format!("read: {e}"))?;
    ensure!(data == [7u8; 1000], "read back {} bytes", data.len());
    drop(data);
    fs::remove(me, "/tmp/k").map_err(|e| alloc::format!("rm: {e}"))?;
    let gone = fs::read(me, "/tmp/k");
    ensure!(matches!(gone, Err(FsError::NotFound)), "after rm: {gone:?}");
    let after = ACCOUNTS.snapshot(session).map_or(0, |a| a.current);
    ensure!(
        after == before,
        "session at {after} after rm, {before} before"
    );

    let mut made = 0;
    let full = loop {
        let name = alloc::format!("/tmp/f{made}");
        match fs::open_for_write(me, &name) {
            Ok(()) => made += 1,
            Err(e) => break e,
        }
        ensure!(made <= 1000, "/tmp never filled up");
    };
    ensure!(
        matches!(full, FsError::NoSpace { max } if max == made),
        "after {made} files: {full}"
    );
    for i in 0..made {
        fs::remove(me, &alloc::format!("/tmp/f{i}")).map_err(|e| alloc::format!("rm: {e}"))?;
    }
    Ok(())
}

fn tmp_files_come_and_go() -> Result<(), String> {
    super::process::in_session(Limit::Bytes(4 << 20), files)?;
    let before = heap::snapshot();
    super::process::in_session(Limit::Bytes(4 << 20), files)?;
    let after = heap::snapshot();
    ensure!(
        after.used == before.used,
        "heap used {} after, {} before",
        after.used,
        before.used
    );
    Ok(())
}

fn listings(me: &Arc<Process>) -> Result<(), String> {
    let root = fs::list(me, "/").map_err(|e| alloc::format!("ls /: {e}"))?;
    ensure!(root.iter().any(|n| n == "proc/"), "ls /: {root:?}");
    let pids = fs::list(me, "/proc").map_err(|e| alloc::format!("ls /proc: {e}"))?;
    let me_listed = alloc::format!("{}/", me.pid);
    ensure!(pids.contains(&me_listed), "ls /proc: {pids:?}");
    let other = OTHER.load(core::sync::atomic::Ordering::SeqCst);
    let other_listed = alloc::format!("{other}/");
    ensure!(
        !pids.contains(&other_listed),
        "another session's pid {other} is listed: {pids:?}"
    );
    let not_dir = fs::list(me, "/dev/null");
    ensure!(matches!(not_dir, Err(FsError::NotDirectory)), "{not_dir:?}");
    let mut table = Buffer(Vec::new());
    fs::render_table(me, &mut table).map_err(|_| String::from("render_table refused"))?;
    let text = core::str::from_utf8(&table.0).map_err(|_| String::from("not UTF-8"))?;
    ensure!(text.contains(" session"), "account table:\n{text}");
    for line in text.lines().skip(1) {
        let sid = line.split_whitespace().nth(3);
        ensure!(
            sid == Some(&*alloc::format!("{}", me.session.sid)),
            "a row not of this session:\n{text}"
        );
    }
    Ok(())
}

static OTHER: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// A non-root session sees only itself: `ls /proc` and the account table
/// leave out another session that is running meanwhile.
fn listings_and_the_table() -> Result<(), String> {
    let other = super::process::start_sleeper_session(1)?;
    OTHER.store(other.pid, core::sync::atomic::Ordering::SeqCst);
    let outcome = super::process::in_session(Limit::Unlimited, listings);
    crate::proc::wait_exit(&other);
    outcome
}

fn tmp_size(me: &Arc<Process>) -> Result<(), String> {
    let before = fs::tmp_usage();
    fs::set_tmp_size(before.used + 4096);
    let outcome = (|| {
        fs::open_for_write(me, "/tmp/sized").map_err(|e| alloc::format!("create: {e}"))?;
        fs::write(me, "/tmp/sized", &[1u8; 3000]).map_err(|e| alloc::format!("write: {e}"))?;
        let full = fs::write(me, "/tmp/sized", &[1u8; 2000]);
        ensure!(
            matches!(full, Err(FsError::TmpFull { size }) if size == before.used + 4096),
            "past tmp_size: {full:?}"
        );
        let usage = fs::tmp_usage();
        ensure!(
            usage.used > before.used && usage.used <= usage.size,
            "usage {} of {}",
            usage.used,
            usage.size
        );
        let entries = fs::tmp_entries();
        let entry = entries
            .iter()
            .find(|e| e.name == "sized")
            .ok_or("not listed")?;
        ensure!(
            entry.len == 3000 && entry.sid == me.session.sid && !entry.ended,
            "entry {} bytes, session {}, ended {}",
            entry.len,
            entry.sid,
            entry.ended
        );
        Ok(())
    })();
    let _ = fs::remove(me, "/tmp/sized");
    fs::set_tmp_size(before.size);
    ensure!(fs::tmp_usage().used == before.used, "usage not back");
    outcome
}

/// `/tmp` refuses data past its size, and lists each file's session.
fn tmp_holds_at_most_its_size() -> Result<(), String> {
    super::process::in_session(Limit::Unlimited, tmp_size)
}
