#!/usr/bin/env bash
# Boots a kernel ELF in QEMU `virt` with the serial console on this terminal.
# Used by run.sh and as the cargo runner (`cargo run` in kernel/).
#   scripts/qemu.sh KERNEL_ELF [extra QEMU args...]
# Environment: MEMQUOTA_RAM (default 128M), MEMQUOTA_APPEND (boot parameters).
set -euo pipefail
kernel="${1:?usage: qemu.sh KERNEL_ELF [QEMU args...]}"
shift
exec qemu-system-aarch64 \
    -machine virt -cpu max -smp 1 -m "${MEMQUOTA_RAM:-128M}" \
    -nographic -no-reboot -semihosting \
    -kernel "$kernel" -append "${MEMQUOTA_APPEND:-}" "$@"
