#!/usr/bin/env bash
# The one place the kernel is built: with the nightly pinned in
# kernel/rust-toolchain.toml, `-Zbuild-std=core,alloc`, `panic = "unwind"`
# and unwind tables (kernel/.cargo/config.toml). Used by run.sh, test.sh
# (the kernel's clippy) and the system tests (`system_tests::build_kernel`).
#
#   scripts/build-kernel.sh [--ktest] [--profile release|dev]
#                           [--target-dir DIR] [--clippy]
#
# Prints the ELF's path on stdout (nothing else goes there). --clippy runs
# clippy with `-D warnings` instead of building, and prints nothing.
# Defaults: release, target dir `target` at the workspace root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

profile=release
target_dir="$ROOT/target"
features=()
clippy=0
while [ $# -gt 0 ]; do
    case "$1" in
        --ktest) features=(--features ktest); shift ;;
        --profile) profile="${2:?--profile needs release or dev}"; shift 2 ;;
        --target-dir) target_dir="${2:?--target-dir needs a directory}"; shift 2 ;;
        --clippy) clippy=1; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "build-kernel.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case "$target_dir" in /*) ;; *) target_dir="$ROOT/$target_dir" ;; esac

setup_nightly >&2
cd "$ROOT/kernel"
# A cargo that started this (the system tests' `cargo test`) leaves its
# toolchain and flags in the environment; the kernel's come from kernel/.
unset RUSTUP_TOOLCHAIN RUSTC RUSTDOC RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER \
    RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET CARGO_TARGET_DIR
if [ "$clippy" -eq 1 ]; then
    rustup run "$NIGHTLY" cargo clippy --profile "$profile" --quiet \
        --target-dir "$target_dir" "${features[@]}" -- -D warnings >&2
    exit 0
fi
rustup run "$NIGHTLY" cargo build --profile "$profile" --quiet \
    --target-dir "$target_dir" "${features[@]}" >&2
dir="$profile"
[ "$profile" = dev ] && dir=debug
echo "$target_dir/aarch64-unknown-none/$dir/kernel"
