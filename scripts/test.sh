#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what is
# missing, then runs every check. Exits non-zero on the first failure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

setup_rust
setup_nightly
apt_install qemu-system-arm python3 openssh-client
say "Python venv for sshd's interop and audit tests (target/pyenv)"
"$ROOT/scripts/setup-python.sh"

say "kernel layers: dependencies point down, unsafe only where allowed"
python3 scripts/check-layers.py

say "format"
cargo fmt --all -- --check

say "clippy (host crates, all targets)"
cargo clippy --all-targets -- -D warnings

say "clippy (the libraries for aarch64-unknown-none, stable)"
cargo clippy --target aarch64-unknown-none -p quota -p procfs -p sshd -p kcore -- -D warnings

say "clippy (the kernel, its nightly, normal and ktest builds)"
scripts/build-kernel.sh --clippy
scripts/build-kernel.sh --clippy --ktest

say "build the library crates for aarch64-unknown-none"
cargo build --target aarch64-unknown-none -p quota -p procfs -p sshd -p kcore

say "host tests (unit, property, threads), system tests (the kernel in QEMU), in-kernel tests"
cargo test

say "loom model of the charge protocol"
RUSTFLAGS="--cfg loom" cargo test -p quota --lib --release --target-dir target/loom loom

say "miri on the tests that read and write allocation headers"
if setup_miri; then
    cargo "+$MIRI_NIGHTLY" miri test -p quota --lib --target-dir "target/$MIRI_NIGHTLY" tracking
else
    echo "error: the Miri toolchain $MIRI_NIGHTLY could not be installed" >&2
    exit 1
fi

say "all checks passed"
