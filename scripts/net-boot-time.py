#!/usr/bin/env python3
"""Measures how soon the network is usable after QEMU starts.

Boots the release kernel (build it first: scripts/run.sh or `cargo build
--release` in kernel/) through scripts/qemu.sh N times, each with its own
free forwarded port, and reports, as median (min-max) in milliseconds from
starting QEMU:
  - `net: up`: the kernel's line saying the interface has its address;
  - banner:     a host TCP connection to the forwarded port, opened once
                `net: up` is seen, got the echo service's first line (the
                host side of "network ready"; a SYN sent earlier would be
                lost and retried by QEMU only after TCP's 1 s timeout);
  - prompt:     the console's first prompt.

Usage: scripts/net-boot-time.py [N]   (default 10; KERNEL=path for another ELF)
"""

import os
import pathlib
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
KERNEL = pathlib.Path(
    os.environ.get("KERNEL", ROOT / "target/aarch64-unknown-none/release/kernel")
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def banner_time(port: int, start: float, deadline: float) -> float | None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(1)
                if s.recv(100).startswith(b"memquota echo"):
                    return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.005)
    return None


def boot_once() -> dict[str, float | None]:
    port = free_port()
    env = dict(os.environ, MEMQUOTA_SSH_PORT=str(port), MEMQUOTA_APPEND="")
    start = time.monotonic()
    qemu = subprocess.Popen(
        [str(ROOT / "scripts/qemu.sh"), str(KERNEL)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    seen: dict[str, float | None] = {"net: up": None, "banner": None, "prompt": None}

    def read_console() -> None:
        out = b""
        while seen["prompt"] is None:
            chunk = qemu.stdout.read1(4096)
            if not chunk:
                return
            out += chunk
            now = time.monotonic() - start
            if seen["net: up"] is None and b"net: up " in out:
                seen["net: up"] = now
            if b"memquota# " in out:
                seen["prompt"] = now

    reader = threading.Thread(target=read_console)
    reader.start()
    while seen["net: up"] is None and time.monotonic() < start + 10:
        time.sleep(0.001)
    seen["banner"] = banner_time(port, start, start + 10)
    reader.join(timeout=20)
    qemu.kill()
    qemu.wait()
    return seen


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    if not KERNEL.exists():
        print(f"build the kernel first: {KERNEL} is missing", file=sys.stderr)
        return 1
    results = [boot_once() for _ in range(runs)]
    for key in ("net: up", "banner", "prompt"):
        values = [r[key] * 1000 for r in results if r[key] is not None]
        if not values:
            print(f"{key:8}: never seen")
            continue
        print(
            f"{key:8}: {statistics.median(values):6.0f} ms "
            f"({min(values):.0f}-{max(values):.0f}), {len(values)}/{runs} boots"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
