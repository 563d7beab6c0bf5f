"""A client that ignores the server's channel window: it opens an exec
channel to `sleep 20` (which reads no stdin, so no credit comes back),
tells asyncssh the window is 1 GiB, sends 8 MiB and waits for the
connection to end. Prints one JSON line: the window the server granted and
how the connection ended.

Usage: window_ignorer.py PORT KEY
"""

import asyncio
import json
import sys

import asyncssh


class Client(asyncssh.SSHClient):
    """Keeps why the connection was lost."""

    lost = None

    def connection_lost(self, exc):
        Client.lost = exc


async def main(port, key):
    result = {"granted": None, "ended": None}
    conn, _ = await asyncssh.create_connection(
        Client, "127.0.0.1", port, username="user", client_keys=[key],
        known_hosts=None, agent_path=None, config=None,
        preferred_auth="publickey", connect_timeout=10,
    )
    try:
        chan, _ = await conn.create_session(
            asyncssh.SSHClientSession, "sleep 20", encoding=None
        )
        result["granted"] = chan._send_window
        # Pretend the server granted far more than it did.
        chan._send_window = 1 << 30
        for _ in range(128):
            try:
                chan.write(bytes(64 << 10))
            except BrokenPipeError:
                break
            await asyncio.sleep(0)
        await asyncio.wait_for(conn.wait_closed(), 30)
        lost = Client.lost
        if isinstance(lost, asyncssh.DisconnectError):
            result["ended"] = f"disconnect: {lost.reason}"
        else:
            result["ended"] = f"closed: {lost!r}"
    except (asyncssh.Error, OSError, asyncio.TimeoutError) as e:
        result["ended"] = f"{type(e).__name__}: {e}"
    print(json.dumps(result))


asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
