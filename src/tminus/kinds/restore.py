"""`restore`: replace a database with a checksummed backup, all or nothing."""

from __future__ import annotations

from typing import Any

from tminus.kinds.base import Effect, Observation, StepContext
from tminus.kinds.registry import register
from tminus.kinds.sql import SQL_ENGINES
from tminus.runbook.models import RestoreSpec


def describe(c: RestoreSpec, step: object, nested: object) -> str:
    from tminus.db import pgtools

    return f"restore {pgtools.mask_url(c.url)} from {c.file} (replaces the database)"


@register("restore", config=RestoreSpec, effect=Effect.IRREVERSIBLE, describe=describe, resources=(SQL_ENGINES,),
          queries=("restored", "seconds"))
def execute(config: RestoreSpec, ctx: StepContext) -> Observation:
    from tminus.db import pgtools
    from tminus.db.restore import restore
    from tminus.errors import TminusError

    file = ctx.base_dir / config.file
    evidence: dict[str, Any] = {"url": pgtools.mask_url(config.url), "file": str(file)}
    # Pooled connections of earlier sql steps would be terminated by the swap; close them
    # cleanly now, the engines reconnect on next use.
    for engine in ctx.shared.get("sql.engines", {}).values():
        engine.dispose()
    try:
        result = restore(pgtools.resolve_url(config.url, ctx.base_dir), file, sha256=config.sha256,
                         base_dir=ctx.base_dir, timeout=ctx.timeout)
    except TminusError as exc:
        return Observation(values={"restored": False}, outputs={"restored": False}, error=str(exc),
                           evidence=evidence)
    values = {"restored": True, "seconds": result.seconds}
    evidence.update(result.as_dict())
    return Observation(values=values, outputs=dict(values), evidence=evidence)
