"""A `run` step whose tminus was killed, not the step: its process group survives (it leads its own
session) and writes its output and exit status to its spool (spool.py). Resume finds it here, and,
once it ended, judges the execution from what it left instead of running the command a second time."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tminus.kinds.base import Execution, Observation, StepContext, Survivor
from tminus.kinds.spool import read_status, read_text
from tminus.kinds.transport import Transport

ADOPTED = "adopted on resume: the command outlived the killed tminus and was judged from its spooled output"


def last_process(execution: Execution) -> dict[str, Any] | None:
    """The execution's last `process` effect: earlier attempts' groups had ended before the next began."""
    spawned = [e for e in execution.effects if e.get("effect") == "process"]
    return spawned[-1] if spawned else None


def survivor(execution: Execution, transport: Transport) -> Survivor | None:
    last = last_process(execution)
    if last is None or "pgid" not in last:
        return None
    pgid = int(last["pgid"])
    if not transport.group_running(pgid, last.get("started")):
        return None
    at = last.get("at")
    return Survivor(execution.key, pgid, int(last.get("pid", pgid)), last.get("started"),
                    str(last.get("command", "?")), float(at) if isinstance(at, int | float) else None,
                    last.get("status"))


def adopted(execution: Execution, ctx: StepContext,
            observed: Callable[..., Observation]) -> Observation | None:
    """The command's result from its spool; None when it left no exit status (killed, or no spool)."""
    last = last_process(execution)
    if last is None or not last.get("status"):
        return None
    code = read_status(last["status"])
    if code is None:
        return None
    at = last.get("at")
    try:
        ended = os.stat(last["status"]).st_mtime
        duration_ms = max(0.0, ended - float(at)) * 1000 if isinstance(at, int | float) else 0.0
    except OSError:
        duration_ms = 0.0
    return observed(ctx, str(last.get("command", "?")), int(last.get("pid", last["pgid"])), code,
                    read_text(last.get("stdout", "")), read_text(last.get("stderr", "")), duration_ms, ADOPTED)
