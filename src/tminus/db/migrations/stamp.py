"""Stamping: recording versions as applied without running them (Flyway's baseline, Alembic's
stamp), for a database whose schema already has them. The step from an adopted table to a table of
tminus's own: stamp the new table up to the version the adopted one is at, then drop `columns:`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tminus.db.migrations import store
from tminus.db.migrations.errors import MigrationError
from tminus.db.migrations.lock import migration_lock
from tminus.db.migrations.report import Outcome

if TYPE_CHECKING:
    from tminus.db.migrations.migrator import Migrator


def stamp(m: Migrator, to: str, *, dry_run: bool = False) -> Outcome:
    """Record the pending versions up to `to` as applied, each with its file's checksum as it is now;
    nothing of the migrations runs. Refuses on drift, as migrate does."""
    files = m.files()
    target = m._target(files, to)
    if target is None or not target.strip("0"):
        raise MigrationError("stamp needs a version to stamp up to (--to), one of "
                             + (", ".join(f.version for f in files) or "(no migrations)"))
    m._check_shape(inserts=True)
    if dry_run:
        out = m._plan_migrate(files, target, *m._read())
        out.action = "stamp"
        return out
    me = f"tminus migrate {m.operator}@{m.host} (stamp)"
    with migration_lock(m.engine, m.tables, m.lock_wait, me):
        with m._tx() as conn:
            store.create(conn, m.tables)
        out = m._plan_migrate(files, target, *m._read())
        out.action, out.dry_run = "stamp", False
        by_version = {f.version: f for f in files}
        for planned in out.done:
            with m._tx() as conn:
                m._record(conn, by_version[planned.version], 0.0)
                store.log(conn, m.tables, version=planned.version, action="stamp", operator=m.operator,
                          host=m.host, duration_ms=None, outcome="ok", detail="recorded without running")
            planned.duration_ms = 0.0
            m.on_event(f"stamped {planned.version} (not run)")
        return out
