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

/// Exit status `$?` shows for a command that could not start.
const NOT_STARTED: i32 = 127;

/// One shell: its process, its background jobs and the last status.
struct Shell<'a> {
    me: &'a Arc<Process>,
    jobs: Vec<(Pid, String)>,
    /// `$?`: the status of the last foreground command.
    last: i32,
}

/// Runs the shell for its session until `exit`.
///
/// # Errors
/// A fatal [`Errno`] if the shell itself is killed.
pub fn run(me: &Arc<Process>) -> Result<i32, Errno> {
    let mut shell = Shell {
        me,
        jobs: Vec::new(),
        last: 0,
    };
    loop {
        shell.reap_jobs();
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
        // `$?` is the only expansion.
        let text = text.replace("$?", &alloc::format!("{}", shell.last));
        let commands = match parse::parse(&text) {
            Ok(commands) => commands,
            Err(e) => {
                kprintln!("sh: {e}");
                shell.last = 2;
                continue;
            }
        };
        for command in commands {
            if command.argv[0] == "exit" {
                let Some(code) = exit_code(&command.argv) else {
                    kprintln!("sh: usage: exit [CODE] (CODE a number from 0 to 255)");
                    shell.last = 2;
                    continue;
                };
                return Ok(code);
            }
            shell.last = shell.run_command(command)?;
        }
    }
}

fn exit_code(argv: &[String]) -> Option<i32> {
    match argv {
        [_] => Some(0),
        [_, code] => code.parse::<u8>().ok().map(i32::from),
        _ => None,
    }
}

impl Shell<'_> {
    /// Runs one command; returns its status (0 for one sent to the background).
    fn run_command(&mut self, command: parse::Command) -> Result<i32, Errno> {
        let me = self.me;
        let name = command.argv[0].clone();
        let Some(builtin) = builtins::find(&name) else {
            kprintln!("sh: {name}: command not found (try 'help')");
            return Ok(NOT_STARTED);
        };
        let out = match command.redirect {
            Some(path) => {
                if let Err(e) = vfs::open_for_write(me, &path) {
                    kprintln!("sh: {path}: {e}");
                    return Ok(1);
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
        let pid = match proc::spawn(spawn, body) {
            Ok(child) => child.pid,
            Err(e) => {
                kprintln!("sh: {name}: cannot start: {e}");
                return Ok(NOT_STARTED);
            }
        };
        if command.background {
            kprintln!("[{pid}] {name}");
            self.jobs.push((pid, name));
            return Ok(0);
        }
        let status = proc::wait(me, pid);
        proc::set_foreground(0);
        let status = status?;
        report(pid, &name, &status, false);
        Ok(status.code())
    }

    fn reap_jobs(&mut self) {
        let me = self.me;
        self.jobs
            .retain(|(pid, name)| match proc::try_wait(me, *pid) {
                Some(status) => {
                    report(*pid, name, &status, true);
                    false
                }
                None => true,
            });
        if self.jobs.is_empty() {
            // No job list kept once every job is collected: the session's
            // usage returns exactly to what it was.
            self.jobs.shrink_to_fit();
        }
    }
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
