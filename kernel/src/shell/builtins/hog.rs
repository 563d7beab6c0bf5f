//! `hog`: allocates kernel memory in steps, to watch limits work.
//!
//! By default every step is fallible (`try_reserve`): a refusal is
//! reported with where it happened and the process exits normally. With
//! `--infallible` it grows ordinary `Vec`s, as code that cannot handle
//! failure would: the allocator forces the charge over the limit, flags
//! the process, and it is killed at the next safe point (each step yields).

use alloc::vec::Vec;

use quota::Limit;

use crate::heap;
use crate::outln;
use crate::shell::ctx::{Abort, Ctx};

const DEFAULT_STEP: usize = 16 << 10;

struct Options {
    size: usize,
    step: usize,
    infallible: bool,
}

fn parse(args: &[alloc::string::String]) -> Result<Options, alloc::string::String> {
    let mut size = None;
    let mut step = DEFAULT_STEP;
    let mut infallible = false;
    let mut words = args.iter().skip(1);
    let bytes = |w: &str| match procfs::parse_size(w.as_bytes()) {
        Ok(Limit::Bytes(n)) => Ok(n),
        Ok(Limit::Unlimited) => Err(alloc::format!("{w}: a size is needed, not 'max'")),
        Err(e) => Err(alloc::format!("{w}: {e}")),
    };
    while let Some(w) = words.next() {
        match w.as_str() {
            "--infallible" => infallible = true,
            "--step" => {
                let n = words.next().ok_or("--step needs a size")?;
                step = bytes(n)?;
                if step == 0 {
                    return Err("--step must be at least 1 byte".into());
                }
            }
            flag if flag.starts_with("--") => {
                return Err(alloc::format!("unknown option '{flag}'"));
            }
            w if size.is_none() => size = Some(bytes(w)?),
            w => return Err(alloc::format!("unexpected argument '{w}'")),
        }
    }
    Ok(Options {
        size: size.ok_or("missing SIZE")?,
        step,
        infallible,
    })
}

pub(super) fn hog(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    let options = match parse(&ctx.args) {
        Ok(o) => o,
        Err(e) => {
            ctx.error(format_args!("{e}"));
            return Ok(super::usage(ctx));
        }
    };
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut total = 0usize;
    while total < options.size {
        let n = options.step.min(options.size - total);
        if options.infallible {
            chunks.push(alloc::vec![0xa5; n]);
            total += n;
            ctx.yield_now()?;
            continue;
        }
        let mut chunk = Vec::new();
        let reserved = heap::fallible(|| {
            chunks
                .try_reserve(1)
                .and_then(|()| chunk.try_reserve_exact(n))
        });
        if reserved.is_err() {
            let process = ctx.process.account_snapshot();
            let session = crate::heap::ACCOUNTS.snapshot(ctx.process.session.account().id());
            let figures = |a: Option<quota::AccountSnapshot>| {
                a.map_or((0, Limit::Unlimited), |a| (a.current, a.max))
            };
            let ((pc, pm), (sc, sm)) = (figures(process), figures(session));
            outln!(
                ctx,
                "hog: refused after {total} bytes: a {n}-byte step did not fit (process {pc} of max {pm}, session {sc} of max {sm})"
            )?;
            return Ok(1);
        }
        chunk.resize(n, 0xa5);
        chunks.push(chunk);
        total += n;
        ctx.check()?;
    }
    outln!(
        ctx,
        "hog: allocated {total} bytes in {} steps",
        chunks.len()
    )?;
    Ok(0)
}
