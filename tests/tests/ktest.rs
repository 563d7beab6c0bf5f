//! Boots the test build of the kernel (`--features ktest`), which runs the
//! in-kernel test cases and exits QEMU with status 0 only if all pass.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use system_tests::{build_kernel, qemu};

const DEADLINE: Duration = Duration::from_mins(2);

#[test]
fn in_kernel_tests_pass() {
    let elf = build_kernel(&["ktest"], "target/ktest");
    let mut child = qemu(&elf, "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start QEMU");
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll QEMU") {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = reader.join().expect("reader thread");
    print!("{output}");
    let status =
        status.unwrap_or_else(|| panic!("the test kernel ran past {DEADLINE:?}:\n{output}"));
    assert!(
        output.contains("ktest: ") && output.contains(" passed, 0 failed"),
        "{output}"
    );
    assert_eq!(status.code(), Some(0), "QEMU's exit status");
}
