"""The loopback HTTP server the issue-15 HTTP case checks against, and the two programs it is compared
with: a raw asyncio client (the floor: what 200 requests cost with nothing but the standard library)
and httpx sequential (the peer: a plain script with the library tminus uses).

The server is asyncio, HTTP/1.1 keep-alive, one small JSON body, in its own process (`python
loopback.py --serve` prints its port and serves until its stdin closes, or SERVER_LIFETIME passes),
so it never competes for the measured program's GIL and costs little CPU per request.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

SERVER_LIFETIME = 1800.0  # seconds: the server exits by itself after this, whatever happens to its parent
BODY = b'{"ok": true, "service": "bench"}'
_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY
_CLOSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
          % len(BODY)) + BODY


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer every request on one connection until the client closes it (keep-alive)."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:  # a body we do not read would be taken for the next request
                await reader.readexactly(int(lower[at + 17:lower.index(b"\r\n", at + 2)]))
            close = b"\r\nconnection: close" in lower
            writer.write(_CLOSE if close else _RESPONSE)
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def _serve(lifetime: float) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    server = await asyncio.start_server(_answer, "127.0.0.1", 0, backlog=256)
    print(server.sockets[0].getsockname()[1], flush=True)

    def watch_stdin() -> None:
        sys.stdin.read()  # returns when the parent closes the pipe or dies
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    async with server:
        with suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), lifetime)


@contextmanager
def loopback_server() -> Iterator[int]:
    """The server in its own process for the duration of the block: its port."""
    from common import spawned_server

    with spawned_server(Path(__file__).resolve()) as (port, _pid):
        yield port


# The floor: one keep-alive connection, the request written by hand, each answer's status and JSON
# body checked like tminus's `status == 200` and `jsonpath "$.ok" == true`. argv: port, count.
RAW_ASYNCIO_CLIENT = r"""
import asyncio, json, sys

async def main(port, count):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = ("GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: */*\r\n\r\n" % port).encode()
    for _ in range(count):
        writer.write(request)
        head = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status = int(head[0].split()[1])
        length = next(int(h.split(b":", 1)[1]) for h in head[1:] if h.lower().startswith(b"content-length:"))
        body = json.loads(await reader.readexactly(length))
        if status != 200 or body.get("ok") is not True:
            sys.exit("unexpected answer: %s %r" % (status, body))
    writer.close()
    await writer.wait_closed()

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""

# The peer: httpx's client, sequential, one connection pool. argv: port, count.
HTTPX_SEQUENTIAL = r"""
import sys, httpx

port, count = int(sys.argv[1]), int(sys.argv[2])
with httpx.Client() as client:
    for _ in range(count):
        answer = client.get("http://127.0.0.1:%d/health" % port)
        if answer.status_code != 200 or answer.json().get("ok") is not True:
            sys.exit("unexpected answer: %s" % answer.status_code)
"""


if __name__ == "__main__":
    if sys.argv[1:] != ["--serve"]:
        sys.exit("usage: loopback.py --serve (the benchmark starts it)")
    asyncio.run(_serve(SERVER_LIFETIME))
