"""`restore`: replace a database with a checksummed backup, all or nothing, never discarding
writes made since the backup without a decision.

Before replacing anything the restore compares the live database with the backup (db/writes.py).
Rows written since the backup (a note added through the old release while the schema migrated)
would be lost, so the restore stops for the operator with what would be lost, unless the runbook
says nobody could write (`maintenance: true`) or accepts the loss (`accept_loss: REASON`). The
decision and what was discarded are in the step's evidence; an operator's answer is an approval
like a `manual` step's (`tminus approve RUN --step KEY`). Under --no-input nobody can answer: the
step fails with `needs_operator`, and a rollback stops there (exit 15) for `tminus resume`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tminus.kinds.base import SQLALCHEMY_IMPORTS, Effect, Observation, StepContext
from tminus.kinds.registry import register
from tminus.kinds.sql import SQL_ENGINES
from tminus.runbook.models import RestoreSpec

# Migration tools' history tables (the `migrate` kind's default ones with their companions): the
# run's own migrations write them, so their rows are expected.
MIGRATION_TABLES = ("alembic_version", "schema_version", "schema_migrations", "schema_migrations_log",
                    "schema_migrations_progress", "schema_migrations_lock", "flyway_schema_history",
                    "django_migrations")


def describe(c: RestoreSpec, step: object, nested: object) -> str:
    from tminus.db import pgtools

    guard = (", the service is in maintenance (no writes)" if c.maintenance
             else f", accepts losing writes since the backup ({c.accept_loss})" if c.accept_loss
             else ", stops for the operator if rows were written since the backup")
    return f"restore {pgtools.mask_url(c.url)} from {c.file} (replaces the database{guard})"


@register("restore", config=RestoreSpec, effect=Effect.IRREVERSIBLE, describe=describe, resources=(SQL_ENGINES,),
          queries=("restored", "seconds", "discarded_rows"),
          imports=(*SQLALCHEMY_IMPORTS, "tminus.db.restore"))
def execute(config: RestoreSpec, ctx: StepContext) -> Observation:
    from tminus.db import pgtools
    from tminus.db.restore import LossRefused, restore
    from tminus.errors import TminusError

    file = ctx.base_dir / config.file
    evidence: dict[str, Any] = {"url": pgtools.mask_url(config.url), "file": str(file)}
    # Pooled connections of earlier sql steps would be terminated by the swap; close them
    # cleanly now, the engines reconnect on next use.
    for engine in ctx.shared.get("sql.engines", {}).values():
        engine.dispose()
    try:
        result = restore(pgtools.resolve_url(config.url, ctx.base_dir), file, sha256=config.sha256,
                         base_dir=ctx.base_dir, timeout=ctx.timeout, guard=_Guard(config, ctx, file, evidence))
    except LossRefused as exc:
        evidence["needs_operator"] = exc.needs_operator
        return Observation(values={"restored": False}, outputs={"restored": False}, error=str(exc),
                           evidence=evidence)
    except TminusError as exc:
        return Observation(values={"restored": False}, outputs={"restored": False}, error=str(exc),
                           evidence=evidence)
    rows = sum(t.rows for t in result.losses)
    values = {"restored": True, "seconds": result.seconds, "discarded_rows": rows}
    evidence.update(result.as_dict())
    return Observation(values=values, outputs=dict(values), evidence=evidence)


class _Guard:
    """Decides about the rows the restore would discard; records the decision in `evidence`."""

    def __init__(self, config: RestoreSpec, ctx: StepContext, file: Any, evidence: dict[str, Any]) -> None:
        self.config, self.ctx, self.file, self.evidence = config, ctx, file, evidence

    def __call__(self, losses: list[Any]) -> bool:
        """True: restore whatever is written meanwhile; False: these rows were approved (compare again)."""
        from tminus.db.restore import LossRefused
        from tminus.db.writes import summary

        ev = self.evidence
        own = {t.lower() for t in (*MIGRATION_TABLES, *self.config.run_tables)}
        # tminus_*: the side tables of an adopted migrations table (tminus_<table>, _log, _schema...)
        expected = [t for t in losses if t.table.lower() in own or t.table.lower().split(".")[-1] in own
                    or t.table.lower().split(".")[-1].startswith("tminus_")]
        losses = [t for t in losses if t not in expected]
        if expected:
            ev["run_own_changes"] = [t.as_dict() for t in expected]
        ev["written_since_backup"] = [t.as_dict() for t in losses]
        if not losses:
            ev["loss_decision"] = "nothing written since the backup"
            return True
        if self.config.maintenance:
            ev["loss_decision"] = "maintenance: the service took no writes, the differences are the run's own"
            return True
        if self.config.accept_loss:
            ev["loss_decision"] = f"accepted by the runbook: {self.config.accept_loss}"
            return True
        rows = sum(t.rows for t in losses)
        what = summary(losses)
        since = _backup_time(self.file)
        prompt = (f"Restoring discards {rows} row(s) written since the backup ({since}): {what}. "
                  f"Discard them?")
        advice = ("Approve to restore and lose these rows; refuse to keep the database as it is (the "
                  "rollback stops; `tminus resume` asks again). To keep them: export them first, or "
                  "rerun the change with the service in maintenance mode (declare `maintenance: true` "
                  "on the restore) so no write can happen between backup and restore.")
        if self.ctx.approvals is None:
            ev["loss_decision"] = "refused: nobody to ask"
            raise LossRefused(f"{prompt[:-len(' Discard them?')]}; nobody to ask (no operator channel). {advice}",
                              losses, needs_operator=True)
        approval = self.ctx.approvals.request(self.ctx.step.key, prompt, advice, None)
        ev["loss_approval"] = {"approved": approval.approved, "by": approval.by, "how": approval.how,
                               "at": approval.at, "reason": approval.reason}
        if approval.approved:
            ev["loss_decision"] = f"discarded, approved by {approval.by} ({approval.how})"
            return False
        ev["loss_decision"] = f"refused by {approval.by} ({approval.how})"
        who = ("nobody could answer (--no-input)" if approval.how == "no-input" else
               f"{approval.by} refused ({approval.how}: {approval.reason or 'no reason given'})")
        raise LossRefused(
            f"not restored: {rows} row(s) written since the backup ({since}) would be lost: {what}; {who}. "
            f"The database is unchanged. {advice}", losses, needs_operator=approval.how == "no-input")


def _backup_time(file: Any) -> str:
    try:
        stamp = dt.datetime.fromtimestamp(file.stat().st_mtime, dt.UTC)
    except OSError:
        return "time unknown"
    return f"taken {stamp:%Y-%m-%d %H:%M:%S} UTC"
