//! `memquota`: the account table, one process's quota, or setting limits.

use procfs::{LimitKind, MemquotaWrite, SetLimit};

use crate::fs::{self, Buffer};
use crate::heap;
use crate::proc;
use crate::shell::ctx::{Abort, Ctx};
use crate::time::TICK_HZ;

pub(super) fn memquota(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    let owned = ctx.args.clone();
    let args: alloc::vec::Vec<&str> = owned
        .iter()
        .skip(1)
        .map(alloc::string::String::as_str)
        .collect();
    match args.as_slice() {
        [] => table(ctx, false),
        ["--watch"] => watch(ctx, TICK_HZ),
        ["--watch", seconds] => match kcore::seconds::parse_seconds(seconds, TICK_HZ) {
            Some(ticks) if ticks > 0 => watch(ctx, ticks),
            _ => {
                ctx.error(format_args!(
                    "'{seconds}' is not a positive number of seconds (like 1 or 0.5)"
                ));
                Ok(super::usage(ctx))
            }
        },
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

/// Writes the account table; `redraw` first homes the cursor and clears
/// the screen (as `top` does), in the same write so it does not flicker.
fn table(ctx: &mut Ctx<'_>, redraw: bool) -> Result<i32, Abort> {
    let mut buf = Buffer(alloc::vec::Vec::new());
    let home = if redraw { "\x1b[H\x1b[2J" } else { "" };
    let rendered = core::fmt::Write::write_str(&mut buf, home)
        .and_then(|()| fs::render_table(ctx.process, &mut buf));
    if rendered.is_err() {
        ctx.error(format_args!(
            "{}",
            fs::FsError::NoMemory(heap::NoMemory::last())
        ));
        return Ok(1);
    }
    ctx.write(&buf.0)?;
    Ok(0)
}

/// `memquota --watch`: the table redrawn every `ticks` until Ctrl-C (or a
/// kill) stops it at its sleep, a safe point.
fn watch(ctx: &mut Ctx<'_>, ticks: u64) -> Result<i32, Abort> {
    loop {
        if table(ctx, true)? != 0 {
            return Ok(1);
        }
        ctx.sleep(ticks)?;
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
