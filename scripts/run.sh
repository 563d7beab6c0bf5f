#!/usr/bin/env bash
# The README's run command: installs what is missing, builds the kernel and
# boots it in QEMU with the serial console on this terminal. `poweroff` in
# the shell ends it (or Ctrl-A then X).
#
#   scripts/run.sh [--cpus N] [--ram SIZE] [--heap SIZE] [--floor SIZE]
#                  [--session-max SIZE] [--emergency SIZE] [--debug]
#                  [--append 'KEY=VALUE ...']   (any boot parameter: pids_max,
#                  tmp_size, operator_reserve, failslab; ARCHITECTURE.md)
#
# SIZE takes K/M/G suffixes. Defaults: 2 CPUs (N from 1 to 4), 128M of
# RAM, a heap of a quarter of RAM, a floor of an eighth of the heap,
# sessions limited to 8M.
# The guest's TCP port 22 is forwarded from 127.0.0.1:$MEMQUOTA_SSH_PORT
# (default 2222); if that port is taken, another free one is used.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"

ram=128M
cpus="${MEMQUOTA_CPUS:-2}"
append=()
profile=release
while [ $# -gt 0 ]; do
    case "$1" in
        --cpus) cpus="${2:?--cpus needs a number of CPUs}"; shift 2 ;;
        --ram) ram="${2:?--ram needs a size}"; shift 2 ;;
        --heap) append+=("heap=${2:?--heap needs a size}"); shift 2 ;;
        --floor) append+=("floor=${2:?--floor needs a size}"); shift 2 ;;
        --session-max) append+=("session_max=${2:?--session-max needs a size}"); shift 2 ;;
        --emergency) append+=("emergency=${2:?--emergency needs a size}"); shift 2 ;;
        --append) append+=(${2:?--append needs boot parameters}); shift 2 ;;
        --debug) profile=dev; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
# Checked here too (qemu.sh checks it again), so a typo fails before the build.
case "$cpus" in
    [1-4]) ;;
    *) echo "run.sh: --cpus '$cpus': the CPU count must be a whole number from 1 to 4" >&2; exit 2 ;;
esac

setup_rust
apt_install qemu-system-arm python3 openssh-client
setup_nightly
say "building the kernel ($profile)"
elf="$(scripts/build-kernel.sh --profile "$profile")"

# The host port forwarded to the guest's port 22: the one asked for if it
# is free, else any free one.
free_port() {
    python3 - "$1" <<'PY'
import socket, sys
def bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        return s.getsockname()[1]
wanted = int(sys.argv[1])
print(bindable(wanted) or bindable(0))
PY
}
wanted="${MEMQUOTA_SSH_PORT:-2222}"
port="$(free_port "$wanted")"
if [ "$port" != "$wanted" ]; then
    echo "run.sh: port $wanted on 127.0.0.1 is taken (by another guest or program); using $port instead" >&2
fi
# The SSH server's keys: a host key kept in a state directory (so
# known_hosts does not change on every boot), and the user's own public keys
# as authorized keys; a user without one gets a key made in the state
# directory. They reach the guest through QEMU's fw_cfg.
state="${XDG_STATE_HOME:-$HOME/.local/state}/memquota"
mkdir -p "$state"
[ -f "$state/host_key" ] || ssh-keygen -q -t ed25519 -N '' -C memquota-host -f "$state/host_key"
identity=()
if ! cat "$HOME"/.ssh/*.pub > "$state/authorized_keys" 2>/dev/null || [ ! -s "$state/authorized_keys" ]; then
    [ -f "$state/user_key" ] || ssh-keygen -q -t ed25519 -N '' -C memquota-user -f "$state/user_key"
    cp "$state/user_key.pub" "$state/authorized_keys"
    identity=(-i "$state/user_key")
fi
say "booting: $cpus CPU(s), RAM $ram, boot parameters: ${append[*]:-(defaults)}"
say "log in over SSH:  ssh -p $port ${identity[*]:+${identity[*]} }user@127.0.0.1"
MEMQUOTA_CPUS="$cpus" MEMQUOTA_RAM="$ram" MEMQUOTA_APPEND="${append[*]:-}" MEMQUOTA_SSH_PORT="$port" \
    MEMQUOTA_HOST_KEY="$state/host_key" MEMQUOTA_AUTHORIZED_KEYS="$state/authorized_keys" \
    exec scripts/qemu.sh "$elf"
