//! In-kernel tests: built with `--features ktest`, the kernel runs these
//! instead of the console shell and exits QEMU through semihosting with
//! status 0 if all passed, 1 otherwise. `tests/tests/ktest.rs` boots it.
//!
//! Each module registers its cases in a `TESTS` table with [`tests!`],
//! which names each case after its module and function, so a name cannot
//! drift from the code; a case returns `Err(message)` to fail.

mod accounts;
mod files;
mod network;
mod process;
mod procfs_vfs;
mod scheduler;
mod shell;
mod smp;
mod wakeups;

use alloc::string::String;

use crate::kprintln;

/// A registered test case.
pub struct Test {
    /// The module that registered it (`module_path!()`).
    pub module: &'static str,
    /// Its function's name.
    pub name: &'static str,
    /// Runs it.
    pub run: fn() -> Result<(), String>,
}

/// A module's table of cases: `tests![a, b]` registers the functions `a`
/// and `b`, named from the functions themselves and the calling module.
#[macro_export]
macro_rules! tests {
    ($($case:ident),+ $(,)?) => {
        &[$($crate::ktest::Test {
            module: module_path!(),
            name: stringify!($case),
            run: $case,
        }),+]
    };
}

/// Fails the test with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(alloc::format!("{} ({}:{})", format_args!($($arg)*), file!(), line!()));
        }
    };
}

const SUITES: &[&[Test]] = &[
    scheduler::TESTS,
    accounts::TESTS,
    process::TESTS,
    procfs_vfs::TESTS,
    files::TESTS,
    shell::TESTS,
    network::TESTS,
    smp::TESTS,
    wakeups::TESTS,
];

/// Runs every case, prints a summary and exits QEMU with the result.
pub fn run_all() -> ! {
    let (mut passed, mut failed) = (0u32, 0u32);
    for test in SUITES.iter().flat_map(|s| s.iter()) {
        let module = test.module.rsplit("::").next().unwrap_or(test.module);
        match (test.run)() {
            Ok(()) => {
                passed += 1;
                kprintln!("ktest {module}::{} ... ok", test.name);
            }
            Err(message) => {
                failed += 1;
                kprintln!("ktest {module}::{} ... FAILED: {message}", test.name);
            }
        }
    }
    kprintln!("ktest: {passed} passed, {failed} failed");
    crate::arch::semihost::exit(u32::from(failed > 0));
}
