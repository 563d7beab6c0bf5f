//! `echo`, `cat`, `ls`, `rm`, `yes`, `sink`.

use crate::fs;
use crate::outln;
use crate::shell::ctx::{Abort, Ctx};

pub(super) fn echo(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    let text = ctx.args[1..].join(" ");
    outln!(ctx, "{text}")?;
    Ok(0)
}

pub(super) fn cat(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    if ctx.args.len() < 2 {
        // No file: copy the input to the output, to its end.
        let mut buf = [0u8; 1024];
        loop {
            let n = ctx.read(&mut buf)?;
            if n == 0 {
                return Ok(0);
            }
            ctx.write(&buf[..n])?;
        }
    }
    let mut status = 0;
    for i in 1..ctx.args.len() {
        let path = ctx.args[i].clone();
        match fs::read(ctx.process, &path) {
            Ok(bytes) => ctx.write(&bytes)?,
            Err(e) => {
                ctx.error(format_args!("{path}: {e}"));
                status = 1;
            }
        }
    }
    Ok(status)
}

pub(super) fn ls(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    let long = ctx.args.get(1).is_some_and(|a| a == "-l");
    let operands = &ctx.args[1 + usize::from(long)..];
    if operands.len() > 1 {
        return Ok(super::usage(ctx));
    }
    let path = operands.first().cloned().unwrap_or_else(|| "/".into());
    if long && matches!(path.trim_end_matches('/'), "/tmp") {
        // Size, the session each file is charged to, and whether that
        // session has ended (its files stay, charged, until removed).
        for entry in fs::tmp_entries() {
            let state = if entry.ended { "ended" } else { "live" };
            outln!(
                ctx,
                "{:>10}  session {:<5} {state:<5}  {}",
                entry.len,
                entry.sid,
                entry.name
            )?;
        }
        return Ok(0);
    }
    match fs::list(ctx.process, &path) {
        Ok(names) => {
            for name in names {
                outln!(ctx, "{name}")?;
            }
            Ok(0)
        }
        Err(e) => {
            ctx.error(format_args!("{path}: {e}"));
            Ok(1)
        }
    }
}

pub(super) fn rm(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    if ctx.args.len() < 2 {
        return Ok(super::usage(ctx));
    }
    let mut status = 0;
    for path in &ctx.args[1..] {
        if let Err(e) = fs::remove(ctx.process, path) {
            ctx.error(format_args!("{path}: {e}"));
            status = 1;
        }
    }
    ctx.check()?;
    Ok(status)
}

pub(super) fn yes(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    let mut line = if ctx.args.len() > 1 {
        ctx.args[1..].join(" ")
    } else {
        "y".into()
    };
    line.push('\n');
    // Whole lines, as many as a block holds, per write (as GNU yes does):
    // one write per two bytes would cost a wake-up each over SSH.
    let mut block = [0u8; 1024];
    let mut len = 0;
    while len + line.len() <= block.len() {
        block[len..len + line.len()].copy_from_slice(line.as_bytes());
        len += line.len();
    }
    let out = if len > 0 {
        &block[..len]
    } else {
        line.as_bytes()
    };
    loop {
        ctx.write(out)?;
    }
}

pub(super) fn truth(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    ctx.check()?;
    Ok(0)
}

pub(super) fn falsehood(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    ctx.check()?;
    Ok(1)
}

pub(super) fn sink(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    if ctx.args.len() > 1 {
        return Ok(super::usage(ctx));
    }
    let mut buf = [0u8; 4096];
    let mut total: u64 = 0;
    loop {
        let n = ctx.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total = total.saturating_add(n as u64);
    }
    outln!(ctx, "{total}")?;
    Ok(0)
}
