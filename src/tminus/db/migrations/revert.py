"""Reverting migrations: down files newest first, each checked by the migration's verify script
(which must now fail: a passing verify means the revert left the migration's objects behind) and
proven against the schema recorded before the version was applied (proof.py)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tminus.db.migrations import store
from tminus.db.migrations.errors import HalfAppliedError, MigrationFailed, NotRevertible, RevertIncomplete
from tminus.db.migrations.errors import cause as _cause
from tminus.db.migrations.errors import excerpt as _excerpt
from tminus.db.migrations.files import MigrationFile, is_no_transaction, read_text
from tminus.db.migrations.lock import migration_lock
from tminus.db.migrations.proof import PROVEN, Proof, check_after
from tminus.db.migrations.report import Done, Outcome, run_verify_script
from tminus.db.migrations.store import AppliedRow

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from tminus.db.migrations.migrator import Migrator


def revert(m: Migrator, to: str, *, dry_run: bool = False) -> Outcome:
    """Run down files of applied versions above `to`, newest first; `to="0"` reverts everything.
    After each, the migration's verify script must fail: otherwise its objects are still there."""
    files = m.files()
    m._check_shape(inserts=False)  # a revert only deletes an adopted table's rows
    if dry_run:
        return _plan_revert(m, files, to, *m._read())
    me = f"tminus migrate {m.operator}@{m.host}"
    with migration_lock(m.engine, m.tables, m.lock_wait, me):
        if m.columns is not None:  # versions the application applied: tminus's side tables may not exist yet
            with m._tx() as conn:
                store.create(conn, m.tables)
        rows, half, invalid = m._read()
        outcome = _plan_revert(m, files, to, rows, half, invalid)
        outcome.dry_run = False
        m.progress = progress = Outcome("revert", outcome.before, outcome.before)
        applied = [r.version for r in rows]
        by_version = {f.version: f for f in files}
        for planned in outcome.done:
            mf = by_version[planned.version]
            m.on_event(f"reverting {mf.version} with {mf.down.name if mf.down else '?'} ...")
            planned.duration_ms, proof = _revert_one(m, mf)
            planned.proof, planned.proof_ms = proof.status, round(proof.ms, 1)
            m.on_event(f"reverted {mf.version}: schema {proof.status}"
                       + (f" ({proof.ms:.0f} ms)" if proof.status == PROVEN else ""))
            progress.done.append(planned)
            applied.remove(planned.version)
            progress.after = applied[-1] if applied else ""
        return outcome

def _plan_revert(m: Migrator, files: list[MigrationFile], to: str, rows: list[AppliedRow],
                 progress: dict[str, dict[int, str]], invalid: list[str]) -> Outcome:
    st = m._status(files, rows, progress, invalid)
    width = len(files[0].version) if files else len(to)
    target = to.zfill(width) if to.isdigit() else to
    if target.strip("0") and target not in {r.version for r in rows}:
        raise NotRevertible(
            f"revert target {to!r} is not an applied version; expected one of "
            + ", ".join([r.version for r in rows] + ["0 (revert everything)"])
        )
    m._raise_drift(st)
    if st.half_applied:
        h = st.half_applied[0]
        raise HalfAppliedError(
            f"migration {h.version} is half-applied ({h.done} of {h.total} statements); finish it with migrate"
            " before reverting"
        )
    by_version = {f.version: f for f in files}
    targets = [by_version[r.version] for r in reversed(rows) if r.version > target]
    missing = [f.path.name for f in targets if f.down is None]
    if missing:
        raise NotRevertible(
            f"cannot revert to {target}: no down file for {', '.join(missing)}; add NNNN_name.down.sql for"
            " each (nothing was changed)"
        )
    done = [Done(f.version, f.name, str(f.down), len(_down_statements(m, f))) for f in targets]
    after = (target if target.strip("0") else "") if done else st.current  # "" once nothing is applied
    return Outcome("revert", st.current, after, done, dry_run=True)

def _down_statements(m: Migrator, mf: MigrationFile) -> list[str]:
    from tminus.db.sqltext import split_statements

    assert mf.down is not None
    return split_statements(read_text(mf.down), sqlite=m.sqlite)

def _still_there(m: Migrator, conn: Connection, mf: MigrationFile) -> bool:
    """After a down file: does the verify script still pass? An error (table gone) means no."""
    if mf.verify is None:
        return False
    savepoint = conn.begin_nested()
    try:
        return run_verify_script(conn, mf, sqlite=m.sqlite) is None
    except Exception:
        return False
    finally:
        if savepoint.is_active:
            savepoint.rollback()

def _revert_one(m: Migrator, mf: MigrationFile) -> tuple[float, Proof]:
    assert mf.down is not None
    statements = _down_statements(m, mf)
    transactional = not is_no_transaction(read_text(mf.down))
    left = RevertIncomplete(
        f"revert of {mf.version} left its objects behind: {mf.verify.name if mf.verify else ''} still passes"
        f" after {mf.down.name} ran"
        + ("; the revert was rolled back" if transactional else f"; {mf.version} stays recorded as applied")
        + ". Make the down file remove everything the migration created",
        version=mf.version,
    )
    current = [""]
    proof = [Proof("unproven")]

    def attempt() -> float:
        start = time.perf_counter()
        if not transactional:  # e.g. DROP INDEX CONCURRENTLY: each statement on its own, before the tx
            for stmt in statements:
                current[0] = stmt
                with m.engine.connect() as ac:
                    m._autocommit(ac).execution_options(no_parameters=True).exec_driver_sql(stmt)
                    ac.commit()
        with m._tx() as conn:
            if transactional:
                plain = conn.execution_options(no_parameters=True)
                for stmt in statements:
                    current[0] = stmt
                    plain.exec_driver_sql(stmt)
            current[0] = ""
            if _still_there(m, conn, mf):
                raise left
            proof[0] = check_after(m, conn, mf, transactional=transactional)
            ms = (time.perf_counter() - start) * 1000
            m._forget(conn, mf.version)
            store.log(conn, m.tables, version=mf.version, action="revert", operator=m.operator,
                      host=m.host, duration_ms=ms, outcome="ok")
        return ms

    try:
        return float(m._retrying(attempt, lambda: current[0], mf.version)), proof[0]
    except MigrationFailed as exc:
        m._log(mf.version, "revert", "failed", None, str(exc))
        raise
    except Exception as exc:
        m._log(mf.version, "revert", "failed", None, _cause(exc))
        raise MigrationFailed(
            f"revert of {mf.version} failed ({mf.down.name}): {_cause(exc)}\n  statement:"
            f" {_excerpt(current[0])}\n  fix the down file and run revert again",
            version=mf.version, statement=current[0],
        ) from exc
