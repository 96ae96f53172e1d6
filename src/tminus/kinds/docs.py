"""`docs`: a runbook's committed Markdown page (`tminus docs`) is current.

A kind never imports the engine or the CLI (docs/architecture.md), and the page is built from the
engine's plan, so the check runs `python -m tminus docs RUNBOOK -e ENV --check FILE` as a process, as
a `run` step would, and judges its exit status: 0 current, 1 drifted (the diff is the evidence),
anything else could not check (a missing page, an invalid runbook). It reads files and changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

from tminus.durations import format_duration
from tminus.kinds.base import Effect, Observation, StepContext
from tminus.kinds.registry import register
from tminus.runbook import roots
from tminus.runbook.models import DocsSpec

DEFAULT_TIMEOUT = 120.0  # rendering a page takes about a second; a step's `timeout:` overrides
DIFF_EVIDENCE = 6000  # characters of the diff kept as evidence (its start: the first change first)
CHANGED_IN_MESSAGE = 6  # changed lines quoted in the failure


def describe(c: DocsSpec, step: object, nested: object) -> str:
    of = c.runbook or "this runbook"
    env = f" -e {c.environment}" if c.environment else ""
    return f"docs {c.file} is current (tminus docs {of}{env})"


@register("docs", config=DocsSpec, effect=Effect.NONE, describe=describe,
          queries=("current", "exit_code", "diff", "stdout", "stderr"))
def execute(config: DocsSpec, ctx: StepContext) -> Observation:
    try:
        page = roots.confine(config.file, ctx.base_dir, ctx.roots, what="the docs file")
        if config.runbook is not None:
            runbook = roots.confine(config.runbook, ctx.base_dir, ctx.roots, what="the runbook")
        elif ctx.runbook_path is not None:
            runbook = ctx.runbook_path.resolve()
        else:
            return Observation(error="no runbook to render: outside a run, give `runbook:`",
                               evidence={"file": config.file})
    except roots.OutsideRoots as exc:
        return Observation(error=str(exc), evidence={"file": config.file})
    environment = config.environment or ctx.environment or "default"
    argv = [sys.executable, "-m", "tminus", "docs", str(runbook), "-e", environment, "--check", str(page)]
    for name, value in config.vars.items():
        argv += ["--var", f"{name}={_text(value)}"]
    shown = " ".join(["tminus", *argv[3:]])
    evidence: dict[str, Any] = {"command": shown, "file": str(page), "runbook": str(runbook),
                                "environment": environment}
    env = {**ctx.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("TMINUS_CONFIG", None)  # the page must not depend on a settings file: -e says the environment
    try:
        proc = ctx.transport.spawn(argv, cwd=ctx.base_dir, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        return Observation(error=f"could not start {sys.executable}: {exc.strerror or exc}", evidence=evidence)
    out, err, stopped = _wait(proc, ctx)
    if stopped is not None:
        return Observation(error=stopped, timed_out=stopped.startswith("timed out"), evidence=evidence)
    stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    code = proc.returncode
    evidence |= {"exit_code": code, "current": code == 0}
    values: dict[str, Any] = {"current": code == 0, "exit_code": code, "diff": "", "stdout": stdout,
                              "stderr": stderr}
    failures: list[str] = []
    if code == 1 and stdout.startswith("---"):
        values["diff"] = stdout
        evidence["diff"] = ctx.head(stdout, DIFF_EVIDENCE)
        of = config.runbook or runbook.name
        failures.append(f"{config.file} drifted from the runbook ({environment}): "
                        f"{_changes(ctx.masker.mask(stdout))}; regenerate with: "
                        f"tminus docs {of} -e {environment} -o {config.file}")
    elif code != 0:
        evidence["stderr"] = ctx.tail(stderr)
        said = " ".join(stderr.split()) or f"exit {code}"
        failures.append(f"could not check {config.file}: {ctx.head(said, 600)}")
    else:
        evidence["stdout"] = ctx.tail(stdout.strip())
    return Observation(values=values, evidence=evidence, failures=failures)


def _wait(proc: subprocess.Popen[bytes], ctx: StepContext) -> tuple[bytes, bytes, str | None]:
    """The child's output once it ends; its process group killed on cancel or timeout."""
    limit = ctx.timeout if ctx.timeout is not None else DEFAULT_TIMEOUT
    deadline = time.monotonic() + limit
    while True:
        try:
            out, err = proc.communicate(timeout=0.1)
            return out, err, None
        except subprocess.TimeoutExpired:
            pass
        stopped = None
        if ctx.cancel.is_set():
            stopped = "interrupted (the run was cancelled)"
        elif time.monotonic() > deadline:
            stopped = f"timed out after {format_duration(limit)} rendering the page"
        if stopped is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return b"", b"", stopped


def _changes(diff: str) -> str:
    """The first changed lines of a unified diff, in words."""
    lines = [line for line in diff.splitlines()
             if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    quoted = "; ".join(repr(line[:160]) for line in lines[:CHANGED_IN_MESSAGE])
    more = f" (and {len(lines) - CHANGED_IN_MESSAGE} more)" if len(lines) > CHANGED_IN_MESSAGE else ""
    return f"{len(lines)} changed line(s): {quoted}{more}"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

