//! The shell's commands. Each runs as its own process; its output goes to
//! the console or a file, and every output line is a safe point.

mod bench;
mod files;
mod hog;
mod memquota;
mod system;

use crate::shell::ctx::{Abort, Ctx};
use crate::{out, outln};

/// How a command runs in its own process.
pub type Run = fn(&mut Ctx<'_>) -> Result<i32, Abort>;

/// A command.
pub struct Builtin {
    /// Its name.
    pub name: &'static str,
    /// Its usage line.
    pub usage: &'static str,
    /// What it does.
    pub help: &'static str,
    /// Runs it in its own process; `None` for `exit`, which the shell
    /// carries out itself.
    pub run: Option<Run>,
    /// A command the console operator needs to look and clean up: run by
    /// root, it is charged to the operator's reserve, outside the
    /// session's limits (see `heap`'s operator account).
    pub operator: bool,
}

/// Every command, in `help` order.
pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "help",
        usage: "help [COMMAND]",
        help: "list commands, or explain one",
        run: Some(help),
        operator: true,
    },
    Builtin {
        name: "echo",
        usage: "echo [TEXT...]",
        help: "print TEXT",
        run: Some(files::echo),
        operator: false,
    },
    Builtin {
        name: "cat",
        usage: "cat [FILE...]",
        help: "print files, or the input to its end",
        run: Some(files::cat),
        operator: false,
    },
    Builtin {
        name: "ls",
        usage: "ls [-l] [DIR]",
        help: "list a directory (default /); -l on /tmp: sizes and sessions",
        run: Some(files::ls),
        operator: true,
    },
    Builtin {
        name: "rm",
        usage: "rm FILE...",
        help: "remove files from /tmp",
        run: Some(files::rm),
        operator: true,
    },
    Builtin {
        name: "ps",
        usage: "ps",
        help: "list processes: pid, ppid, sid, state, memory, name",
        run: Some(system::ps),
        operator: true,
    },
    Builtin {
        name: "kill",
        usage: "kill PID",
        help: "kill a process of this session",
        run: Some(system::kill),
        operator: true,
    },
    Builtin {
        name: "sleep",
        usage: "sleep SECONDS",
        help: "wait (fractions like 0.5 allowed)",
        run: Some(system::sleep),
        operator: false,
    },
    Builtin {
        name: "memquota",
        usage: "memquota [PID | --watch [SECONDS] | set|high PID|session SIZE | pids PID|session N]",
        help: "show the account table or one process's quota; set max, high or pids.max",
        run: Some(memquota::memquota),
        operator: true,
    },
    Builtin {
        name: "free",
        usage: "free",
        help: "heap totals",
        run: Some(system::free),
        operator: true,
    },
    Builtin {
        name: "uptime",
        usage: "uptime",
        help: "time since boot",
        run: Some(system::uptime),
        operator: false,
    },
    Builtin {
        name: "hog",
        usage: "hog SIZE [--step N] [--infallible]",
        help: "allocate SIZE bytes of kernel memory in steps (fallibly, unless --infallible)",
        run: Some(hog::hog),
        operator: false,
    },
    Builtin {
        name: "bench",
        usage: "bench alloc [--threads N] [--shared|--separate] [--seconds S]",
        help: "alloc+free pairs per second on N threads, charged to one account or one each",
        run: Some(bench::bench),
        operator: false,
    },
    Builtin {
        name: "yes",
        usage: "yes [TEXT]",
        help: "print TEXT (default y) forever",
        run: Some(files::yes),
        operator: false,
    },
    Builtin {
        name: "true",
        usage: "true",
        help: "exit 0",
        run: Some(files::truth),
        operator: false,
    },
    Builtin {
        name: "false",
        usage: "false",
        help: "exit 1",
        run: Some(files::falsehood),
        operator: false,
    },
    Builtin {
        name: "sink",
        usage: "sink",
        help: "read the input to its end and print how many bytes it held",
        run: Some(files::sink),
        operator: false,
    },
    Builtin {
        name: "exit",
        usage: "exit [CODE]",
        help: "leave the shell",
        run: None,
        operator: false,
    },
    Builtin {
        name: "poweroff",
        usage: "poweroff",
        help: "turn the machine off",
        run: Some(system::poweroff),
        operator: false,
    },
];

/// The command called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// Prints `usage` for the running command and returns the exit code 2.
pub(super) fn usage(ctx: &Ctx<'_>) -> i32 {
    let name = ctx.args[0].as_str();
    let line = find(name).map_or("", |b| b.usage);
    ctx.error(format_args!("usage: {line}"));
    2
}

fn help(ctx: &mut Ctx<'_>) -> Result<i32, Abort> {
    let Some(name) = ctx.args.get(1).cloned() else {
        for b in BUILTINS {
            outln!(ctx, "  {:<64} {}", b.usage, b.help)?;
        }
        out!(
            ctx,
            "Commands run as child processes; 'cmd &' runs one in the background,\n"
        )?;
        outln!(
            ctx,
            "'cmd > FILE' sends its output to FILE, ';' separates commands, Ctrl-C interrupts."
        )?;
        return Ok(0);
    };
    if let Some(b) = find(&name) {
        outln!(ctx, "usage: {}\n{}", b.usage, b.help)?;
        Ok(0)
    } else {
        ctx.error(format_args!("no command '{name}'"));
        Ok(1)
    }
}
