//! `memquota`: the account table, one process's quota, or setting limits.

use procfs::{LimitKind, MemquotaWrite, SetLimit};

use crate::fs::{self, Buffer};
use crate::heap;
use crate::proc;
use crate::shell::ctx::{Abort, Ctx};

pub(super) fn memquota(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    let owned = ctx.args.clone();
    let args: alloc::vec::Vec<&str> = owned
        .iter()
        .skip(1)
        .map(alloc::string::String::as_str)
        .collect();
    match args.as_slice() {
        [] => {
            let mut buf = Buffer(alloc::vec::Vec::new());
            if fs::render_table(ctx.process, &mut buf).is_err() {
                ctx.error(format_args!(
                    "{}",
                    fs::FsError::NoMemory(heap::NoMemory::last())
                ));
                return Ok(1);
            }
            ctx.write(&buf.0)?;
            Ok(0)
        }
        [pid] => {
            // Built fallibly: this may run with the session at its limit.
            let mut path = Buffer(alloc::vec::Vec::new());
            let built =
                core::fmt::Write::write_fmt(&mut path, format_args!("/proc/{pid}/memquota"));
            let (Ok(()), Ok(path)) = (built, core::str::from_utf8(&path.0)) else {
                ctx.error(format_args!(
                    "{}",
                    fs::FsError::NoMemory(heap::NoMemory::last())
                ));
                return Ok(1);
            };
            match fs::read(ctx.process, path) {
                Ok(bytes) => {
                    ctx.write(&bytes)?;
                    Ok(0)
                }
                Err(e) => {
                    ctx.error(format_args!("{pid}: {e}"));
                    Ok(1)
                }
            }
        }
        [verb @ ("set" | "high" | "pids"), who, value] => {
            let request = match *verb {
                "pids" => procfs::PidsMax::parse(value.as_bytes())
                    .map(MemquotaWrite::PidsMax)
                    .map_err(|e| alloc::format!("{value}: {e}")),
                verb => {
                    let kind = if verb == "set" {
                        LimitKind::Max
                    } else {
                        LimitKind::High
                    };
                    procfs::parse_size(value.as_bytes())
                        .map_err(|e| alloc::format!("{value}: {e}"))
                        .and_then(|limit| {
                            SetLimit::new(kind, limit)
                                .map(MemquotaWrite::Limit)
                                .ok_or_else(|| alloc::format!("{value}: too large"))
                        })
                }
            };
            match request {
                Ok(request) => Ok(set(ctx, who, request)),
                Err(e) => {
                    ctx.error(format_args!("{e}"));
                    Ok(1)
                }
            }
        }
        _ => Ok(super::usage(ctx)),
    }
}

fn set(ctx: &Ctx<'_>, who: &str, request: MemquotaWrite) -> i32 {
    let pid = if who == "session" {
        ctx.process.session.sid
    } else if let Ok(pid) = who.parse::<u32>() {
        pid
    } else {
        ctx.error(format_args!("'{who}' is neither a pid nor 'session'"));
        return super::usage(ctx);
    };
    let Some(target) = proc::find(pid) else {
        ctx.error(format_args!("{pid}: no such process"));
        return 1;
    };
    match fs::set_limit(ctx.process, &target, request) {
        Ok(()) => 0,
        Err(e) => {
            ctx.error(format_args!("{pid}: {e}"));
            1
        }
    }
}
