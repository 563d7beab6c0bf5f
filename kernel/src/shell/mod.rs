//! The shell: the leader of a session. Each command line runs as child
//! processes of the shell; only `exit` runs in the shell itself.

mod builtins;
mod ctx;
mod line;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use ctx::{Ctx, Output};

use crate::proc::{self, ExitStatus, Pid, Process, Spawn};
use crate::sched::Stop;
use kcore::line_editor::{LineEditor, MAX_LINE, Outcome};

use crate::{console, fs, kprintln};

/// Exit status `$?` shows for a command that could not start.
const NOT_STARTED: i32 = 127;

/// One shell: its process, its background jobs and the last status.
struct Shell<'a> {
    me: &'a Arc<Process>,
    editor: LineEditor,
    jobs: Vec<(Pid, String)>,
    /// `$?`: the status of the last foreground command.
    last: i32,
}

/// Runs the shell for its session until `exit`.
///
/// # Errors
/// The [`Stop`] if the shell itself must stop.
pub fn run(me: &Arc<Process>) -> Result<i32, Stop> {
    let mut shell = Shell {
        me,
        editor: LineEditor::new(),
        jobs: Vec::new(),
        last: 0,
    };
    loop {
        shell.reap_jobs();
        let prompt = if me.session.root {
            "memquota# "
        } else {
            "memquota$ "
        };
        let text = match line::read_line(&mut shell.editor, prompt)? {
            Outcome::Line(text) => text,
            Outcome::Cancelled => continue,
            Outcome::TooLong => {
                kprintln!("sh: line too long ({MAX_LINE} characters at most); nothing run");
                continue;
            }
            Outcome::OutOfMemory => {
                kprintln!("sh: the session is at its limit: a keystroke was refused; nothing run");
                continue;
            }
            // Ctrl-D on an empty line, as `exit`.
            Outcome::Eof => return Ok(0),
        };
        // `$?` is the only expansion.
        let text = text.replace("$?", &alloc::format!("{}", shell.last));
        let commands = match kcore::shell_parse::parse(&text) {
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
    fn run_command(&mut self, command: kcore::shell_parse::Command) -> Result<i32, Stop> {
        let me = self.me;
        let name = command.argv[0].clone();
        let Some(builtin) = builtins::find(&name) else {
            kprintln!("sh: {name}: command not found (try 'help')");
            return Ok(NOT_STARTED);
        };
        let Some(run) = builtin.run else {
            kprintln!("sh: {name}: not a command to run here");
            return Ok(NOT_STARTED);
        };
        let out = match command.redirect {
            Some(path) => {
                if let Err(e) = fs::open_for_write(me, &path) {
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
            ctx::finish(run(&mut ctx))
        });
        let spawn = Spawn {
            name: name.clone(),
            parent: Some(me.clone()),
            root_session: false,
            session_max: quota::Limit::Unlimited,
            pids_max: None,
            operator: builtin.operator && me.session.root,
            foreground: !command.background,
        };
        let child = match proc::spawn(spawn, body) {
            Ok(child) => child,
            Err(e) => {
                kprintln!("sh: {name}: cannot start: {e}");
                return Ok(NOT_STARTED);
            }
        };
        let pid = child.pid;
        if command.background {
            kprintln!("[{pid}] {name}");
            self.jobs.push((pid, name));
            return Ok(0);
        }
        let status = proc::wait(child);
        console::set_foreground(None);
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
