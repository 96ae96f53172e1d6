"""What `Migrator` returns (status, plans, outcomes) and the read-only probes it uses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tminus.db.migrations.files import MigrationFile, read_text, truthy
from tminus.db.migrations.store import AppliedRow

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@dataclass
class AppliedState(AppliedRow):
    """An applied version as `status` reports it: its tracking row, and how its file compares."""

    # "ok", "changed" (file edited since apply), "missing" (file gone) or "unchecked" (no checksum
    # recorded: a row of an adopted table the application wrote, without a mapped checksum column)
    state: str = "ok"
    file_checksum: str | None = None


@dataclass
class HalfApplied:
    version: str
    name: str
    done: int  # statements completed
    total: int | None  # statements in the file now (None when the file is gone)


@dataclass
class Status:
    current: str  # highest applied version, "" when none
    applied: list[AppliedState] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    half_applied: list[HalfApplied] = field(default_factory=list)
    invalid_indexes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # drift, gaps, invalid indexes: each with its fix
    adopted: dict[str, Any] | None = None  # an adopted table: its name, the mapping, tminus's side table

    @property
    def ok(self) -> bool:
        return not self.problems and not self.half_applied

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class Done:
    """One migration applied or reverted (or, in a dry run, planned)."""

    version: str
    name: str
    file: str
    statements: int
    duration_ms: float | None = None
    resumed_from: int = 0  # statements already done by an interrupted no-transaction run
    transactional: bool = True
    # A revert: "proven" (the schema is back as recorded before the version was applied) or
    # "unproven: <why>". proof_ms: the schema fingerprint's time (a migrate records one too).
    proof: str | None = None
    proof_ms: float | None = None


@dataclass
class Outcome:
    action: str  # "migrate" or "revert"
    before: str
    after: str
    done: list[Done] = field(default_factory=list)
    dry_run: bool = False

    @property
    def versions(self) -> list[str]:
        return [d.version for d in self.done]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "versions": self.versions}


def run_verify_script(conn: Connection, mf: MigrationFile, *, sqlite: bool) -> str | None:
    """Run `mf`'s verify script on `conn`; None when it passes, else why it failed. SQL errors
    propagate (the caller decides whether an error means failed or, after a revert, gone)."""
    from tminus.db.sqltext import split_statements

    assert mf.verify is not None
    statements = split_statements(read_text(mf.verify), sqlite=sqlite)
    if not statements:
        return f"{mf.verify.name} is empty; end it with a SELECT that returns true when the migration is in place"
    plain = conn.execution_options(no_parameters=True)
    result = None
    for stmt in statements:
        result = plain.exec_driver_sql(stmt)
    assert result is not None
    if not result.returns_rows:
        return (f"{mf.verify.name}: its last statement returns no rows; end it with a SELECT whose first column"
                " is true when the migration is in place")
    row = result.first()
    if row is None:
        return f"{mf.verify.name} returned no rows (expected one row with a true first column)"
    if not truthy(row[0]):
        return f"{mf.verify.name} returned {row[0]!r} (expected a true first column)"
    return None


def invalid_indexes(conn: Connection) -> list[str]:
    """PostgreSQL indexes marked INVALID, as left by an interrupted CREATE INDEX CONCURRENTLY."""
    if conn.dialect.name != "postgresql":
        return []
    rows = conn.exec_driver_sql(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), t.relname FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid ORDER BY 1"
    )
    return [str(r[0]) for r in rows]


def invalid_index_fix(names: list[str]) -> str:
    drops = " ".join(f"DROP INDEX CONCURRENTLY {n};" for n in names)
    return (f"index {', '.join(names)} is INVALID (left by an interrupted CREATE INDEX CONCURRENTLY);"
            f" drop it ({drops}) and run migrate again")
