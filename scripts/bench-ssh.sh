#!/usr/bin/env bash
# A benchmark, not a test: this SSH server's host build beside OpenSSH's
# own sshd on loopback (same client, cipher, key and data, one run), and
# the ratio; see the README's SSH section. Installs openssh-server.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
setup_rust
apt_install openssh-client openssh-server
cargo test --release -p sshd --test versus_openssh -- --ignored --nocapture
