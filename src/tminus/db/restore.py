"""Restore a backup all-or-nothing: the checksum is checked before anything is touched, the data
is restored beside the target, and only a complete restore replaces it.

PostgreSQL: pg_restore into a scratch database; then, from the maintenance database, one
transaction renames target -> target_old_<ts> and scratch -> target (both renames or neither),
and the old database is dropped. SQLite: a checked copy next to the file, then os.replace.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tminus.db import pgtools
from tminus.db.backup import read_checksum, sha256_file, sqlite_integrity
from tminus.db.writes import TableLoss, pg_losses, sqlite_losses, summary
from tminus.errors import TminusError

RESTORE_PREFIX = "tminus_restore_"


class RestoreError(TminusError):
    """The restore failed; the target database was left as it was unless the message says otherwise."""


class ChecksumError(RestoreError):
    """The backup has no checksum or does not match it; nothing was restored."""


class LossRefused(RestoreError):
    """Writes made since the backup would be discarded and nobody accepted that; nothing was restored."""

    def __init__(self, message: str, losses: list[TableLoss], needs_operator: bool = False) -> None:
        super().__init__(message)
        self.losses = losses
        self.needs_operator = needs_operator  # nobody could be asked (--no-input): an operator decides later


# Called with what the restore would discard (empty: nothing) once the backup is known good and
# before anything is replaced; raising (LossRefused) stops the restore with the target unchanged.
# It returns True when its yes holds whatever is written meanwhile (maintenance, a loss accepted by
# the runbook), False when it approved exactly these rows (an operator's answer): compared again.
LossGuard = Callable[[list[TableLoss]], bool]


@dataclass
class RestoreResult:
    database: str
    seconds: float
    restored: bool = True
    old_kept: str | None = None  # PostgreSQL: the previous database, when it could not be dropped
    losses: list[TableLoss] = field(default_factory=list)  # what the restore discarded (with a guard)

    def as_dict(self) -> dict[str, Any]:
        return {"database": self.database, "restored": self.restored, "seconds": self.seconds,
                "old_kept": self.old_kept, "discarded": [t.as_dict() for t in self.losses]}


def check_checksum(file: Path, sha256: str | None = None) -> str:
    """The file's checksum after checking it against `sha256` or `<file>.sha256`; ChecksumError otherwise."""
    if not file.is_file():
        raise ChecksumError(f"backup file {file} does not exist; check the path (e.g. steps.backup.path)")
    expected = sha256.strip().lower() if sha256 else read_checksum(file)
    if not expected:
        raise ChecksumError(
            f"no checksum for {file}: expected {file.name}.sha256 beside it (written by `tminus db backup`) "
            f"or an explicit sha256; refusing to restore an unchecked file"
        )
    actual = sha256_file(file)
    if actual != expected:
        raise ChecksumError(
            f"{file} is corrupt or not the expected backup: sha256 {actual[:16]}... but expected "
            f"{expected[:16]}...; nothing was restored. Use an intact copy of the backup"
        )
    return actual


def restore(url: str, file: Path | str, *, sha256: str | None = None, base_dir: Path | None = None,
            timeout: float | None = None, guard: LossGuard | None = None) -> RestoreResult:
    """Replace the contents of the database at `url` with the backup `file`, all or nothing.
    With `guard`, what would be discarded is computed first (db/writes.py) and `guard` decides."""
    file = Path(file)
    kind = pgtools.backend(url)
    check_checksum(file, sha256)  # before anything is created, dropped or replaced
    start = time.perf_counter()
    seen: list[TableLoss] = []

    def check(losses: list[TableLoss]) -> bool:
        seen[:] = losses  # the last comparison: what the restore discards
        return guard(losses) if guard is not None else True

    if kind == "sqlite":
        path = pgtools.sqlite_path(url, base_dir)
        _sqlite_restore(path, file, check if guard else None)
        return RestoreResult(str(path), round(time.perf_counter() - start, 3), losses=seen)
    target = pgtools.pg_target(url)
    import psycopg

    try:
        old_kept = _pg_restore(target, file, timeout=timeout, guard=check if guard else None)
    except psycopg.Error as exc:
        raise RestoreError(f"restore into {target.display()} failed: {exc}") from None
    return RestoreResult(target.database, round(time.perf_counter() - start, 3), old_kept=old_kept, losses=seen)


ROUNDS = 3  # times the guard is asked again when more was written while it decided


def decide(compute: Callable[[], list[TableLoss]], guard: LossGuard, where: str) -> None:
    """Let `guard` decide about what the restore would discard. Deciding can take an operator's
    while, and the service may go on writing: compared again afterwards, a larger loss is put to the
    guard again (the operator approved 1 row, not 3). Rows written between the last comparison and
    the swap are still lost: only maintenance mode closes that window."""
    losses = compute()
    for _ in range(ROUNDS):
        if guard(losses):
            return
        again = compute()
        if _shape(again) == _shape(losses):
            return
        losses = again
    raise LossRefused(
        f"not restored: {where} keeps being written while the restore waits ({summary(losses)}); put the "
        f"service in maintenance mode (no writes) and retry; the database is unchanged", losses)


