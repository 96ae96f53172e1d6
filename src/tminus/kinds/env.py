"""`env`: environment variables present, absent, equal or not equal to a value.

Values may be secrets: failures and evidence name variables, never their values.
"""

from __future__ import annotations

from tminus.kinds.base import Effect, Observation, StepContext
from tminus.kinds.registry import register
from tminus.runbook.models import EnvSpec


def describe(c: EnvSpec, step: object, nested: object) -> str:
    parts = [f"present {c.present}"] if c.present else []
    parts += [f"absent {c.absent}"] if c.absent else []
    parts += [f"{k} not in forbidden values" for k in c.not_equal]
    parts += [f"{k} equals expected" for k in c.equals]
    return "env " + "; ".join(parts)


@register("env", config=EnvSpec, effect=Effect.NONE, describe=describe, queries=("failed", "ok"))
def execute(config: EnvSpec, ctx: StepContext) -> Observation:
    environ = ctx.environ
    failures: list[str] = []
    failed: list[str] = []

    def fail(name: str, message: str) -> None:
        failures.append(f"{name} {message}")
        if name not in failed:
            failed.append(name)

    for name in config.present:
        if name not in environ:
            fail(name, "is not set; export it before running")
        elif environ[name] == "":
            fail(name, "is set but empty")
    for name in config.absent:
        if name in environ:
            fail(name, "is set but must be absent; unset it")
    for name, expected in config.equals.items():
        if name not in environ:
            fail(name, "is not set (it must have a specific value)")
        elif environ[name] != expected:
            fail(name, "does not have the expected value")
    for name, forbidden in config.not_equal.items():
        values = [forbidden] if isinstance(forbidden, str) else forbidden
        if name in environ and environ[name] in values:
            fail(name, "is set to a forbidden value")

    evidence = {
        "present": config.present,
        "absent": config.absent,
        "equals": sorted(config.equals),
        "not_equal": sorted(config.not_equal),
        "failed": failed,
    }
    return Observation(values={"ok": not failed, "failed": failed}, evidence=evidence, failures=failures)
