//! Boots the test build of the kernel (`--features ktest`), which runs the
//! in-kernel test cases and exits QEMU with status 0 only if all pass.

use std::process::Command;

use system_tests::root;

#[test]
fn in_kernel_tests_pass() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "--features",
            "ktest",
            "--target-dir",
            "../target/ktest",
        ])
        .current_dir(root().join("kernel"))
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the test kernel failed");
    let elf = root().join("target/ktest/aarch64-unknown-none/release/kernel");
    let mut child = Command::new("timeout")
        .arg("120")
        .arg("qemu-system-aarch64")
        .args(["-machine", "virt", "-cpu", "max", "-m", "128M"])
        .args([
            "-display",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
            "-semihosting",
        ])
        .arg("-kernel")
        .arg(&elf)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start QEMU");
    let output = {
        let mut out = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().expect("piped"), &mut out)
            .expect("read output");
        out
    };
    let status = child.wait().expect("wait for QEMU");
    print!("{output}");
    assert!(
        output.contains("ktest: ") && output.contains(" passed, 0 failed"),
        "{output}"
    );
    assert_eq!(
        status.code(),
        Some(0),
        "QEMU's exit status (124 is the timeout)"
    );
}
