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

use crate::fs;
use crate::tty::{self, Terminal};

/// Exit status `$?` shows for a command that could not start.
const NOT_STARTED: i32 = 127;

/// One shell: its process, its terminal, its background jobs and the
/// last status.
struct Shell<'a> {
    me: &'a Arc<Process>,
    term: Arc<dyn Terminal>,
    editor: LineEditor,
    jobs: Vec<(Pid, String)>,
    /// `$?`: the status of the last foreground command.
    last: i32,
}

/// What a command line asked of the shell.
enum Next {
    /// Read the next line.
    Continue,
    /// `exit`: leave with this status.
    Exit(i32),
}

/// Runs the shell for its session on `term` until `exit` or the end of
/// the input; returns its exit status.
///
/// # Errors
/// The [`Stop`] if the shell itself must stop.
pub fn run(me: &Arc<Process>, term: &Arc<dyn Terminal>) -> Result<i32, Stop> {
    let mut shell = Shell::new(me, term);
    loop {
        shell.reap_jobs()?;
        let prompt = if me.session.root {
            "memquota# "
        } else {
            "memquota$ "
        };
        let outcome = if term.interactive() && me.session.root {
            // Root's line editing is the operator's: it works even when
            // root's own session is at (or was set to) a limit of 0.
            crate::heap::charge_to(crate::heap::operator_account(), || {
                line::read_line(&mut shell.editor, prompt, &**term)
            })?
        } else if term.interactive() {
            line::read_line(&mut shell.editor, prompt, &**term)?
        } else {
            match line::read_plain(&**term)? {
                Some(outcome) => outcome,
                None => return Ok(shell.last),
            }
        };
        let text = match outcome {
            Outcome::Line(text) => text,
            Outcome::Cancelled => continue,
            Outcome::TooLong => {
                shell.say(format_args!(
                    "sh: line too long ({MAX_LINE} characters at most); nothing run"
                ))?;
                continue;
            }
            Outcome::OutOfMemory => {
                shell.say(format_args!(
                    "sh: the session is at its limit: a keystroke was refused; nothing run"
                ))?;
                continue;
            }
            // Ctrl-D on an empty line, or the end of the input, as `exit`.
            Outcome::Eof => return Ok(shell.last),
        };
        if let Next::Exit(code) = shell.execute(&text)? {
            return Ok(code);
        }
    }
}

/// Runs one command line (`ssh host 'LINE'`) on `term` and returns the
/// status of its last command.
///
/// # Errors
/// The [`Stop`] if the process running it must stop.
pub fn run_line(me: &Arc<Process>, term: &Arc<dyn Terminal>, line: &str) -> Result<i32, Stop> {
    let mut shell = Shell::new(me, term);
    let next = shell.execute(line)?;
    shell.reap_jobs()?;
    Ok(match next {
        Next::Exit(code) => code,
        Next::Continue => shell.last,
    })
}

impl<'a> Shell<'a> {
    fn new(me: &'a Arc<Process>, term: &Arc<dyn Terminal>) -> Self {
        Shell {
            me,
            term: term.clone(),
            editor: LineEditor::new(),
            jobs: Vec::new(),
            last: 0,
        }
    }

    /// A line of the shell's own on its terminal's error output.
    fn say(&self, args: core::fmt::Arguments<'_>) -> Result<(), Stop> {
        tty::print(&*self.term, true, format_args!("{args}\n"))
    }

    /// Runs a command line: parsed, then each command in turn, its `$?`
    /// expanded to the status of the command before it (`false; echo $?`
    /// prints 1).
    fn execute(&mut self, text: &str) -> Result<Next, Stop> {
        let commands = match kcore::shell_parse::parse(text) {
            Ok(commands) => commands,
            Err(e) => {
                self.say(format_args!("sh: {e}"))?;
                self.last = 2;
                return Ok(Next::Continue);
            }
        };
        for mut command in commands {
            // `$?` is the only expansion.
            let last = alloc::format!("{}", self.last);
            for word in command.argv.iter_mut().chain(command.redirect.as_mut()) {
                if word.contains("$?") {
                    *word = word.replace("$?", &last);
                }
            }
            if command.argv[0] == "exit" {
                let Some(code) = exit_code(&command.argv) else {
                    self.say(format_args!(
                        "sh: usage: exit [CODE] (CODE a number from 0 to 255)"
                    ))?;
                    self.last = 2;
                    continue;
                };
                return Ok(Next::Exit(code));
            }
            self.last = self.run_command(command)?;
        }
        Ok(Next::Continue)
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
            self.say(format_args!("sh: {name}: command not found (try 'help')"))?;
            return Ok(NOT_STARTED);
        };
        let Some(run) = builtin.run else {
            self.say(format_args!("sh: {name}: not a command to run here"))?;
            return Ok(NOT_STARTED);
        };
        let out = match command.redirect {
            Some(path) => {
                if let Err(e) = fs::open_for_write(me, &path) {
                    self.say(format_args!("sh: {path}: {e}"))?;
                    return Ok(1);
                }
                Output::File(path)
            }
            None => Output::Terminal,
        };
        let argv = command.argv;
        let term = self.term.clone();
        let body: proc::Body = Box::new(move |process| {
            let mut ctx = Ctx {
                process,
                args: argv,
                out,
                term,
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
            foreground: (!command.background).then(|| self.term.clone()),
            notify: None,
        };
        let child = match proc::spawn(spawn, body) {
            Ok(child) => child,
            Err(e) => {
                self.say(format_args!("sh: {name}: cannot start: {e}"))?;
                return Ok(NOT_STARTED);
            }
        };
        let pid = child.pid;
        if command.background {
            self.say(format_args!("[{pid}] {name}"))?;
            self.jobs.push((pid, name));
            return Ok(0);
        }
        let status = proc::wait(child);
        self.term.set_foreground(None);
        let status = status?;
        self.report(pid, &name, &status, false)?;
        Ok(status.code())
    }

    fn reap_jobs(&mut self) -> Result<(), Stop> {
        let (me, term) = (self.me, &*self.term);
        let mut result = Ok(());
        self.jobs
            .retain(|(pid, name)| match proc::try_wait(me, *pid) {
                Some(status) => {
                    if result.is_ok() {
                        result = report(term, *pid, name, &status, true);
                    }
                    false
                }
                None => true,
            });
        if self.jobs.is_empty() {
            // No job list kept once every job is collected: the session's
            // usage returns exactly to what it was.
            self.jobs.shrink_to_fit();
        }
        result
    }

    fn report(
        &self,
        pid: Pid,
        name: &str,
        status: &ExitStatus,
        background: bool,
    ) -> Result<(), Stop> {
        report(&*self.term, pid, name, status, background)
    }
}

/// Prints how a job ended, if there is something to say.
fn report(
    term: &dyn Terminal,
    pid: Pid,
    name: &str,
    status: &ExitStatus,
    background: bool,
) -> Result<(), Stop> {
    let say = |args: core::fmt::Arguments<'_>| tty::print(term, true, format_args!("{args}\n"));
    match status {
        ExitStatus::Code(_) if background => say(format_args!("[{pid}] done: {name} ({status})")),
        ExitStatus::Code(_) => Ok(()),
        ExitStatus::Interrupted if !background => say(format_args!("^C")),
        ExitStatus::OutOfMemory(report) => say(format_args!("sh: {report}")),
        _ => say(format_args!("sh: {name}[{pid}]: {status}")),
    }
}
