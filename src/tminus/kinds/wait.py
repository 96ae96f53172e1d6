"""`wait`: repeat a nested check until it passes or the step's timeout runs out."""

from __future__ import annotations

import time
from collections.abc import Callable

from tminus.kinds.base import Effect, Observation, StepContext
from tminus.kinds.registry import register
from tminus.runbook.models import Step, WaitSpec

DEFAULT_TIMEOUT = 60.0


def describe(c: WaitSpec, step: Step, nested: Callable[[Step], str]) -> str:
    from tminus.durations import format_duration

    limit = format_duration(step.timeout) if step.timeout else f"{DEFAULT_TIMEOUT:g}s"
    return f"every {format_duration(c.interval)} up to {limit}: {nested(c.check)}"


@register("wait", config=WaitSpec, effect=Effect.NONE, describe=describe, queries=("attempts",))
def execute(config: WaitSpec, ctx: StepContext) -> Observation:
    if ctx.run_nested is None:
        return Observation(error="wait needs the engine's nested-step runner (StepContext.run_nested)")
    timeout = ctx.timeout if ctx.timeout is not None else DEFAULT_TIMEOUT
    start = time.monotonic()
    deadline = start + timeout
    attempts = 0
    summary = "no attempt made"
    last = Observation()
    while True:
        attempts += 1
        remaining = max(deadline - time.monotonic(), 0.0)
        passed, summary, last = ctx.run_nested(config.check, remaining)
        waited_ms = round((time.monotonic() - start) * 1000.0, 1)
        evidence = {"attempts": attempts, "waited_ms": waited_ms, "last": summary}
        if passed:
            return Observation(values={**last.values, "attempts": attempts}, outputs=last.outputs, evidence=evidence)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        # Sleep on the cancel event so an interrupted run stops waiting at once.
        if ctx.cancel.wait(min(config.interval, remaining)):
            return Observation(
                error=f"interrupted after {attempts} attempts (the run was cancelled)",
                evidence=evidence,
            )
        if time.monotonic() >= deadline:
            break
    evidence = {
        "attempts": attempts,
        "waited_ms": round((time.monotonic() - start) * 1000.0, 1),
        "last": summary,
        "last_evidence": last.evidence,
    }
    return Observation(
        values={**last.values, "attempts": attempts},
        evidence=evidence,
        failures=[f"not ready after {attempts} attempts in {timeout:.1f}s; last: {summary}"],
    )
