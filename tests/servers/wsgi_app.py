"""A tiny WSGI release for real gunicorn: it names its version (env RELEASE) in `X-Release` and the body.

RELEASE=broken: `/healthz` answers 500 (it starts, but never becomes healthy).
RELEASE=crash: it exits at import (gunicorn cannot boot a worker and stops).
Every request is logged to stderr, so a test can read the log tail a failed start leaves as evidence.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

RELEASE = os.environ.get("RELEASE", "v1")

if RELEASE == "crash":
    print(f"release {RELEASE}: refusing to boot (simulated import error)", file=sys.stderr, flush=True)
    raise SystemExit(3)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    status = "200 OK"
    if path.startswith("/healthz") and RELEASE == "broken":
        status = "500 Internal Server Error"
    print(f"release {RELEASE}: {path} -> {status[:3]}", file=sys.stderr, flush=True)
    body = f"{RELEASE}\n".encode()
    start_response(status, [("Content-Type", "text/plain"), ("X-Release", RELEASE),
                            ("Content-Length", str(len(body)))])
    return [body]
