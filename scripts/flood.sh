#!/usr/bin/env bash
# Back-pressure, measured and drawn (the README's figures): boots the
# kernel with its SSH server, floods `head -c 64M /dev/zero | ssh ... sink`
# at a 1 MiB session limit while the console samples the session's
# `current` and `max`, measures boot-to-SSH-ready and inbound and outbound
# throughput (at the limit and with none), and draws docs/flood.png.
#
#   scripts/flood.sh [--limit SIZE] [--mib N] [--png PATH]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
setup_rust
apt_install qemu-system-arm openssh-client
setup_nightly
scripts/setup-python.sh
elf="$(scripts/build-kernel.sh)"
exec "$ROOT/target/pyenv/bin/python" scripts/flood.py "$elf" "$@"
