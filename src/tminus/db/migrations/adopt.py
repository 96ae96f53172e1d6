"""Adopting an existing migrations table: the application's own tracking table (another shape, e.g.
`schema_migrations(version, applied_at)`), named by `table:` and read through a `columns:` mapping
from tminus's notions (version, name, applied_at, checksum) to its columns.

This module is the shape: the mapping, what the table has, and the errors when the two do not fit
(each names the table, the columns found with their types, the columns expected, and the mapping
to write). foreign.py reads and writes its rows. Nothing here writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tminus.db.migrations.errors import MigrationError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

NOTIONS = ("version", "name", "applied_at", "checksum")
# tminus's own table, as store.create makes it
OWN_COLUMNS = ("version", "name", "checksum", "applied_at", "duration_ms", "operator", "host")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What other tools call each notion, for the hint (Flyway, Rails, Sqitch, Django, golang-migrate...)
_LIKELY = {
    "version": ("version", "version_num", "installed_rank", "change_id", "id", "migration", "filename", "file"),
    "name": ("name", "description", "script", "change", "migration_name"),
    "applied_at": ("applied_at", "installed_on", "executed_at", "run_on", "applied", "committed_at",
                   "created_at", "inserted_at", "timestamp"),
    "checksum": ("checksum", "hash", "md5", "sha256", "digest"),
}


class ShapeError(MigrationError):
    """The tracking table is not of the shape tminus expects (its own, or the `columns:` mapping)."""

    def __init__(self, message: str, *, table: str, found: list[Column]):
        self.table = table
        self.found = found
        super().__init__(message)


@dataclass(frozen=True)
class Columns:
    """The mapping: tminus's notion -> the adopted table's column. `version` is required."""

    version: str
    name: str | None = None
    applied_at: str | None = None
    checksum: str | None = None

    @classmethod
    def parse(cls, mapping: dict[str, Any]) -> Columns:
        """From `{notion: column}` as written (runbook or `--column notion=column`); refuses unknown
        notions, a missing version, names that are not plain identifiers, one column mapped twice."""
        unknown = sorted(set(mapping) - set(NOTIONS))
        if unknown:
            raise MigrationError(f"unknown column notion {', '.join(map(repr, unknown))}; expected one of"
                                 f" {', '.join(NOTIONS)} (e.g. version: version, applied_at: applied_at)")
        if not mapping.get("version"):
            raise MigrationError("the columns mapping needs 'version': the column holding each applied version"
                                 " (e.g. version: version)")
        for notion, column in mapping.items():
            if not isinstance(column, str) or not _IDENT.match(column):
                raise MigrationError(f"column of {notion!r} is {column!r}, not a plain column name; use letters,"
                                     " digits and _ (e.g. applied_at: installed_on)")
        seen: dict[str, str] = {}
        for notion, column in mapping.items():
            if column.lower() in seen:
                raise MigrationError(f"column {column!r} is mapped twice ({seen[column.lower()]} and {notion});"
                                     " map each notion to its own column")
            seen[column.lower()] = notion
        return cls(**mapping)

    def mapped(self) -> dict[str, str]:
        return {n: c for n in NOTIONS if (c := getattr(self, n)) is not None}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    has_default: bool
    integer: bool
    temporal: bool
    length: int | None

    def __str__(self) -> str:
        return f"{self.name} {self.type}{'' if self.nullable else ' NOT NULL'}"


def columns_of(conn: Connection, table: str) -> list[Column] | None:
    """The table's columns, None when there is no such table."""
    from sqlalchemy import inspect
    from sqlalchemy.types import Date, DateTime, Integer

    schema, _, name = table.rpartition(".")
    insp = inspect(conn)
    if not insp.has_table(name, schema=schema or None):
        return None
    pk = insp.get_pk_constraint(name, schema=schema or None).get("constrained_columns") or []
    declared: dict[str, str] = {}
    if conn.dialect.name == "sqlite":  # the type as written: INT and INTEGER read back alike
        prefix = f'"{schema}".' if schema else ""
        quoted = name.replace('"', '""')
        declared = {r[1]: str(r[2]) for r in conn.exec_driver_sql(f'PRAGMA {prefix}table_info("{quoted}")')}
    out = []
    for c in insp.get_columns(name, schema=schema or None):
        typ = c["type"]
        integer = isinstance(typ, Integer)
        # SQLite's INTEGER PRIMARY KEY (that type name exactly, not INT) is the rowid: it fills itself
        # like a serial or identity column
        rowid = declared.get(c["name"], "").upper() == "INTEGER" and pk == [c["name"]]
        out.append(Column(
            name=c["name"], type=str(typ), nullable=bool(c.get("nullable", True)) and c["name"] not in pk,
            has_default=c.get("default") is not None or bool(c.get("identity")) or rowid,
            integer=integer, temporal=isinstance(typ, DateTime | Date), length=getattr(typ, "length", None),
        ))
    return out