def _shape(losses: list[TableLoss]) -> list[tuple[str, int, int, int]]:
    return sorted((t.table, t.added, t.changed, t.removed) for t in losses)


def _pg_restore(target: pgtools.PgTarget, file: Path, *, timeout: float | None,
                guard: LossGuard | None = None) -> str | None:
    if target.database in (pgtools.MAINTENANCE_DB, "template0", "template1"):
        raise RestoreError(f"refusing to restore into '{target.database}': it is a maintenance database "
                           f"the swap needs; restore into an application database")
    with pgtools.connect(target, pgtools.MAINTENANCE_DB) as admin:
        row = admin.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                            (target.database,)).fetchone()
    if row is None:
        raise RestoreError(f"database {target.database} does not exist on {target.display()}; "
                           f"create it first (the restore replaces an existing database)")
    owner = str(row[0])

    scratch = pgtools.create_scratch(target, RESTORE_PREFIX)
    swapped = False
    try:
        try:
            pgtools.pg_restore_into(target.with_database(scratch), file, timeout=timeout)
            with pgtools.connect(target, pgtools.MAINTENANCE_DB) as admin:
                # Same owner as the database it replaces, so the application's rights stay the same.
                admin.execute(f"ALTER DATABASE {pgtools.ident(scratch)} OWNER TO {pgtools.ident(owner)}")
        except Exception as exc:
            raise RestoreError(f"restore of {file} failed; {target.display()} is unchanged: {exc}") from None
        if guard is not None:  # the backup's rows are in scratch now: compare them with the live ones
            def compute() -> list[TableLoss]:
                with pgtools.connect(target) as live, pgtools.connect(target, scratch) as then:
                    return pg_losses(live, then)

            decide(compute, guard, target.display())
        old = f"{target.database[:30]}_old_{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}_{uuid.uuid4().hex[:4]}"
        _swap(target, scratch, old)
        swapped = True
    finally:
        if not swapped:
            pgtools.drop_database(target, scratch)
    try:
        pgtools.drop_database(target, old)
    except Exception:  # the restore itself succeeded; the old copy only wastes space
        return old
    return None


def _swap(target: pgtools.PgTarget, scratch: str, old: str) -> None:
    """Rename target -> old and scratch -> target in one transaction: both or neither."""
    import psycopg

    name = pgtools.ident(target.database)
    with pgtools.connect(target, pgtools.MAINTENANCE_DB) as admin:
        try:
            # No new sessions while we clear the existing ones out; RENAME needs it empty.
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = %s AND pid <> pg_backend_pid()", (target.database,))
            with admin.transaction():
                admin.execute(f"ALTER DATABASE {name} RENAME TO {pgtools.ident(old)}")
                admin.execute(f"ALTER DATABASE {pgtools.ident(scratch)} RENAME TO {name}")
        except psycopg.Error as exc:
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
            raise RestoreError(
                f"could not swap the restored copy into place; {target.display()} is unchanged: {exc}. "
                f"The user must own the database (or be superuser) and other sessions must be closable"
            ) from None


def _sqlite_restore(target: Path, file: Path, guard: LossGuard | None = None) -> None:
    problem = sqlite_integrity(file)
    if problem:
        raise RestoreError(f"{file} is not a sound SQLite database ({problem}); {target} is unchanged")
    if guard is not None:
        def compute() -> list[TableLoss]:
            try:
                return sqlite_losses(target, file)
            except sqlite3.Error as exc:
                raise RestoreError(f"cannot compare {target} with the backup {file}: {exc}; {target} is "
                                   f"unchanged") from None

        decide(compute, guard, str(target))
    wal = target.with_name(target.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        # A leftover write-ahead log would be replayed onto the restored file and corrupt it.
        try:
            conn = sqlite3.connect(target)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
        except sqlite3.Error:
            pass
        if wal.exists() and wal.stat().st_size > 0:
            raise RestoreError(f"{target} is in use (its write-ahead log {wal.name} is not empty); "
                               f"stop the writers and retry. {target} is unchanged")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{RESTORE_PREFIX}{uuid.uuid4().hex[:8]}")
    try:
        shutil.copyfile(file, temp)
        if target.exists():
            shutil.copymode(target, temp)
        with temp.open("rb+") as fh:
            os.fsync(fh.fileno())  # on disk before the rename makes it the database
        os.replace(temp, target)
    except OSError as exc:
        raise RestoreError(f"cannot restore {file} into {target}: {exc.strerror or exc}; "
                           f"{target} is unchanged") from None
    finally:
        temp.unlink(missing_ok=True)
