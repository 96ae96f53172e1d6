"""Typed errors of `tminus.db.migrations`; each message says what was expected and how to fix it."""

from __future__ import annotations

from tminus.errors import TminusError


class MigrationError(TminusError):
    """Base class of every migration error."""


class MigrationFileError(MigrationError):
    """The migrations directory is unusable: bad file names, duplicate versions, unreadable files."""


class DriftError(MigrationError):
    """Applied migrations no longer match the directory (file edited after apply, or removed)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "the database and the migrations directory disagree:\n  - " + "\n  - ".join(problems)
            + "\n  fix: restore the applied file as it was (an applied migration must never change; put the"
            " change in a new migration), or revert the version before editing it"
        )


class MigrationFailed(MigrationError):
    """A migration (or its down file) failed; `statement` is the one that failed, when known."""

    def __init__(self, message: str, *, version: str, statement: str | None = None):
        self.version = version
        self.statement = statement
        super().__init__(message)


class VerifyFailed(MigrationFailed):
    """A `.verify.sql` did not return a truthy first column in its last statement's first row."""


class LockTimeout(MigrationFailed):
    """A statement kept failing on PostgreSQL lock_timeout (SQLSTATE 55P03) after its retries."""


class RevertIncomplete(MigrationFailed):
    """A revert ran, but the migration's verify script still passes: its objects are still there."""


class NotRevertible(MigrationError):
    """A version to revert has no `.down.sql`, or the target is not a version."""


class HalfAppliedError(MigrationError):
    """A no-transaction migration stopped midway and blocks the requested operation."""


class MigrationLockTimeout(MigrationError):
    """Another migrator held the migration lock for longer than `lock_wait`."""

    def __init__(self, message: str, *, holder: str | None = None):
        self.holder = holder
        super().__init__(message)


EXCERPT = 300  # characters of a failed statement quoted in errors


def excerpt(stmt: str) -> str:
    flat = " ".join(stmt.split())
    return flat if len(flat) <= EXCERPT else flat[:EXCERPT] + " ..."


def cause(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
