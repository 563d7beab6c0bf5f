#!/usr/bin/env bash
# Boots a kernel ELF in QEMU `virt` with the serial console on this terminal.
# Used by run.sh and the system tests, and as the cargo runner (`cargo run`
# in kernel/): the one place the QEMU command line is written.
#   scripts/qemu.sh KERNEL_ELF [extra QEMU args...]
# Environment: MEMQUOTA_CPUS (default 2: QEMU's `-smp`, a whole number
# from 1 to 4, the kernel's MAX_CPUS), MEMQUOTA_RAM (default 128M),
# MEMQUOTA_APPEND (boot parameters), MEMQUOTA_SSH_PORT (default 2222: the host port, on
# 127.0.0.1, forwarded to the guest's TCP port 22; it must be free),
# MEMQUOTA_HOST_KEY and MEMQUOTA_AUTHORIZED_KEYS (files: an OpenSSH ed25519
# private key and an authorized_keys list, for the guest's SSH server).
set -euo pipefail
kernel="${1:?usage: qemu.sh KERNEL_ELF [QEMU args...]}"
shift
port="${MEMQUOTA_SSH_PORT:-2222}"
cpus="${MEMQUOTA_CPUS:-2}"
# At most kernel/src/cpu.rs's MAX_CPUS.
case "$cpus" in
    [1-4]) ;;
    *) echo "qemu.sh: MEMQUOTA_CPUS='$cpus': the CPU count must be a whole number from 1 to 4" >&2
       exit 2 ;;
esac
# The SSH server's keys reach the guest through QEMU's fw_cfg, never the
# kernel command line (which every session can read).
keys=()
if [ -n "${MEMQUOTA_HOST_KEY:-}" ] && [ -n "${MEMQUOTA_AUTHORIZED_KEYS:-}" ]; then
    keys=(-fw_cfg "name=opt/memquota/host_key,file=$MEMQUOTA_HOST_KEY"
          -fw_cfg "name=opt/memquota/authorized_keys,file=$MEMQUOTA_AUTHORIZED_KEYS")
fi
exec qemu-system-aarch64 \
    -machine virt -cpu max -smp "$cpus" -m "${MEMQUOTA_RAM:-128M}" \
    -nographic -no-reboot -semihosting \
    -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:${port}-:22" \
    -device virtio-net-device,netdev=net0 "${keys[@]}" \
    -kernel "$kernel" -append "${MEMQUOTA_APPEND:-}" "$@"
