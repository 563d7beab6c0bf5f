//! The shell: the leader of a session. Each command line runs as child
//! processes of the shell; only `exit` runs in the shell itself.

mod builtins;
mod line;
mod parse;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::io::{Ctx, Output};
use crate::proc::{self, Errno, ExitStatus, Pid, Process, Spawn};
use crate::{kprint, kprintln, vfs};

/// Runs the shell for its session until `exit`.
///
/// # Errors
/// A fatal [`Errno`] if the shell itself is killed.
pub fn run(me: &Arc<Process>) -> Result<i32, Errno> {
    let mut jobs: Vec<(Pid, String)> = Vec::new();
    loop {
        reap_jobs(me, &mut jobs);
        kprint!(
            "{}",
            if me.session.root {
                "memquota# "
            } else {
                "memquota$ "
            }
        );
        let text = match line::read_line()? {
            line::Line::Text(text) => text,
            line::Line::Cancelled => continue,
        };
        let commands = match parse::parse(&text) {
            Ok(commands) => commands,
            Err(e) => {
                kprintln!("sh: {e}");
                continue;
            }
        };
        for command in commands {
            if command.argv[0] == "exit" {
                return Ok(exit_code(&command.argv));
            }
            run_command(me, command, &mut jobs)?;
        }
    }
}

fn exit_code(argv: &[String]) -> i32 {
    argv.get(1).and_then(|a| a.parse().ok()).unwrap_or(0)
}

fn run_command(
    me: &Arc<Process>,
    command: parse::Command,
    jobs: &mut Vec<(Pid, String)>,
) -> Result<(), Errno> {
    let name = command.argv[0].clone();
    let Some(builtin) = builtins::find(&name) else {
        kprintln!("sh: {name}: command not found (try 'help')");
        return Ok(());
    };
    let out = match command.redirect {
        Some(path) => {
            if let Err(e) = vfs::check_writable(me, &path) {
                kprintln!("sh: {path}: {e}");
                return Ok(());
            }
            Output::File(path)
        }
        None => Output::Console,
    };
    let argv = command.argv;
    let body: proc::Body = Box::new(move |process| {
        let mut ctx = Ctx {
            process,
            args: argv,
            out,
        };
        (builtin.run)(&mut ctx)
    });
    let spawn = Spawn {
        name: name.clone(),
        parent: Some(me.clone()),
        root_session: false,
        session_max: quota::Limit::Unlimited,
        foreground: !command.background,
    };
    let child = match proc::spawn(spawn, body) {
        Ok(child) => child,
        Err(e) => {
            kprintln!("sh: {name}: cannot start: {e}");
            return Ok(());
        }
    };
    let pid = child.pid;
    drop(child);
    if command.background {
        kprintln!("[{pid}] {name}");
        jobs.push((pid, name));
        return Ok(());
    }
    let status = proc::wait(me, pid);
    proc::set_foreground(0);
    report(pid, &name, &status?, false);
    Ok(())
}

/// Prints how a job ended, if there is something to say.
fn report(pid: Pid, name: &str, status: &ExitStatus, background: bool) {
    match status {
        ExitStatus::Code(_) if background => kprintln!("[{pid}] done: {name} ({status})"),
        ExitStatus::Code(_) => {}
        ExitStatus::Interrupted if !background => kprintln!("^C"),
        ExitStatus::OutOfMemory(report) => kprintln!("sh: {report}"),
        _ => kprintln!("sh: {name}[{pid}]: {status}"),
    }
}

fn reap_jobs(me: &Process, jobs: &mut Vec<(Pid, String)>) {
    jobs.retain(|(pid, name)| match proc::try_wait(me, *pid) {
        Some(status) => {
            report(*pid, name, &status, true);
            false
        }
        None => true,
    });
    if jobs.is_empty() {
        // No job list kept once every job is collected: the session's usage
        // returns exactly to what it was.
        jobs.shrink_to_fit();
    }
}
