"""What the stand-ins share: where state lives, the database and Redis, tiny clients (stdlib + psycopg)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STATE = Path(os.environ.get("DEVMATRIX_STATE", HERE / "state"))
DB_URL = os.environ.get("DEVMATRIX_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/devmatrix")
REDIS_URL = os.environ.get("DEVMATRIX_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("DEVMATRIX_QUEUE", "celery")
PORT = int(os.environ.get("DEVMATRIX_PORT", "8000"))


def db() -> Any:
    import psycopg

    return psycopg.connect(DB_URL.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True)


def redis(*words: str) -> Any:
    """One command over RESP (enough for PING, LLEN, RPOP, LPUSH); the reply as str, int or None."""
    rest = REDIS_URL.split("://", 1)[1]
    hostport, _, number = rest.partition("/")
    host, _, port = hostport.partition(":")
    with socket.create_connection((host, int(port or 6379)), timeout=2) as sock:
        def send(parts: tuple[str, ...]) -> bytes:
            sock.sendall(b"".join([f"*{len(parts)}\r\n".encode()] + [f"${len(p.encode())}\r\n{p}\r\n".encode() for p in parts]))
            return sock.recv(65536)
        send(("SELECT", number or "0"))
        reply = send(words)
    kind, body = reply[:1], reply[1:].split(b"\r\n")
    if kind == b":":
        return int(body[0])
    if kind == b"$":
        return None if body[0] == b"-1" else body[1].decode()
    if kind == b"-":
        raise RuntimeError(body[0].decode())
    return body[0].decode()
