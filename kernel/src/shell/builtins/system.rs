//! `ps`, `kill`, `sleep`, `free`, `uptime`, `poweroff`.

use crate::heap;
use crate::outln;
use crate::proc::{self, ProcState};
use crate::shell::ctx::{Abort, Ctx};
use crate::time::{TICK_HZ, ticks};

pub(super) fn ps(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    if ctx.args.len() > 1 {
        return Ok(super::usage(ctx));
    }
    outln!(
        ctx,
        "{:>5} {:>5} {:>5} {:<6} {:>10} {:>10} NAME",
        "PID",
        "PPID",
        "SID",
        "STATE",
        "CURRENT",
        "MAX"
    )?;
    for p in proc::list() {
        if !ctx.process.may_read(&p) {
            continue;
        }
        let state = match p.state() {
            ProcState::Live if p.pid == ctx.process.pid => "run",
            ProcState::Live => "sleep",
            ProcState::Exited(_) => "zombie",
        };
        let (current, max) = p
            .account_snapshot()
            .map_or((0, quota::Limit::Unlimited), |a| (a.current, a.max));
        outln!(
            ctx,
            "{:>5} {:>5} {:>5} {:<6} {:>10} {:>10} {}",
            p.pid,
            p.ppid,
            p.session.sid,
            state,
            current,
            max,
            p.name
        )?;
    }
    Ok(0)
}

pub(super) fn kill(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    let [_, pid] = ctx.args.as_slice() else {
        return Ok(super::usage(ctx));
    };
    let Ok(pid) = pid.parse::<u32>() else {
        ctx.error(format_args!("'{pid}' is not a pid"));
        return Ok(super::usage(ctx));
    };
    match proc::kill(ctx.process, pid) {
        // Killing itself takes effect at once.
        Ok(()) => {
            ctx.check()?;
            // Give the target up to a second to reach its safe point and
            // exit, so the shell reports it before its next prompt.
            for _ in 0..TICK_HZ {
                if proc::find(pid).is_none_or(|p| p.has_exited()) {
                    break;
                }
                ctx.sleep(1)?;
            }
            Ok(0)
        }
        Err(e) => {
            ctx.error(format_args!("{pid}: {e}"));
            Ok(1)
        }
    }
}

pub(super) fn sleep(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    let [_, seconds] = ctx.args.as_slice() else {
        return Ok(super::usage(ctx));
    };
    let Some(ticks) = kcore::seconds::parse_seconds(seconds, TICK_HZ) else {
        let what = if seconds.bytes().all(|b| b.is_ascii_digit() || b == b'.') && seconds.len() > 12
        {
            "is too many seconds"
        } else {
            "is not a number of seconds (like 2 or 0.5)"
        };
        ctx.error(format_args!("'{seconds}' {what}"));
        return Ok(super::usage(ctx));
    };
    ctx.sleep(ticks)?;
    Ok(0)
}

pub(super) fn free(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    let h = heap::snapshot();
    outln!(
        ctx,
        "{:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "total",
        "used",
        "free",
        "floor",
        "kernel",
        "sessions"
    )?;
    outln!(
        ctx,
        "heap {:>7} {:>12} {:>12} {:>12} {:>12} {:>12}",
        h.size,
        h.used,
        h.free,
        h.floor,
        h.table.kernel_bytes,
        h.table.user_bytes
    )?;
    let tmp = crate::fs::tmp_usage();
    outln!(
        ctx,
        "tmp  {:>7} {:>12} {:>12}",
        tmp.size,
        tmp.used,
        tmp.size.saturating_sub(tmp.used)
    )?;
    Ok(0)
}

pub(super) fn uptime(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    let t = ticks();
    outln!(
        ctx,
        "up {}.{:02} s, {} processes",
        t / TICK_HZ,
        t % TICK_HZ,
        proc::list()
            .iter()
            .filter(|p| ctx.process.may_read(p))
            .count()
    )?;
    Ok(0)
}

pub(super) fn poweroff(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    if !ctx.process.session.root {
        ctx.error(format_args!("only root may power off"));
        return Ok(1);
    }
    outln!(ctx, "powering off")?;
    crate::arch::psci::system_off();
}
