#!/usr/bin/env python3
"""Back-pressure, measured and drawn.

Boots the kernel (scripts/qemu.sh) with its SSH server, then:
  1. boot-to-SSH-ready: seconds from starting QEMU until `ssh ... true` works;
  2. floods `head -c N /dev/zero | ssh ... sink` at a session limit, while
     the console (root) samples the flooding session's `current` and `max`
     from `memquota`, and the client counts the bytes it has sent;
  3. the same flood with no session limit, and outbound floods (`ssh ... yes`
     read for N bytes) at both, for throughput in MiB/s;
  4. draws the samples of (2) as a PNG: the limit holds while the flood goes on.

Usage: flood.py KERNEL_ELF [--limit 1M] [--mib 64] [--png docs/flood.png]
Run through scripts/flood.sh, which builds the kernel and installs matplotlib.
"""

import argparse
import atexit
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

import guest_console
from guest_console import PROMPT, free_port

ROOT = guest_console.ROOT
GUESTS = []
EXTRA = os.environ.get("FLOOD_QEMU_EXTRA", "").split()


@atexit.register
def _stop_guests():
    for guest in GUESTS:
        if guest.proc.poll() is None:
            guest.proc.kill()


def ssh_args(guest, keys, command):
    return ["ssh", "-p", str(guest.port), "-i", os.path.join(keys, "user"),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "-c", "chacha20-poly1305@openssh.com", "user@127.0.0.1", command]


def start_guest(elf, append, keys):
    """A guest with the SSH server's keys and a free port (`guest.port`)."""
    port = free_port()
    env = {"MEMQUOTA_APPEND": append, "MEMQUOTA_SSH_PORT": str(port),
           "MEMQUOTA_HOST_KEY": os.path.join(keys, "host"),
           "MEMQUOTA_AUTHORIZED_KEYS": os.path.join(keys, "user.pub")}
    guest = guest_console.Guest(elf, env, EXTRA)
    guest.port = port
    GUESTS.append(guest)
    return guest


def boot(elf, append, keys):
    guest = start_guest(elf, append, keys)
    guest.expect(PROMPT)
    while True:
        tried = subprocess.run(ssh_args(guest, keys, "true"), stdin=subprocess.DEVNULL,
                               capture_output=True)
        if tried.returncode == 0:
            break
        if time.monotonic() - guest.started > 60:
            sys.exit(f"flood.py: the SSH server did not answer in 60 s: {tried.stderr!r}\n"
                     f"{bytes(guest.out).decode(errors='replace')}")
        time.sleep(0.1)
    return guest, time.monotonic() - guest.started


def session_row(table):
    """(current, max) of the newest SSH session in a `memquota` table."""
    best = None
    for line in table.splitlines():
        f = line.split()
        if len(f) >= 13 and f[-1] == "session" and f[2] == f[3] and f[3] != "1":
            if best is None or int(f[3]) > best[0]:
                best = (int(f[3]), int(f[4]), f[5])
    return best