def found_text(found: list[Column]) -> str:
    return ", ".join(f"{c.name} ({c.type})" for c in found) or "(no columns)"


def guess(found: list[Column]) -> dict[str, str]:
    """The mapping the hint proposes: the likeliest column for each notion, by name."""
    names = {c.name.lower(): c.name for c in found}
    out: dict[str, str] = {}
    for notion, likely in _LIKELY.items():
        for candidate in likely:
            if candidate in names and names[candidate] not in out.values():
                out[notion] = names[candidate]
                break
    if "version" not in out and found:
        out = {"version": found[0].name, **{k: v for k, v in out.items() if v != found[0].name}}
    return out


def hint(found: list[Column]) -> str:
    mapping = guess(found)
    yaml = ", ".join(f"{k}: {v}" for k, v in mapping.items())
    flags = " ".join(f"--column {k}={v}" for k, v in mapping.items())
    return (f"to adopt it, map its columns in the migrate step (check each one):\n    columns: {{{yaml}}}\n"
            f"  or on the command line: {flags}\n"
            "  (see 'Adopting an existing migrations table' in docs/concepts.md); or give tminus a table of its"
            " own: table: tminus_migrations")


def check_own(conn: Connection, table: str) -> None:
    """tminus's own table, when it exists, must have tminus's columns: another tool's table of the
    same name (a `schema_migrations` of Rails or the application) is refused with the mapping to write."""
    found = columns_of(conn, table)
    if found is None:
        return
    have = {c.name.lower() for c in found}
    missing = [c for c in OWN_COLUMNS if c not in have]
    if missing:
        raise ShapeError(
            f"tracking table {table} exists but is not tminus's: it has no column {', '.join(missing)}"
            f"\n  found:    {found_text(found)}\n  expected: {', '.join(OWN_COLUMNS)} (tminus's own table), or a"
            f" columns mapping of {table}'s own shape\n  hint: {hint(found)}",
            table=table, found=found,
        )


def resolve(conn: Connection, table: str, columns: Columns) -> dict[str, Column]:
    """notion -> the adopted table's column, checked: the table exists and has every mapped column
    (matched without regard to case, as PostgreSQL folds unquoted names)."""
    found = columns_of(conn, table)
    if found is None:
        raise ShapeError(
            f"table {table} does not exist, so there is nothing to adopt; 'columns:' maps an existing table"
            f" (the application's own migrations table). Check 'table:' (schema.table if it is not in the"
            f" search path), or remove 'columns:' to let tminus keep a table of its own",
            table=table, found=[],
        )
    by_name = {c.name.lower(): c for c in found}
    out: dict[str, Column] = {}
    missing = []
    for notion, name in columns.mapped().items():
        col = by_name.get(name.lower())
        if col is None:
            missing.append(f"{notion} -> {name}")
        else:
            out[notion] = col
    if missing:
        raise ShapeError(
            f"table {table} has no column for {', '.join(missing)}\n  found:    {found_text(found)}\n"
            f"  expected: the mapped columns {', '.join(columns.mapped().values())}\n  hint: {hint(found)}",
            table=table, found=found,
        )
    return out


def check_writable(conn: Connection, table: str, mapped: dict[str, Column]) -> None:
    """Before tminus writes a row of its own shape: every column it does not fill must fill itself."""
    found = columns_of(conn, table) or []
    used = {c.name for c in mapped.values()}
    blocking = [c for c in found if c.name not in used and not c.nullable and not c.has_default]
    if blocking:
        names = ", ".join(str(c) for c in blocking)
        raise ShapeError(
            f"cannot record a migration in {table}: column {names} is NOT NULL without a default and not"
            f" mapped, so a row tminus writes would be refused\n  found:    {found_text(found)}\n"
            f"  expected: every column besides {', '.join(sorted(used))} nullable or with a default\n"
            f"  hint: map it if it is one of {', '.join(NOTIONS)}; otherwise only status and verify can adopt"
            f" this table (read-only), or give it a default (ALTER TABLE {table} ALTER COLUMN"
            f" {blocking[0].name} SET DEFAULT ...)",
            table=table, found=found,
        )
