"""The tracking tables: `<table>` (one row per applied version), `<table>_log` (every apply/revert
attempt), `<table>_progress` (completed statements of a no-transaction migration) and
`<table>_schema` (per version, the schema fingerprint taken just before it was applied: what its
revert must give back, see proof.py).

An adopted table (the application's own, of another shape: adopt.py) stays the application's:
tminus's rows then live in side tables `tminus_<table>` (same shape as tminus's own table, with
`tminus_<table>_log`, `_progress`, `_schema` and `_lock`), which fingerprints leave out as tminus's."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tminus.db.migrations.errors import MigrationError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_IDENT = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$")


def now() -> str:
    # Text timestamps keep the tables identical on PostgreSQL and SQLite.
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Tables:
    main: str
    adopted: bool = False  # `main` is the application's table, read and written through a mapping

    def __post_init__(self) -> None:
        if not _IDENT.match(self.main):
            raise MigrationError(
                f"tracking table name {self.main!r} is not a plain identifier; use letters, digits and _"
                " (optionally schema.table), e.g. schema_migrations"
            )

    @property
    def own(self) -> str:
        """The table of tminus's rows: `main`, or beside an adopted table `tminus_<main>`."""
        if not self.adopted:
            return self.main
        schema, dot, name = self.main.rpartition(".")
        return f"{schema}{dot}tminus_{name}"

    @property
    def log(self) -> str:
        return f"{self.own}_log"

    @property
    def progress(self) -> str:
        return f"{self.own}_progress"

    @property
    def schema(self) -> str:
        return f"{self.own}_schema"

    @property
    def lock(self) -> str:
        return f"{self.own}_lock"


@dataclass
class AppliedRow:
    version: str
    name: str
    checksum: str  # "" when nothing recorded one (a row of an adopted table, written by the application)
    applied_at: str
    duration_ms: float | None
    operator: str
    host: str
    recorded: str | None = None  # an adopted table's version value as written there


def exists(conn: Connection, table: str) -> bool:
    from sqlalchemy import inspect

    schema, _, name = table.rpartition(".")
    return bool(inspect(conn).has_table(name, schema=schema or None))


def create(conn: Connection, t: Tables) -> None:
    """Create the tables if missing (inside the caller's transaction)."""
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {t.own} (version VARCHAR(64) PRIMARY KEY, name TEXT NOT NULL,"
        " checksum VARCHAR(64) NOT NULL, applied_at TEXT NOT NULL, duration_ms DOUBLE PRECISION NOT NULL,"
        " operator TEXT NOT NULL, host TEXT NOT NULL)"
    )
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {t.log} (version VARCHAR(64) NOT NULL, action VARCHAR(16) NOT NULL,"
        " at TEXT NOT NULL, operator TEXT NOT NULL, host TEXT NOT NULL, duration_ms DOUBLE PRECISION,"
        " outcome VARCHAR(16) NOT NULL, detail TEXT)"
    )
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {t.progress} (version VARCHAR(64) NOT NULL, statement INTEGER NOT NULL,"
        " checksum VARCHAR(64) NOT NULL, at TEXT NOT NULL, PRIMARY KEY (version, statement))"
    )
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {t.schema} (version VARCHAR(64) PRIMARY KEY, fingerprint TEXT NOT NULL,"
        " at TEXT NOT NULL)"
    )


def applied(conn: Connection, t: Tables) -> list[AppliedRow]:
    if not exists(conn, t.own):
        return []
    rows = conn.exec_driver_sql(
        f"SELECT version, name, checksum, applied_at, duration_ms, operator, host FROM {t.own} ORDER BY version"
    )
    return [AppliedRow(str(r[0]), r[1], r[2], str(r[3]), float(r[4]), r[5], r[6]) for r in rows]


def progress(conn: Connection, t: Tables) -> dict[str, dict[int, str]]:
    """version -> {statement index: statement checksum} for no-transaction migrations in flight."""
    if not exists(conn, t.progress):
        return {}
    out: dict[str, dict[int, str]] = {}
    for version, index, digest in conn.exec_driver_sql(f"SELECT version, statement, checksum FROM {t.progress}"):
        out.setdefault(str(version), {})[int(index)] = digest
    return out


def record_applied(conn: Connection, t: Tables, row: AppliedRow) -> None:
    from sqlalchemy import text

    if t.adopted:  # a side row may outlive its version (the application deleted its own row)
        conn.execute(text(f"DELETE FROM {t.own} WHERE version = :v"), {"v": row.version})
    conn.execute(
        text(
            f"INSERT INTO {t.own} (version, name, checksum, applied_at, duration_ms, operator, host)"
            " VALUES (:version, :name, :checksum, :applied_at, :duration_ms, :operator, :host)"
        ),
        {k: v for k, v in row.__dict__.items() if k != "recorded"},
    )
    conn.execute(text(f"DELETE FROM {t.progress} WHERE version = :v"), {"v": row.version})


def record_progress(conn: Connection, t: Tables, version: str, index: int, digest: str) -> None:
    from sqlalchemy import text

    conn.execute(
        text(f"INSERT INTO {t.progress} (version, statement, checksum, at) VALUES (:v, :i, :c, :at)"),
        {"v": version, "i": index, "c": digest, "at": now()},
    )


def remove(conn: Connection, t: Tables, version: str) -> None:
    from sqlalchemy import text

    conn.execute(text(f"DELETE FROM {t.own} WHERE version = :v"), {"v": version})
    conn.execute(text(f"DELETE FROM {t.progress} WHERE version = :v"), {"v": version})
    if exists(conn, t.schema):  # its schema, and any left by a later version's cut-short apply
        conn.execute(text(f"DELETE FROM {t.schema} WHERE version >= :v"), {"v": version})


def save_schema(conn: Connection, t: Tables, version: str, fingerprint: str) -> None:
    """The schema as it is before `version` is applied (replacing an earlier, failed attempt's)."""
    from sqlalchemy import text

    conn.execute(text(f"DELETE FROM {t.schema} WHERE version = :v"), {"v": version})
    conn.execute(text(f"INSERT INTO {t.schema} (version, fingerprint, at) VALUES (:v, :f, :at)"),
                 {"v": version, "f": fingerprint, "at": now()})


def load_schema(conn: Connection, t: Tables, version: str) -> str | None:
    """The schema recorded before `version` was applied; None when none was (an older tminus, or
    the version was applied by other means)."""
    from sqlalchemy import text

    if not exists(conn, t.schema):
        return None
    row = conn.execute(text(f"SELECT fingerprint FROM {t.schema} WHERE version = :v"), {"v": version}).first()
    return None if row is None else str(row[0])


def log(
    conn: Connection, t: Tables, *, version: str, action: str, operator: str, host: str,
    duration_ms: float | None, outcome: str, detail: str | None = None,
) -> None:
    from sqlalchemy import text

    params: dict[str, Any] = {
        "version": version, "action": action, "at": now(), "operator": operator, "host": host,
        "duration_ms": None if duration_ms is None else round(duration_ms, 1), "outcome": outcome,
        "detail": detail[:2000] if detail else None,
    }
    conn.execute(
        text(
            f"INSERT INTO {t.log} (version, action, at, operator, host, duration_ms, outcome, detail)"
            " VALUES (:version, :action, :at, :operator, :host, :duration_ms, :outcome, :detail)"
        ),
        params,
    )
