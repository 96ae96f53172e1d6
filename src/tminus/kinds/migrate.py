"""`migrate`: apply or revert the SQL migrations of a directory (tminus.db.migrations), or drive
Alembic or Django (kinds.migrate_django) under the same migration lock."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tminus.kinds import migrate_django
from tminus.kinds.base import AUTO_UNDO, SQLALCHEMY_IMPORTS, Effect, Execution, Observation, StepContext
from tminus.kinds.migrate_process import run_group, text
from tminus.kinds.registry import register
from tminus.kinds.run import recover as end_process_group  # an Alembic driver left by a killed run
from tminus.runbook.models import MigrateSpec, Step

REVERT_TARGET = "revert_target"  # the effect: the version to revert to


def describe(c: MigrateSpec, step: object, nested: object) -> str:
    if c.django is not None:
        return f"{migrate_django.describe(c)} on {_safe_text(c.url)}{' (dry run)' if c.dry_run else ''}"
    source = f"alembic {c.alembic}" if c.alembic is not None else f"migrations in {c.dir}"
    if c.columns is not None:
        mapping = ", ".join(f"{k}={v}" for k, v in c.columns.model_dump(exclude_none=True).items())
        source += f" tracked in {c.table} (adopted: {mapping})"
    if c.revert_to is not None:
        what = f"revert {source} down to {c.revert_to}"
    else:
        what = f"apply {source} up to {c.to or 'the latest'}"
    return f"{what} on {_safe_text(c.url)}{' (dry run)' if c.dry_run else ''}"


def derive_undo(step: Step, execution: Execution) -> list[Step] | None:
    """The revert to the version the step found before it applied anything: recorded as an effect
    before the first migration ran (so a step killed mid-apply is reverted too), else as reported
    by a step that finished (an older ledger, or a revert step)."""
    config = step.migrate
    assert config is not None
    if config.dry_run:  # a dry run changed nothing
        return None
    if config.django is not None:
        return migrate_django.derive_undo(step, execution)
    effect = execution.first(REVERT_TARGET)
    before = effect.get("before") if effect is not None else None
    if before is None:
        # A step that failed may still have applied versions before the failing one: where it
        # started can then be in its evidence only.
        before = execution.outputs.get("before", execution.evidence.get("before"))
    if before is None:  # it never reported where it started: nothing safe to revert to
        return None
    data = config.model_dump(mode="json", exclude_none=True)
    # "" is "nothing applied": "0" for tminus' own migrator, "base" for Alembic
    nothing = "base" if config.alembic is not None else "0"
    data.update({"revert_to": before or nothing, "dry_run": False})
    data.pop("to", None)
    if effect is not None and effect.get("schema") is not None:  # what the downgrade is proven against
        data["schema_before"] = effect["schema"]
    undo = Step.model_validate({"name": f"revert: {step.title}", "migrate": data, "timeout": step.timeout})
    undo._path = step.path
    undo._key = f"{step.key}{AUTO_UNDO}"
    return [undo]


@register("migrate", config=MigrateSpec, effect=Effect.REVERSIBLE, describe=describe, derive_undo=derive_undo,
          recover=end_process_group, queries=("before", "after", "applied", "reverted", "count", "duration"),
          imports=(*SQLALCHEMY_IMPORTS, "tminus.db.migrations", "tminus.db.migrations.proof",
                   "tminus.db.alembic_driver"))
def execute(config: MigrateSpec, ctx: StepContext) -> Observation:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    from tminus.db.migrations import MigrationError, MigrationFailed, Migrator
    from tminus.db.migrations.proof import SchemaLeftover

    try:
        url = _resolve_url(config.url, ctx.base_dir)
    except (ArgumentError, NoSuchModuleError) as exc:
        return Observation(error=f"bad database URL {config.url!r}: {exc}")
    from tminus.db.migrations.adopt import Columns

    columns = None if config.columns is None else Columns(**config.columns.model_dump())
    migrator = Migrator(
        url, ctx.base_dir / (config.dir or "."), table=config.table, columns=columns,
        lock_timeout=config.lock_timeout,
        statement_timeout=config.statement_timeout, lock_retries=config.lock_retries,
        lock_wait=config.lock_wait, operator=_operator(ctx),
        on_start=lambda plan: ctx.record_effect(
            REVERT_TARGET, before=_first_before(ctx, plan.before), versions=[d.version for d in plan.done],
            url=_safe(url)),
    )
    evidence: dict[str, Any] = {"url": _safe(url), "dry_run": config.dry_run}
    start = time.perf_counter()
    try:
        if config.alembic is not None:
            return _alembic(config, ctx, migrator, evidence)
        if config.django is not None:
            return migrate_django.execute(config, ctx, migrator, evidence)
        evidence["dir"] = str(migrator.directory)
        if columns is not None:  # an adopted table: where its rows went, and tminus's beside them
            evidence["adopted"] = {"table": config.table, "columns": columns.mapped(), "side": migrator.tables.own}
        if config.revert_to is not None:
            out = migrator.revert(config.revert_to, dry_run=config.dry_run)
        else:
            out = migrator.migrate(config.to, dry_run=config.dry_run)
    except (MigrationError, SQLAlchemyError, ArgumentError, NoSuchModuleError) as exc:
        if isinstance(exc, MigrationFailed):
            evidence.update(failed_version=exc.version, failed_statement=exc.statement)
        if isinstance(exc, SchemaLeftover):  # what the revert left: each object, named
            evidence["leftovers"] = [d.as_dict() for d in exc.differences]
        if migrator.progress is not None and migrator.progress.action == "revert":
            evidence["proofs"] = {d.version: d.proof for d in migrator.progress.done}
        partial = _partial(ctx, migrator.progress)
        evidence.update(partial)
        cause = exc if isinstance(exc, MigrationError) else f"database error: {getattr(exc, 'orig', None) or exc}"
        # Outputs are for later steps and belong to a step that passed: what a failed one did up to
        # its failure goes to the evidence, where the rollback reads it.
        return Observation(error=str(cause), evidence=evidence)
    finally:
        migrator.close()
    duration = round((time.perf_counter() - start) * 1000, 1)
    versions = out.versions
    applied = [] if out.action == "revert" else versions
    reverted = versions if out.action == "revert" else []
    before = out.before if out.dry_run else _first_before(ctx, out.before)
    evidence.update(
        action=out.action, before=before, after=out.after, duration_ms=duration,
        versions=[{"version": d.version, "file": Path(d.file).name, "statements": d.statements,
                   "duration_ms": None if d.duration_ms is None else round(d.duration_ms, 1),
                   "resumed_from": d.resumed_from,
                   **({"proof": d.proof} if d.proof is not None else {}),
                   "schema_ms": d.proof_ms} for d in out.done],
    )
    outputs = {"before": before, "after": out.after, "applied": applied, "reverted": reverted}
    values = {**outputs, "count": len(versions), "duration": duration}
    return Observation(values=values, outputs=outputs, evidence=evidence)


def _operator(ctx: StepContext) -> str:
    """Who runs the step, as recorded in the tracking tables: the run's --operator; TMINUS_OPERATOR
    (and the login name) when the kind runs outside a run."""
    from tminus.processes import default_operator

    return ctx.operator or ctx.environ.get("TMINUS_OPERATOR") or default_operator()


def _first_before(ctx: StepContext, before: str) -> str:
    """Where the step's first attempt started. A retried step's later attempts start where the
    earlier ones stopped; its revert must go back past what those applied too."""
    return str(ctx.shared.setdefault(f"migrate.before:{ctx.step.key}", before))


def _partial(ctx: StepContext, progress: Any) -> dict[str, Any]:
    """What a failed migrate or revert did before it failed (nothing when it failed before
    starting, e.g. on drift or the lock): later versions fail, earlier ones stay committed."""
    if progress is None:
        return {}
    versions = progress.versions
    migrate = progress.action == "migrate"
    return {"before": _first_before(ctx, progress.before), "after": progress.after,
            "applied": versions if migrate else [], "reverted": [] if migrate else versions}


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
    """`alembic upgrade/downgrade` in a subprocess (tminus.db.alembic_driver) against the step's `url`,
    holding the migration lock so a tminus migrator and Alembic never interleave."""
    import importlib.util

    from tminus.db.alembic_driver import MARKER, URL_VARIABLE
    from tminus.db.migrations.lock import migration_lock

    if importlib.util.find_spec("alembic") is None:
        return Observation(error="alembic is not installed in this environment; install it (pip install alembic)"
                                 " next to tminus, or use 'dir' with plain SQL files", evidence=evidence)
    assert config.alembic is not None
    ini = ctx.base_dir / config.alembic
    if not ini.is_file():
        return Observation(error=f"alembic configuration {ini} not found (alembic: is relative to the runbook)",
                           evidence=evidence)
    evidence["alembic"] = str(ini)
    if config.revert_to is not None:  # "0" and "" mean "nothing applied", as for SQL files: alembic's base
        cmd = ["downgrade", config.revert_to if config.revert_to.strip("0") else "base"]
    else:
        cmd = ["upgrade", config.to or "head"]
    if config.dry_run:
        cmd.append("--sql")  # offline mode: prints the SQL, changes nothing
    env = {**ctx.environ, URL_VARIABLE: migrator.url}
    me = f"tminus migrate {migrator.operator}@{migrator.host} (alembic)"
    left: list[Any] = []  # what a downgrade left behind (tminus.db.alembic_proof)
    try:
        with migration_lock(migrator.engine, migrator.tables, config.lock_wait, me):
            if config.revert_to is None and not config.dry_run:
                _record_before(ctx, config, migrator, evidence)
            stdout, stderr, returncode = _run_driver(ctx, [str(ini), *cmd], env)
            if config.revert_to is not None and not config.dry_run and returncode == 0:
                left = _prove_revert(ctx, config, migrator, evidence)
    except subprocess.TimeoutExpired as exc:
        evidence.update(command=["alembic", *cmd], stdout=ctx.tail(text(exc.stdout)),
                        stderr=ctx.tail(text(exc.stderr)))
        return Observation(error=f"alembic {' '.join(cmd)} did not finish within {ctx.timeout:g}s and was killed;"
                                 " check the database for a half-applied revision (alembic current)",
                           evidence=evidence, timed_out=True)
    if returncode is None:
        evidence.update(command=["alembic", *cmd], stdout=ctx.tail(stdout), stderr=ctx.tail(stderr))
        return Observation(error=f"alembic {' '.join(cmd)} was stopped with the run; a revision cut short rolls back"
                                 " with its transaction (alembic current tells where it stopped)", evidence=evidence)
    lines = stdout.rstrip("\n").split("\n")
    result: dict[str, Any] = json.loads(lines.pop()[len(MARKER):]) if lines[-1].startswith(MARKER) else {}
    stdout = "\n".join(lines)
    evidence.update(command=["alembic", *cmd], exit_code=returncode, stdout=ctx.tail(stdout),
                    stderr=ctx.tail(stderr))
    before, after = result.get("before"), result.get("after")
    revisions: list[str] = result.get("revisions") or []
    if before is not None and not config.dry_run:
        before = _first_before(ctx, before)
    outputs: dict[str, Any] = {} if before is None else {
        "before": before, "after": after, "applied": [] if config.revert_to is not None else revisions,
        "reverted": revisions if config.revert_to is not None else [],
    }
    evidence.update(outputs)
    if returncode != 0 or not result.get("ok"):
        why = result.get("error") or ctx.tail(stderr.strip() or stdout.strip(), 500)
        return Observation(error=f"alembic {' '.join(cmd)} failed (exit {returncode}): {why}",
                           evidence=evidence)
    if left:
        return Observation(error=_leftover_error(cmd, after, left, migrator), evidence=evidence)
    values = {**outputs, "count": len(revisions)}
    return Observation(values=values, outputs=outputs, evidence=evidence)


def _record_before(ctx: StepContext, config: MigrateSpec, migrator: Any, evidence: dict[str, Any]) -> None:
    """The `revert_target` effect, before the first revision runs: the revision found, and the
    schema the revert will be proven against (tminus.db.alembic_proof)."""
    from sqlalchemy.exc import SQLAlchemyError

    from tminus.db import alembic_proof

    current = _alembic_current(migrator.engine)
    details: dict[str, Any] = {"url": _safe(migrator.url)}
    if current is not None:
        details["before"] = _first_before(ctx, current)
    if migrator.engine.dialect.name in ("sqlite", "postgresql"):
        try:
            fp, ms = alembic_proof.take(migrator.engine, migrator.tables)
        except SQLAlchemyError as exc:  # the upgrade still runs; its revert will say unproven
            evidence["schema_before"] = f"not recorded: {getattr(exc, 'orig', None) or exc}"
        else:
            details["schema"] = alembic_proof.encode(fp)
            evidence["schema_ms"] = round(ms, 1)
            if current is not None:  # for an explicit revert_to step later in this run
                ctx.shared.setdefault(_baseline_key(migrator.url, current), details["schema"])
    if "before" in details or "schema" in details:
        ctx.record_effect(REVERT_TARGET, **details)


def _prove_revert(ctx: StepContext, config: MigrateSpec, migrator: Any, evidence: dict[str, Any]) -> list[Any]:
    """After `alembic downgrade`, under the migration lock: the schema compared with the one recorded
    before the upgrade (the derived revert carries it; an explicit `revert_to` step finds it when
    this process recorded it). Evidence `proof`: proven, or unproven with why; `leftovers`."""
    from sqlalchemy.exc import SQLAlchemyError

    from tminus.db import alembic_proof
    from tminus.db.migrations.proof import PROVEN

    assert config.revert_to is not None
    target = "" if config.revert_to.strip("0") in ("", "base") else config.revert_to
    recorded = config.schema_before or ctx.shared.get(_baseline_key(migrator.url, target))
    if migrator.engine.dialect.name not in ("sqlite", "postgresql"):
        evidence["proof"] = f"unproven: schema fingerprints are not taken on {migrator.engine.dialect.name}"
        return []
    if recorded is None:
        evidence["proof"] = (f"unproven: no schema was recorded when the database was at {target or 'base'}"
                             " (recorded by a migrate step's upgrade, for its automatic revert)")
        return []
    try:
        left, ms = alembic_proof.check(migrator.engine, migrator.tables, alembic_proof.decode(recorded))
    except (SQLAlchemyError, ValueError) as exc:
        evidence["proof"] = f"unproven: the schema could not be compared: {getattr(exc, 'orig', None) or exc}"
        return []
    evidence["schema_ms"] = round(ms, 1)
    evidence["proof"] = PROVEN if not left else "failed"
    if left:
        evidence["leftovers"] = [d.as_dict() for d in left]
    return left


def _leftover_error(cmd: list[str], after: Any, left: list[Any], migrator: Any) -> str:
    from tminus.db.migrations.proof import describe

    sqlite = migrator.engine.dialect.name == "sqlite"
    return (f"alembic {' '.join(cmd)} left the schema different from before the upgrade: "
            + "; ".join(describe(d, sqlite=sqlite) for d in left)
            + f". The downgrade is committed (alembic_version: {after or 'base'}); make the downgrade() of the"
              " reverted revisions undo everything their upgrade() did, and drop what was left by hand")


def _baseline_key(url: str, revision: str) -> str:
    return f"migrate.alembic-schema:{_safe(url)}:{revision}"


def _run_driver(ctx: StepContext, args: list[str], env: dict[str, str]) -> tuple[str, str, int | None]:
    """The Alembic driver in its own process group (kinds.migrate_process): returncode None when the
    run's stop channel ended it."""
    deadline = None if ctx.timeout is None else time.monotonic() + ctx.timeout
    return run_group(ctx, [sys.executable, "-m", "tminus.db.alembic_driver", *args], env, ctx.base_dir,
                     f"alembic {' '.join(args[1:])}", deadline)


def _alembic_current(engine: Any) -> str | None:
    """The revisions in Alembic's default version table ("" for none), as the driver reports them;
    None when it cannot be read (another version table: the finished step's report is used)."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return ""
            return ",".join(sorted(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))))
    except SQLAlchemyError:
        return None


def _safe_text(url: str) -> str:
    """A URL for `plan`: the password masked, any text (a placeholder) kept as it is."""
    from tminus.db import pgtools

    return pgtools.mask_url(url)
