"""A migration tool (the Alembic driver, Django's manage.py) run in its own process group for the
`migrate` kind: recorded as the step's `process` effect before it is waited for, so a tminus killed
with kill -9 leaves a record that resume acts on (`kinds.run.recover` ends the group first: it would
go on migrating while the rollback reverts). A stop of the run (Ctrl-C, a rollback asked for) ends it
too. The migration it was applying rolls back with its transaction."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path

from tminus.kinds.base import StepContext

SLICE = 0.1  # seconds between looks at the stop channel while the tool runs


def run_group(ctx: StepContext, argv: list[str], env: dict[str, str], cwd: Path, label: str,
              deadline: float | None) -> tuple[str, str, int | None]:
    """(stdout, stderr, exit code); exit code None when the run's stop channel ended it. Raises
    subprocess.TimeoutExpired (with the output so far) past `deadline` (time.monotonic())."""
    proc = ctx.transport.spawn(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        ctx.record_effect("process", pgid=proc.pid, pid=proc.pid, started=ctx.transport.process_identity(proc.pid),
                          command=label)
        while True:
            try:
                out, err = proc.communicate(timeout=SLICE)
                break
            except subprocess.TimeoutExpired:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                if ctx.cancel.is_set():
                    end_group(proc)
                    out, err = proc.communicate()
                    return out.decode(errors="replace"), err.decode(errors="replace"), None
    except BaseException as exc:  # the timeout, or a failure to record: it must not outlive the step
        end_group(proc)
        out, err = proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise subprocess.TimeoutExpired(proc.args, ctx.timeout or 0, out, err) from None
        raise
    return out.decode(errors="replace"), err.decode(errors="replace"), proc.returncode


def end_group(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # a migration cut short: its transaction rolls back


def text(data: str | bytes | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""
