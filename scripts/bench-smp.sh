#!/usr/bin/env bash
# A measurement, not a check: in-guest alloc+free pairs per second
# (`bench alloc`) on 1 CPU and on 2 (MEMQUOTA_CPUS), with 1 and 2 threads,
# on one shared account and on separate accounts, and the 2-CPU/1-CPU ratio.
# Each guest is killed after 100 s; the whole run takes about a minute.
#
#   scripts/bench-smp.sh [--seconds S] [--cpus 1,2]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
case "${1:-}" in -h|--help) sed -n '2,7p' "$0"; exit 0 ;; esac
setup_rust
apt_install qemu-system-arm python3
setup_nightly
elf="$(scripts/build-kernel.sh)"
exec python3 scripts/bench-smp.py "$elf" "$@"
