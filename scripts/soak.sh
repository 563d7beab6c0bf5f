#!/usr/bin/env bash
# The long soaks, run by hand (scripts/test.sh runs short versions):
#   - 10,000 hog cycles (fallible, infallible, beyond the overdraft, mixed)
#     with exactly 0 bytes left behind;
#   - a 10-minute mixed workload (jobs, /tmp files, Ctrl-C, kills) with 1%
#     of the sessions' charges failing (failslab), after which the heap and
#     every account are exactly at their baseline.
# Sizes: SOAK_CYCLES (default 10000), SOAK_SECONDS (default 600).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
setup_rust
setup_nightly
apt_install qemu-system-arm
export SOAK_CYCLES="${SOAK_CYCLES:-10000}" SOAK_SECONDS="${SOAK_SECONDS:-600}"
say "soak: $SOAK_CYCLES hog cycles, then $SOAK_SECONDS s of mixed work with 1% injected failures"
cargo test --release -p system-tests --test soak -- --ignored --nocapture --test-threads 1
