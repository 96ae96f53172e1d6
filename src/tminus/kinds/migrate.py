"""`migrate`: apply or revert the SQL migrations of a directory (tminus.db.migrations), or drive
Alembic under the same migration lock."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tminus.kinds.base import Observation, StepContext, tail
from tminus.kinds.registry import register
from tminus.spec.models import MigrateSpec


@register("migrate", queries=("before", "after", "applied", "reverted", "count", "duration"))
def execute(config: MigrateSpec, ctx: StepContext) -> Observation:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    from tminus.db.migrations import MigrationError, MigrationFailed, Migrator, default_operator

    try:
        url = _resolve_url(config.url, ctx.base_dir)
    except (ArgumentError, NoSuchModuleError) as exc:
        return Observation(error=f"bad database URL {config.url!r}: {exc}")
    migrator = Migrator(
        url, ctx.base_dir / (config.dir or "."), table=config.table, lock_timeout=config.lock_timeout,
        statement_timeout=config.statement_timeout, lock_retries=config.lock_retries,
        lock_wait=config.lock_wait, operator=ctx.environ.get("TMINUS_OPERATOR") or default_operator(),
    )
    evidence: dict[str, Any] = {"url": _safe(url), "dry_run": config.dry_run}
    start = time.perf_counter()
    try:
        if config.alembic is not None:
            return _alembic(config, ctx, migrator, evidence)
        evidence["dir"] = str(migrator.directory)
        if config.revert_to is not None:
            out = migrator.revert(config.revert_to, dry_run=config.dry_run)
        else:
            out = migrator.migrate(config.to, dry_run=config.dry_run)
    except MigrationError as exc:
        if isinstance(exc, MigrationFailed):
            evidence.update(failed_version=exc.version, failed_statement=exc.statement)
        return Observation(error=str(exc), evidence=evidence)
    except (SQLAlchemyError, ArgumentError, NoSuchModuleError) as exc:
        return Observation(error=f"database error: {getattr(exc, 'orig', None) or exc}", evidence=evidence)
    finally:
        migrator.close()
    duration = round((time.perf_counter() - start) * 1000, 1)
    versions = out.versions
    applied = [] if out.action == "revert" else versions
    reverted = versions if out.action == "revert" else []
    evidence.update(
        action=out.action, before=out.before, after=out.after, duration_ms=duration,
        versions=[{"version": d.version, "file": Path(d.file).name, "statements": d.statements,
                   "duration_ms": None if d.duration_ms is None else round(d.duration_ms, 1),
                   "resumed_from": d.resumed_from} for d in out.done],
    )
    outputs = {"before": out.before, "after": out.after, "applied": applied, "reverted": reverted}
    values = {**outputs, "count": len(versions), "duration": duration}
    return Observation(values=values, outputs=outputs, evidence=evidence)


def _resolve_url(url: str, base_dir: Path) -> str:
    """Relative SQLite paths are relative to the runbook's folder, as for the `sql` kind."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database or ""
        if db and db != ":memory:" and not db.startswith("file:") and not Path(db).is_absolute():
            parsed = parsed.set(database=str(base_dir / db))
    return parsed.render_as_string(hide_password=False)


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _alembic(config: MigrateSpec, ctx: StepContext, migrator: Any, evidence: dict[str, Any]) -> Observation:
    """`alembic upgrade/downgrade` as a subprocess, holding the migration lock so a tminus migrator
    and Alembic never interleave; before/after come from `alembic current`."""
    import importlib.util

    from tminus.db.migrations_lock import migration_lock

    if importlib.util.find_spec("alembic") is None:
        return Observation(error="alembic is not installed in this environment; install it (pip install alembic)"
                                 " next to tminus, or use 'dir' with plain SQL files", evidence=evidence)
    assert config.alembic is not None
    ini = str(ctx.base_dir / config.alembic)
    evidence["alembic"] = ini

    def alembic(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "alembic", "-c", ini, *args], capture_output=True, text=True,
                              cwd=ctx.base_dir, env=dict(ctx.environ) or None, timeout=ctx.timeout, check=False)

    def current() -> str:
        proc = alembic("current")
        heads = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
        return heads[0] if heads else ""

    cmd = ["downgrade", config.revert_to] if config.revert_to is not None else ["upgrade", config.to or "head"]
    if config.dry_run:
        cmd.append("--sql")  # offline mode: prints the SQL, changes nothing
    me = f"tminus migrate {migrator.operator}@{migrator.host} (alembic)"
    with migration_lock(migrator.engine, migrator.tables, config.lock_wait, me):
        before = current()
        proc = alembic(*cmd)
        after = current()
    evidence.update(command=["alembic", *cmd], exit_code=proc.returncode, stdout=tail(proc.stdout),
                    stderr=tail(proc.stderr), before=before, after=after)
    if proc.returncode != 0:
        return Observation(error=f"alembic {' '.join(cmd)} failed (exit {proc.returncode}): "
                                 f"{tail(proc.stderr.strip() or proc.stdout.strip(), 500)}", evidence=evidence)
    outputs = {"before": before, "after": after, "applied": [] if config.revert_to else [after] * (before != after),
               "reverted": [before] * (before != after) if config.revert_to else []}
    return Observation(values={**outputs, "count": int(before != after)}, outputs=outputs, evidence=evidence)
