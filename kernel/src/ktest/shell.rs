//! The shell through a scripted terminal: command lines run as child
//! processes, their output and statuses come back, and nothing is left.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use quota::Limit;

use super::Test;
use crate::ensure;
use crate::heap;
use crate::proc::Process;
use crate::sched::{Stop, Thread};
use crate::sync::IrqMutex;
use crate::tty::Terminal;

pub const TESTS: &[Test] = crate::tests![
    one_line_runs_and_returns_its_status,
    a_script_runs_to_its_end
];

/// A terminal that reads a script and records what is written.
struct Script {
    input: IrqMutex<VecDeque<u8>>,
    output: IrqMutex<Vec<u8>>,
}

impl Script {
    fn new(input: &str) -> Arc<Script> {
        heap::as_kernel(|| {
            Arc::new(Script {
                input: IrqMutex::new(input.bytes().collect()),
                output: IrqMutex::new(Vec::new()),
            })
        })
    }

    fn output(&self) -> String {
        let bytes = self.output.lock();
        heap::as_kernel(|| String::from_utf8_lossy(&bytes).into_owned())
    }
}

impl Terminal for Script {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Stop> {
        let mut input = self.input.lock();
        let n = buf.len().min(input.len());
        for slot in &mut buf[..n] {
            *slot = input.pop_front().unwrap_or(0);
        }
        Ok(n)
    }

    fn write(&self, bytes: &[u8]) -> Result<(), Stop> {
        let mut output = self.output.lock();
        heap::as_kernel(|| output.extend_from_slice(bytes));
        Ok(())
    }

    fn interactive(&self) -> bool {
        false
    }

    fn set_foreground(&self, _: Option<&Arc<Thread>>) {}

    fn clear_foreground_if(&self, _: &Thread) {}
}

type Body = fn(&Arc<Process>, &Arc<dyn Terminal>) -> Result<(), String>;

static SCRIPT: IrqMutex<Option<(Arc<Script>, Body)>> = IrqMutex::new(None);

fn in_script_session(me: &Arc<Process>) -> Result<(), String> {
    let (script, body) = SCRIPT.lock().clone().ok_or("no script")?;
    let term: Arc<dyn Terminal> = script;
    body(me, &term)
}

fn with_script(input: &str, body: Body) -> Result<(), String> {
    let script = Script::new(input);
    *SCRIPT.lock() = Some((script.clone(), body));
    let outcome = super::process::in_session(Limit::Bytes(4 << 20), in_script_session);
    let taken = SCRIPT.lock().take();
    drop(taken);
    outcome.map_err(|e| alloc::format!("{e}\noutput:\n{}", script.output()))
}

fn one_line(me: &Arc<Process>, term: &Arc<dyn Terminal>) -> Result<(), String> {
    let status = crate::shell::run_line(me, term, "echo hi; echo $?; frobnicate; exit 3")
        .map_err(|e| alloc::format!("stopped: {e}"))?;
    ensure!(status == 3, "status {status}");
    Ok(())
}

fn one_line_runs_and_returns_its_status() -> Result<(), String> {
    with_script("", one_line)?;
    Ok(())
}

fn script(me: &Arc<Process>, term: &Arc<dyn Terminal>) -> Result<(), String> {
    let status = crate::shell::run(me, term).map_err(|e| alloc::format!("stopped: {e}"))?;
    ensure!(status == 0, "status {status}");
    Ok(())
}

fn a_script_runs_to_its_end() -> Result<(), String> {
    let before = heap::snapshot().used;
    let text = "echo one\r\nhog 64K\nsink\ncat /proc/self/status\n";
    with_script(text, script)?;
    // The script's own output: everything the commands wrote.
    let after = heap::snapshot().used;
    ensure!(after == before, "heap used {after}, was {before}");
    Ok(())
}
