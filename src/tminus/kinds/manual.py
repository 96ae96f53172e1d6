"""`manual`: an operator confirms something only a person can do."""

from __future__ import annotations

from tminus.kinds.base import Effect, Observation, StepContext
from tminus.kinds.registry import register
from tminus.runbook.models import ManualSpec


def describe(c: ManualSpec, step: object, nested: object) -> str:
    return f"operator confirms: {c.prompt}"


@register("manual", config=ManualSpec, effect=Effect.NONE, describe=describe, queries=("approved", "by", "how"))
def execute(config: ManualSpec, ctx: StepContext) -> Observation:
    if ctx.approvals is None:
        return Observation(
            error="no way to ask an operator (no terminal and no approvals channel); "
            "run interactively, approve with `tminus approve` from another terminal, or pass --yes"
        )
    approval = ctx.approvals.request(ctx.step.key, config.prompt, config.instructions, ctx.timeout)
    evidence = {
        "prompt": config.prompt,
        "approved": approval.approved,
        "by": approval.by,
        "how": approval.how,
        "at": approval.at,
        "reason": approval.reason,
    }
    values = {"approved": approval.approved, "by": approval.by, "how": approval.how}
    failures: list[str] = []
    if not approval.approved:
        failures.append(f"not confirmed by {approval.by} ({approval.how}): {approval.reason or 'no reason given'}")
    return Observation(
        values=values,
        outputs={"by": approval.by, "reason": approval.reason},
        evidence=evidence,
        failures=failures,
    )
