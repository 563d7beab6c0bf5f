#!/usr/bin/env bash
# Boots a kernel ELF in QEMU `virt` with the serial console on this terminal.
# Used by run.sh and the system tests, and as the cargo runner (`cargo run`
# in kernel/): the one place the QEMU command line is written.
#   scripts/qemu.sh KERNEL_ELF [extra QEMU args...]
# Environment: MEMQUOTA_RAM (default 128M), MEMQUOTA_APPEND (boot
# parameters), MEMQUOTA_SSH_PORT (default 2222: the host port, on
# 127.0.0.1, forwarded to the guest's TCP port 22; it must be free).
set -euo pipefail
kernel="${1:?usage: qemu.sh KERNEL_ELF [QEMU args...]}"
shift
port="${MEMQUOTA_SSH_PORT:-2222}"
exec qemu-system-aarch64 \
    -machine virt -cpu max -smp 1 -m "${MEMQUOTA_RAM:-128M}" \
    -nographic -no-reboot -semihosting \
    -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:${port}-:22" \
    -device virtio-net-device,netdev=net0 \
    -kernel "$kernel" -append "${MEMQUOTA_APPEND:-}" "$@"
