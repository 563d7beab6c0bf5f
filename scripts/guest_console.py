"""The kernel in QEMU with its serial console on pipes, for the measuring
scripts (flood.py, bench-smp.py). Standard library only.

A `Guest` boots `scripts/qemu.sh ELF` with the environment given (every
QEMU setting is an environment variable of qemu.sh), reads the console in
a thread, and is killed after `deadline` seconds if given, so a hung guest
fails a run instead of hanging it. `expect` raises `Unanswered` when the
console does not say what was expected in time.
"""

import os
import socket
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT = b"memquota# "


class Unanswered(Exception):
    """The console did not say what was expected in time."""


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Guest:
    """QEMU with the console on pipes."""

    def __init__(self, elf, env, extra=(), deadline=None):
        self.started = time.monotonic()
        self.proc = subprocess.Popen([os.path.join(ROOT, "scripts/qemu.sh"), elf, *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=dict(os.environ, **env))
        self.out = bytearray()
        self.seen = 0
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.timer = None
        if deadline is not None:
            self.timer = threading.Timer(deadline, self.proc.kill)
            self.timer.start()

    def _read(self):
        while True:
            data = self.proc.stdout.read1(4096)
            with self.cond:
                if not data:
                    self.out += b"\n[guest ended]\n"
                    self.cond.notify_all()
                    return
                self.out += data
                self.cond.notify_all()

    def expect(self, pattern, timeout=60):
        """Waits for `pattern` (bytes) after what was consumed; returns the
        text up to and including it."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                at = self.out.find(pattern, self.seen)
                if at >= 0:
                    text = bytes(self.out[self.seen:at + len(pattern)])
                    self.seen = at + len(pattern)
                    return text.decode(errors="replace")
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and b"[guest ended]" in self.out:
                    tail = bytes(self.out[-2000:]).decode(errors="replace")
                    raise Unanswered(f"no {pattern!r} within {timeout} s; the console said:\n{tail}")
                self.cond.wait(left)

    def run(self, line, timeout=60):
        """Types `line` and waits for the next prompt."""
        self.proc.stdin.write(line.encode() + b"\r")
        self.proc.stdin.flush()
        return self.expect(PROMPT, timeout)

    def stop(self):
        """Powers the guest off (kills it if it does not go)."""
        try:
            self.proc.stdin.write(b"poweroff\r")
            self.proc.stdin.flush()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        if self.timer is not None:
            self.timer.cancel()
