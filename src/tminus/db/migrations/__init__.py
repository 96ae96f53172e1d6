"""Ordered SQL migrations (and Alembic projects) with verify and revert, recorded in a tracking table.

`migrator` applies and reports; `revert` walks back; `files` reads a migrations folder; `store`
is the tracking table; `lock` the advisory lock that keeps two migrators apart; `report` the
outcome records; `errors` the typed failures. Nothing here imports the engine or the step kinds.
"""

from tminus.db.migrations.errors import (
    DriftError,
    HalfAppliedError,
    LockTimeout,
    MigrationError,
    MigrationFailed,
    MigrationFileError,
    MigrationLockTimeout,
    NotRevertible,
    RevertIncomplete,
    VerifyFailed,
)
from tminus.db.migrations.migrator import Migrator
from tminus.db.migrations.report import AppliedState, Done, HalfApplied, Outcome, Status

__all__ = [
    "AppliedState", "Done", "DriftError", "HalfApplied", "HalfAppliedError", "LockTimeout", "MigrationError",
    "MigrationFailed", "MigrationFileError", "MigrationLockTimeout", "Migrator", "NotRevertible", "Outcome",
    "RevertIncomplete", "Status", "VerifyFailed",
]
