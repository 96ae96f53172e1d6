"""`backup`: a verified backup (checksum, readable, optionally a restore drill) with rotation."""

from __future__ import annotations

from typing import Any

from tminus.kinds.base import Effect, Observation, StepContext
from tminus.kinds.registry import register
from tminus.runbook.models import BackupSpec


def describe(c: BackupSpec, step: object, nested: object) -> str:
    from tminus.db import pgtools

    keep = f", keep {c.keep}" if c.keep else ""
    drill = ", restore drill" if c.drill else ""
    return f"back up {pgtools.mask_url(c.url)} into {c.dir}{keep}{drill}"


@register("backup", config=BackupSpec, effect=Effect.ADDITIVE, describe=describe,
          queries=("path", "sha256", "bytes", "verified", "drill_seconds"), imports=("tminus.db.backup",))
def execute(config: BackupSpec, ctx: StepContext) -> Observation:
    from tminus.db import pgtools
    from tminus.db.backup import backup
    from tminus.errors import TminusError

    label = config.label or ctx.environ.get("TMINUS_ENVIRONMENT") or "default"
    evidence: dict[str, Any] = {"url": pgtools.mask_url(config.url), "dir": config.dir, "label": label}
    try:
        result = backup(pgtools.resolve_url(config.url, ctx.base_dir), ctx.base_dir / config.dir, label=label,
                        keep=config.keep, drill=config.drill, base_dir=ctx.base_dir, timeout=ctx.timeout)
    except TminusError as exc:
        return Observation(error=str(exc), evidence=evidence)
    data = result.as_dict()
    values = {k: data[k] for k in ("path", "sha256", "bytes", "verified", "drill_seconds")}
    evidence.update(data)
    return Observation(values=values, outputs=dict(values), evidence=evidence)
