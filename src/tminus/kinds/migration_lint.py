"""`migration_lint`: a gate check that fails on risky migration statements (see tminus.db.lint)."""

from __future__ import annotations

from typing import Any

from tminus.kinds.base import Effect, Observation, StepContext
from tminus.kinds.registry import register
from tminus.runbook.models import MigrationLintSpec

MAX_EVIDENCE = 50  # findings kept in the ledger; values keep them all


def describe(c: MigrationLintSpec, step: object, nested: object) -> str:
    ignored = f" (ignoring {', '.join(c.ignore)})" if c.ignore else ""
    return f"lint the migrations in {c.dir}{ignored}"


@register("migration_lint", config=MigrationLintSpec, effect=Effect.NONE, describe=describe,
          queries=("count", "findings"), imports=("tminus.db.lint",))
def execute(config: MigrationLintSpec, ctx: StepContext) -> Observation:
    from tminus.db.lint import lint_directory, migration_files

    directory = ctx.base_dir / config.dir
    try:
        files = migration_files(directory)
        findings = lint_directory(directory, ignore=config.ignore)
    except FileNotFoundError:
        return Observation(error=f"migrations directory {config.dir} does not exist (looked in {directory})")
    except ValueError as exc:  # an unknown rule id in `ignore`
        return Observation(error=str(exc))
    except OSError as exc:
        return Observation(error=f"cannot read migrations in {config.dir}: {exc.strerror or exc}")

    found = [f.to_dict() for f in findings]
    values: dict[str, Any] = {"count": len(found), "findings": found}
    evidence: dict[str, Any] = {
        "dir": config.dir,
        "files": len(files),
        "ignore": list(config.ignore),
        "count": len(found),
        "findings": found[:MAX_EVIDENCE],
    }
    return Observation(
        values=values,
        outputs={"count": len(found), "findings": found},
        evidence=evidence,
        failures=[f.format() for f in findings],
    )