def inbound(guest, keys, size, sample):
    """Floods `size` zero bytes into `sink`; returns (seconds, samples)."""
    sent = [0]
    ssh = subprocess.Popen(ssh_args(guest, keys, "sink"), stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def feed():
        block = bytes(64 << 10)
        while sent[0] < size:
            n = min(len(block), size - sent[0])
            ssh.stdin.write(block[:n])
            sent[0] += n
        ssh.stdin.close()

    start = time.monotonic()
    feeder = threading.Thread(target=feed)
    feeder.start()
    samples = []
    while ssh.poll() is None:
        if sample:
            row = session_row(guest.run("memquota"))
            if row:
                limit = row[2]
                samples.append((time.monotonic() - start, row[1],
                                None if limit == "max" else int(limit), sent[0]))
        else:
            time.sleep(0.05)
    feeder.join()
    elapsed = time.monotonic() - start
    out = ssh.stdout.read().decode().strip()
    if out != str(size):
        sys.exit(f"flood.py: sink printed {out!r}, expected {size}: {ssh.stderr.read()!r}")
    return elapsed, samples


def outbound(guest, keys, size):
    """Reads `size` bytes of `yes` from the guest; returns (bytes, seconds):
    fewer bytes if the output stopped for 10 s or ended."""
    ssh = subprocess.Popen(ssh_args(guest, keys, "yes"), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    start = last = time.monotonic()
    got = 0
    while got < size and time.monotonic() - last < 10:
        ready, _, _ = select.select([ssh.stdout], [], [], 1)
        if not ready:
            continue
        data = os.read(ssh.stdout.fileno(), 1 << 16)
        if not data:
            break
        got += len(data)
        last = time.monotonic()
    elapsed = last - start
    ssh.kill()
    ssh.wait()
    return got, elapsed


def report_outbound(what, got, seconds, size):
    if got < size:
        print(f"outbound {what}: STOPPED after {got} bytes (the session ended or stalled)")
    else:
        print(f"outbound {what}: {got / (1 << 20) / seconds:.1f} MiB/s")


def plot(samples, limit_text, mib, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = [s[0] for s in samples]
    fig, left = plt.subplots(figsize=(9, 4.5))
    left.plot(t, [s[1] / 1024 for s in samples], label="session current (KiB)", color="tab:blue")
    left.plot(t, [(s[2] or 0) / 1024 for s in samples], label="session max (KiB)",
              color="tab:red", linestyle="--")
    left.set_xlabel("seconds since the flood started")
    left.set_ylabel("KiB charged to the session")
    left.set_ylim(bottom=0)
    right = left.twinx()
    right.plot(t, [s[3] / (1 << 20) for s in samples], label="MiB sent by the client",
               color="tab:green")
    right.set_ylabel("MiB sent")
    right.set_ylim(bottom=0)
    lines = left.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    left.legend(lines[0] + more[0], lines[1] + more[1], loc="center right")
    left.set_title(f"head -c {mib}M /dev/zero | ssh ... sink, session max {limit_text}")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    fig.savefig(png, dpi=100)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("elf")
    p.add_argument("--limit", default="1M")
    p.add_argument("--mib", type=int, default=64)
    p.add_argument("--png", default=os.path.join(ROOT, "docs/flood.png"))
    a = p.parse_args()
    size = a.mib << 20
    with tempfile.TemporaryDirectory() as keys:
        for name in ("host", "user"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            os.path.join(keys, name)], check=True)
        guest, ready = boot(a.elf, f"session_max={a.limit}", keys)
        print(f"boot to SSH ready: {ready:.2f} s")
        seconds, samples = inbound(guest, keys, size, sample=True)
        over = [s for s in samples if s[2] is not None and s[1] > s[2]]
        limit = max((s[2] or 0) for s in samples) if samples else 0
        peak = max(s[1] for s in samples) if samples else 0
        print(f"sampled flood at session max {a.limit}: {len(samples)} samples of the "
              f"session from the console, highest current {peak} of max {limit}")
        if over:
            sys.exit(f"flood.py: the session went past its max: {over[:3]}")
        seconds, _ = inbound(guest, keys, size, sample=False)
        print(f"inbound at session max {a.limit}: {a.mib} MiB in {seconds:.2f} s = "
              f"{a.mib / seconds:.1f} MiB/s")
        report_outbound(f"at session max {a.limit}", *outbound(guest, keys, size), size)
        guest.stop()
        guest, _ = boot(a.elf, "session_max=max", keys)
        seconds, _ = inbound(guest, keys, size, sample=False)
        print(f"inbound, no session limit: {a.mib / seconds:.1f} MiB/s")
        report_outbound("with no session limit", *outbound(guest, keys, size), size)
        guest.stop()
    plot(samples, a.limit, a.mib, a.png)
    print(f"plot: {a.png}")


if __name__ == "__main__":
    main()
