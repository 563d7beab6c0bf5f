#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine, skipping what is
# already there. Sourced by test.sh and run.sh; safe to run on its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The stable toolchain pinned in rust-toolchain.toml (libraries, tests), and
# the nightly pinned in kernel/rust-toolchain.toml (the kernel, and Miri).
STABLE="$(sed -n 's/^channel = "\(.*\)"/\1/p' "$ROOT/rust-toolchain.toml")"
NIGHTLY="$(sed -n 's/^channel = "\(.*\)"/\1/p' "$ROOT/kernel/rust-toolchain.toml")"
MIRI_NIGHTLY="$NIGHTLY"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

need_rustup() {
    if ! command -v rustup >/dev/null 2>&1; then
        echo "error: rustup is not installed; install it (https://rustup.rs) and re-run" >&2
        exit 1
    fi
}

setup_rust() {
    need_rustup
    # Build scripts and some dependencies (loom's) are compiled and linked
    # with the host's C toolchain.
    command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev
    if ! rustup run "$STABLE" rustc --version >/dev/null 2>&1 \
        || ! rustup target list --installed --toolchain "$STABLE" | grep -q aarch64-unknown-none \
        || ! rustup component list --installed --toolchain "$STABLE" | grep -q clippy \
        || ! rustup component list --installed --toolchain "$STABLE" | grep -q rustfmt; then
        say "installing Rust $STABLE with clippy, rustfmt and the aarch64-unknown-none target"
        rustup toolchain install "$STABLE" --profile minimal \
            --component rustfmt,clippy --target aarch64-unknown-none
    fi
}

# The kernel's nightly, with the sources of core and alloc (`-Zbuild-std`)
# and clippy.
setup_nightly() {
    need_rustup
    if rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1 \
        && rustup component list --installed --toolchain "$NIGHTLY" | grep -q '^rust-src' \
        && rustup component list --installed --toolchain "$NIGHTLY" | grep -q '^clippy'; then
        return 0
    fi
    say "installing $NIGHTLY with rust-src and clippy (the kernel's toolchain)"
    rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src,clippy
}

# Miri needs a nightly; returns non-zero if it cannot be had.
setup_miri() {
    need_rustup
    if rustup run "$MIRI_NIGHTLY" cargo miri --version >/dev/null 2>&1; then
        return 0
    fi
    say "installing $MIRI_NIGHTLY with miri"
    rustup toolchain install "$MIRI_NIGHTLY" --profile minimal --component miri,rust-src
}

apt_updated=0
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "error: ${missing[*]} must be installed, which needs root (or sudo)" >&2
            exit 1
        fi
        sudo="sudo"
    fi
    if [ "$apt_updated" -eq 0 ]; then
        say "apt-get update"
        $sudo apt-get update -qq
        apt_updated=1
    fi
    say "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    setup_rust
    setup_nightly
    setup_miri
fi
