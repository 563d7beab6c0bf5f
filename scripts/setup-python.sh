#!/usr/bin/env bash
# Creates the Python virtual environment the host-side tests use, at
# target/pyenv: asyncssh (a second SSH client for sshd's interop test),
# ssh-audit (sshd's algorithm audit) and matplotlib (plots). Every package,
# including the ones they pull in, is pinned to an exact version.
#
# Idempotent: when the venv already holds exactly these pins it returns at
# once. `cargo clean` removes the venv; run this again after it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

VENV="$ROOT/target/pyenv"
# The packages asked for, then what they depend on (as resolved for
# Python 3.11), so that a new release of a dependency changes nothing here.
REQUIREMENTS="asyncssh==2.24.1
ssh-audit==3.9.0
matplotlib==3.11.2
cffi==2.1.1
contourpy==1.3.3
cryptography==50.0.2
cycler==0.12.1
fonttools==4.68.0
kiwisolver==1.5.1
numpy==2.4.6
packaging==26.3
pillow==13.0.0
pycparser==3.12
pyparsing==3.3.3
python-dateutil==4.0.0
typing_extensions==4.16.0
tzdata==2026.6"
STAMP="$VENV/.requirements"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$REQUIREMENTS" ]; then
    exit 0
fi

# Debian's interpreter, whatever else is first on PATH, so every machine
# builds the same venv; python3-venv provides ensurepip for it.
apt_install python3 python3-venv
say "creating the Python venv at target/pyenv (asyncssh, ssh-audit, matplotlib)"
rm -rf "$VENV"
mkdir -p "$ROOT/target"
/usr/bin/python3 -m venv "$VENV"
printf '%s\n' "$REQUIREMENTS" >"$VENV/requirements.txt"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-deps --require-virtualenv -r "$VENV/requirements.txt"
"$VENV/bin/python" -m pip check --disable-pip-version-check >/dev/null
printf '%s' "$REQUIREMENTS" >"$STAMP"
