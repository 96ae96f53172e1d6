"""Database URLs for the backup/restore/fingerprint code, and the PostgreSQL client tools.

A SQLAlchemy URL becomes libpq environment variables for pg_dump/pg_restore (the password goes
in PGPASSWORD, never on a command line where `ps` would show it) and keyword arguments for
psycopg. SQLite URLs become plain file paths.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tminus.errors import TminusError

if TYPE_CHECKING:
    import psycopg

MAINTENANCE_DB = "postgres"  # where CREATE/DROP/RENAME DATABASE run from
CONNECT_TIMEOUT = 10


class DatabaseUrlError(TminusError):
    """The URL is not a PostgreSQL or SQLite URL these commands can use."""


class PgToolError(TminusError):
    """pg_dump or pg_restore is missing or failed."""


class PgVersionMismatch(PgToolError):
    """pg_dump is older than the server (it refuses to dump newer servers)."""

    def __init__(self, tool_version: str, server_version: str):
        self.tool_version = tool_version
        self.server_version = server_version
        major = server_version.split(".")[0] if server_version[:1].isdigit() else "<server major>"
        super().__init__(
            f"pg_dump {tool_version} cannot dump a PostgreSQL {server_version} server: the client tools "
            f"must be the server's major version or newer. Install the PostgreSQL {major} client tools "
            f"(e.g. `apt install postgresql-client-{major}`) and put them first on PATH"
        )


@dataclass(frozen=True)
class PgTarget:
    """One PostgreSQL database, as libpq connection parameters."""

    host: str | None
    port: int | None
    user: str | None
    password: str | None
    database: str
    options: tuple[tuple[str, str], ...] = ()  # URL query parameters, e.g. sslmode

    def with_database(self, name: str) -> PgTarget:
        return replace(self, database=name)

    def env(self) -> dict[str, str]:
        """The process environment for pg_dump/pg_restore/psql aimed at this database."""
        env = dict(os.environ)
        pairs = {"PGHOST": self.host, "PGPORT": str(self.port) if self.port else None,
                 "PGUSER": self.user, "PGPASSWORD": self.password, "PGDATABASE": self.database}
        for key, value in pairs.items():
            if value is not None:
                env[key] = value
        for key, value in self.options:
            if key in _LIBPQ_ENV:
                env[_LIBPQ_ENV[key]] = value
        return env

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"dbname": self.database, "connect_timeout": CONNECT_TIMEOUT}
        for key in ("host", "port", "user", "password"):
            if getattr(self, key) is not None:
                kwargs[key] = getattr(self, key)
        kwargs.update({k: v for k, v in self.options if k in _LIBPQ_ENV})
        return kwargs

    def display(self) -> str:
        """For messages and evidence: never the password."""
        auth = f"{self.user}:***@" if self.password else (f"{self.user}@" if self.user else "")
        where = f"{self.host or 'localhost'}:{self.port or 5432}"
        return f"postgresql://{auth}{where}/{self.database}"


# URL query parameters passed on to libpq; anything else (driver options) is ignored
_LIBPQ_ENV = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT",
              "sslkey": "PGSSLKEY", "application_name": "PGAPPNAME", "options": "PGOPTIONS"}


def backend(url: str) -> str:
    """'postgresql' or 'sqlite'; anything else is refused with the supported forms."""
    parsed = _parse(url)
    name = parsed.get_backend_name()
    if name not in ("postgresql", "sqlite"):
        raise DatabaseUrlError(
            f"{mask_url(url)}: backups, restore and fingerprints support PostgreSQL and SQLite, "
            f"not '{name}'; use postgresql+psycopg://user@host/db or sqlite:///path/to.db"
        )
    return str(name)


def pg_target(url: str) -> PgTarget:
    parsed = _parse(url)
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        raise DatabaseUrlError(f"{mask_url(url)}: expected postgresql://user@host:port/database")
    options = tuple((k, str(v)) for k, v in sorted(parsed.query.items()) if isinstance(v, str))
    host = parsed.host
    if host is None and "host" in parsed.query:  # unix socket: ?host=/var/run/postgresql
        host = str(parsed.query["host"])
    return PgTarget(host, parsed.port, parsed.username, parsed.password, parsed.database, options)


def sqlite_path(url: str, base_dir: Path | None = None) -> Path:
    """The file of a SQLite URL; relative paths are relative to `base_dir` (the runbook's folder)."""
    parsed = _parse(url)
    db = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        raise DatabaseUrlError(f"{url}: expected a SQLite file URL like sqlite:///path/to.db")
    path = Path(db)
    return path if path.is_absolute() or base_dir is None else base_dir / path


def resolve_url(url: str, base_dir: Path) -> str:
    """`url` with a relative SQLite path made relative to `base_dir`; other URLs unchanged."""
    if backend(url) != "sqlite":
        return url
    return f"sqlite:///{sqlite_path(url, base_dir)}"


def mask_url(url: str) -> str:
    """The URL for messages, with any password replaced by ***."""
    try:
        return str(_parse(url).render_as_string(hide_password=True))
    except DatabaseUrlError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _parse(url: str) -> Any:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except ArgumentError as exc:
        masked = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
        raise DatabaseUrlError(f"{masked}: not a database URL ({exc}); "
                               f"expected e.g. postgresql+psycopg://user@host/db") from None


def connect(target: PgTarget, database: str | None = None) -> psycopg.Connection[Any]:
    """An autocommit psycopg connection (CREATE/DROP DATABASE cannot run inside a transaction)."""
    import psycopg

    kwargs = target.connect_kwargs()
    if database is not None:
        kwargs["dbname"] = database
    try:
        return psycopg.connect(autocommit=True, **kwargs)
    except psycopg.Error as exc:
        raise PgToolError(f"cannot connect to {target.with_database(kwargs['dbname']).display()}: "
                          f"{_clean(str(exc), target)}") from None


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def run_tool(args: list[str], target: PgTarget, *, timeout: float | None = None) -> str:
    """Run a PostgreSQL client tool against `target`; its stdout, or PgToolError with its stderr."""
    try:
        proc = subprocess.run([*args], env=target.env(), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise PgToolError(f"{args[0]} not found on PATH; install the PostgreSQL client tools "
                          f"(e.g. `apt install postgresql-client`)") from None
    except subprocess.TimeoutExpired:
        raise PgToolError(f"{args[0]} did not finish within {timeout:.0f}s; raise the step timeout") from None
    if proc.returncode != 0:
        stderr = _clean(proc.stderr, target)
        mismatch = parse_version_mismatch(stderr)
        if mismatch is not None:
            raise PgVersionMismatch(*mismatch)
        raise PgToolError(f"{args[0]} failed (exit {proc.returncode}) on {target.display()}: {stderr.strip()}")
    return proc.stdout


# "pg_dump: detail: server version: 16.2 (Debian 16.2-1); pg_dump version: 15.20 (Debian 15.20-0)"
_MISMATCH = re.compile(r"server version:\s*([0-9][\w.]*)[^;\n]*;\s*pg_dump version:\s*([0-9][\w.]*)")


def parse_version_mismatch(stderr: str) -> tuple[str, str] | None:
    """(pg_dump version, server version) from pg_dump's "server version mismatch" error."""
    if "version mismatch" not in stderr:
        return None
    m = _MISMATCH.search(stderr)
    if m is None:
        return ("unknown", "unknown")
    return (m.group(2), m.group(1))


def _clean(text: str, target: PgTarget) -> str:
    """Tool output with the password removed, should a tool ever echo it."""
    return text.replace(target.password, "***") if target.password else text


# --- scratch databases -----------------------------------------------------------------------


def create_scratch(target: PgTarget, prefix: str) -> str:
    """Create an empty database `<prefix><random>` on the target's server; its name.

    From template0, so objects added to template1 cannot clash with the restored ones.
    """
    import uuid

    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    with connect(target, MAINTENANCE_DB) as admin:
        try:
            admin.execute(f"CREATE DATABASE {ident(name)} TEMPLATE template0")
        except Exception as exc:
            raise PgToolError(f"cannot create the scratch database {name} on {target.display()}: "
                              f"{_clean(str(exc), target)}; the user needs the CREATEDB privilege") from None
    return name


def drop_database(target: PgTarget, name: str) -> None:
    """Drop `name` on the target's server, disconnecting anyone still in it."""
    with connect(target, MAINTENANCE_DB) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {ident(name)} WITH (FORCE)")


def pg_restore_into(target: PgTarget, file: Path, *, timeout: float | None = None) -> None:
    """pg_restore a custom-format dump into the (empty) database `target`; stop at the first error."""
    run_tool(["pg_restore", "--exit-on-error", "--no-password", "--dbname", target.database, str(file)],
             target, timeout=timeout)
