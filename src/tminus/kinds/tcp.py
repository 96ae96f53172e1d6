"""`tcp`: a port accepts a connection (open) or does not (closed)."""

from __future__ import annotations

import socket
import time

from tminus.kinds.base import Effect, Observation, StepContext
from tminus.kinds.registry import register
from tminus.runbook.models import TcpSpec

MAX_CONNECT_TIMEOUT = 5.0


def describe(c: TcpSpec, step: object, nested: object) -> str:
    return f"tcp {c.host}:{c.port} is {c.state}"


@register("tcp", config=TcpSpec, effect=Effect.NONE, describe=describe, queries=("open", "duration"))
def execute(config: TcpSpec, ctx: StepContext) -> Observation:
    try:
        port = int(config.port)
    except (TypeError, ValueError):
        return Observation(error=f"port {config.port!r} is not a number; expected 1-65535")
    if not 1 <= port <= 65535:
        return Observation(error=f"port {port} is out of range; expected 1-65535")
    timeout = min(ctx.timeout or MAX_CONNECT_TIMEOUT, MAX_CONNECT_TIMEOUT)
    address = f"{config.host}:{port}"
    start = time.perf_counter()
    reason = "accepted a connection"
    try:
        with socket.create_connection((config.host, port), timeout=timeout):
            is_open = True
    except socket.gaierror as exc:
        return Observation(error=f"cannot resolve host {config.host!r}: {exc.strerror or exc}")
    except TimeoutError:
        # Nothing answered (a filtering firewall): the port does not accept connections.
        is_open, reason = False, f"no answer within {timeout:.1f}s"
    except OSError as exc:  # refused, host or network unreachable
        is_open, reason = False, exc.strerror or str(exc)
    duration_ms = (time.perf_counter() - start) * 1000.0

    failures: list[str] = []
    if config.state == "open" and not is_open:
        failures.append(f"{address} is not open: {reason}")
    elif config.state == "closed" and is_open:
        failures.append(f"{address} should be closed but accepted a connection")
    evidence = {
        "address": address,
        "expected": config.state,
        "open": is_open,
        "reason": reason,
        "duration_ms": round(duration_ms, 1),
    }
    return Observation(values={"open": is_open, "duration": duration_ms}, evidence=evidence, failures=failures)
