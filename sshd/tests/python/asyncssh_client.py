"""Drives sshd's test server with asyncssh and prints one JSON report.

Usage: asyncssh_client.py PORT KEY

It only performs the steps and reports what it saw; the checks live in the
Rust test that runs it (sshd/tests/python.rs). Payloads are generated the
same way there, so the report carries their lengths and SHA-256 digests
instead of the bytes.
"""

import asyncio
import hashlib
import json
import sys

import asyncssh


def digest(data):
    return {"len": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def result(r):
    return {
        "stdout": r.stdout,
        "stderr": r.stderr,
        "exit_status": r.exit_status,
        "exit_signal": r.exit_signal,
    }


def pattern(n, salt):
    """The bytes i * 7 + salt (mod 256), i = 0..n: every byte value, no
    long runs; the Rust test builds the same."""
    return bytes((i * 7 + salt) % 256 for i in range(n))


async def main(port, key):
    report = {}
    async with asyncssh.connect(
        "127.0.0.1",
        port,
        username="test",
        client_keys=[key],
        known_hosts=None,
        agent_path=None,
        config=None,
        preferred_auth="publickey",
        connect_timeout=10,
    ) as conn:
        report["server_version"] = conn.get_extra_info("server_version")
        report["ciphers"] = [
            conn.get_extra_info("send_cipher"),
            conn.get_extra_info("recv_cipher"),
        ]
        report["host_key"] = conn.get_server_host_key().get_algorithm()

        # exec: output and exit status.
        report["echo"] = result(await conn.run("echo hi", check=False))
        report["exits"] = {
            cmd: result(await conn.run(cmd, check=False))
            for cmd in ["true", "false", "exit 3", "nosuch"]
        }

        # stdin with EOF to cat: the echo must be byte-identical.
        data = pattern(100_000, 0)
        r = await conn.run("cat", input=data, encoding=None, check=False)
        report["cat"] = {
            "sent": digest(data),
            "received": digest(r.stdout),
            "exit_status": r.exit_status,
        }

        # More than the window into sink: needs several WINDOW_ADJUSTs.
        size = 2 * 1024 * 1024
        r = await conn.run("sink", input="x" * size, check=False)
        report["sink"] = {"sent": size, **result(r)}

        # Two channels open at once on this connection, fed interleaved.
        p1 = await conn.create_process("cat", encoding=None)
        p2 = await conn.create_process("cat", encoding=None)
        a, b = pattern(50_000, 1), pattern(30_000, 2)
        for i in range(0, max(len(a), len(b)), 4096):
            p1.stdin.write(a[i : i + 4096])
            p2.stdin.write(b[i : i + 4096])
        p1.stdin.write_eof()
        p2.stdin.write_eof()
        out1, out2 = await asyncio.gather(p1.stdout.read(), p2.stdout.read())
        r1, r2 = await asyncio.gather(p1.wait(), p2.wait())
        report["two_channels"] = [
            {"sent": digest(a), "received": digest(out1), "exit_status": r1.exit_status},
            {"sent": digest(b), "received": digest(out2), "exit_status": r2.exit_status},
        ]
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
