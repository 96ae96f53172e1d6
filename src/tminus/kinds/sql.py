"""`sql`: statements through SQLAlchemy, read-only and rolled back unless `write: true`."""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tminus.db.sqltext import escape_literal_colons, split_statements
from tminus.kinds.base import SQLALCHEMY_IMPORTS, Effect, Observation, Refusal, Resource, StepContext
from tminus.kinds.registry import register
from tminus.runbook.models import SqlSpec
from tminus.runbook.roots import OutsideRoots, confine
from tminus.templating.templater import has_template

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

STATEMENT_EXCERPT = 2000
EVIDENCE_ROWS = 20
_engines_lock = threading.Lock()


def close_shared(shared: dict[str, Any]) -> None:
    """Dispose the run's engines (the session does when the run ends)."""
    for engine in shared.pop("sql.engines", {}).values():
        engine.dispose()


SQL_ENGINES = Resource("sql.engines", close_shared)  # restore disposes them too


def describe(c: SqlSpec, step: object, nested: object) -> str:
    what = c.query.strip().splitlines()[0] if c.query else f"file {c.file}"
    return f"sql{' (write)' if c.write else ''}: {what}"


def validate(c: SqlSpec) -> list[Refusal]:
    """A check's query written as several statements is refused before a run (a file's, at run time)."""
    if c.write or c.query is None or has_template(c.query):
        return []
    count = len(split_statements(c.query, sqlite=c.url.startswith("sqlite")))
    if count <= 1:
        return []
    return [Refusal("query", several_statements("the query", count),
                    "a COMMIT among them would end the check's read-only transaction")]


@register("sql", config=SqlSpec, effect=lambda c: Effect.IRREVERSIBLE if c.write else Effect.NONE,
          describe=describe, resources=(SQL_ENGINES,), validate=validate,
          queries=("rows", "count", "scalar", "rowcount"),
          imports=SQLALCHEMY_IMPORTS)
def execute(config: SqlSpec, ctx: StepContext) -> Observation:
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

    if config.file is not None:
        try:
            source = confine(config.file, ctx.base_dir, ctx.roots, what="the SQL file").read_text(encoding="utf-8")
        except OutsideRoots as exc:
            return Observation(error=str(exc))
        except OSError as exc:
            return Observation(error=f"cannot read SQL file {config.file}: {exc.strerror or exc}")
    else:
        source = config.query or ""
    try:
        engine = engine_for(ctx.shared, config.url, ctx.base_dir, write=config.write, roots=ctx.roots)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        return Observation(error=f"bad database URL {config.url!r}: {exc}")
    evidence: dict[str, Any] = {
        "url": engine.url.render_as_string(hide_password=True),
        "statement": ctx.head(source, STATEMENT_EXCERPT),
    }
    statements = split_statements(source, sqlite=engine.dialect.name == "sqlite")
    if not statements:
        return Observation(error="the SQL is empty; give a statement in 'query' or 'file'", evidence=evidence)
    if not config.write and len(statements) > 1:
        where = f"the file {config.file}" if config.file is not None else "the query"
        return Observation(error=several_statements(where, len(statements)), evidence=evidence)

    guard = _Guard(ctx, write=config.write)
    start = time.perf_counter()
    try:
        rows, rowcount = _run(engine, statements, config, guard)
    except (_Stopped, SQLAlchemyError, _driver_error()) as exc:
        evidence["duration_ms"] = round((time.perf_counter() - start) * 1000.0, 1)
        cause = str(exc.orig).strip() if isinstance(exc, DBAPIError) else str(exc).strip()
        if guard.stopped == "timeout" or "statement timeout" in cause:
            waited = ctx.timeout if ctx.timeout is not None else evidence["duration_ms"] / 1000
            return Observation(error=f"timed out after {waited:.1f}s", timed_out=True, evidence=evidence)
        if guard.stopped == "cancel":
            return Observation(error="interrupted (the run was cancelled)", evidence=evidence)
        return Observation(error=f"database error: {cause}", evidence=evidence)
    duration_ms = (time.perf_counter() - start) * 1000.0

    values: dict[str, Any] = {"rows": rows, "count": len(rows), "rowcount": rowcount}
    outputs: dict[str, Any] = {"rows": rows, "rowcount": rowcount, "scalar": None}
    if rows:
        values["scalar"] = outputs["scalar"] = next(iter(rows[0].values()), None)
    evidence.update(rows=rows[:EVIDENCE_ROWS], rowcount=rowcount, duration_ms=round(duration_ms, 1))
    if len(rows) > EVIDENCE_ROWS:
        evidence["rows_total"] = len(rows)
    return Observation(values=values, outputs=outputs, evidence=evidence)


def several_statements(where: str, count: int) -> str:
    """Why a check refuses a script: a COMMIT inside it would end the read-only transaction."""
    return (f"a check (a sql step without write: true) runs one statement in a read-only transaction, "
            f"and {where} has {count}; set write: true if the step changes the database, "
            f"or give each query a step of its own")


def _run(engine: Engine, statements: list[str], config: SqlSpec, guard: _Guard) -> tuple[list[dict[str, Any]], int]:
    """Execute every statement in one transaction. Rows come from the last statement that
    returns rows; rowcount adds up rows affected (DML) or returned (queries)."""
    rows: list[dict[str, Any]] = []
    rowcount = 0
    with engine.connect() as conn, guard.watch(conn):
        on_the_wire = _one_statement if conn.dialect.name == "postgresql" and not config.write else _statement
        for stmt in statements:
            guard.check()
            got, affected = on_the_wire(conn, stmt, config.params)
            if got is not None:
                rows = [{k: _json_safe(v) for k, v in r.items()} for r in got]
                rowcount += len(rows)
            else:
                rowcount += max(affected, 0)
        if config.write:
            conn.commit()
        else:
            conn.rollback()
    return rows, rowcount


Rows = list[dict[str, Any]]


def _statement(conn: Connection, stmt: str, params: dict[str, Any]) -> tuple[Rows | None, int]:
    """One statement through SQLAlchemy: (rows, or None when it returns none; rows affected)."""
    from sqlalchemy import text

    if params:
        result = conn.execute(text(escape_literal_colons(stmt)), params)
    else:
        # No text(): a colon inside a literal ('{"a":1}') must not become a parameter.
        result = conn.execution_options(no_parameters=True).exec_driver_sql(stmt)
    if result.returns_rows:
        return [{str(k): v for k, v in r._mapping.items()} for r in result], 0
    return None, result.rowcount


def _one_statement(conn: Connection, stmt: str, params: dict[str, Any]) -> tuple[Rows | None, int]:
    """A PostgreSQL check's statement through the extended query protocol (a pipeline always uses
    it), which carries exactly one statement: text the splitter misreads (an E'' escape) cannot
    smuggle a COMMIT and a write past the read-only transaction."""
    from sqlalchemy import text

    raw: Any = conn.connection.dbapi_connection
    sql, bound = stmt, None
    if params:  # compiled as SQLAlchemy would: :name becomes %(name)s, a literal % is doubled
        compiled = text(escape_literal_colons(stmt)).compile(dialect=conn.dialect)
        sql, bound = str(compiled), compiled.construct_params(params)
    with raw.cursor() as cur:
        with raw.pipeline():
            cur.execute(sql, bound)
        if cur.description is None:
            return None, cur.rowcount
        names = [d.name for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()], cur.rowcount


def _driver_error() -> type[Exception]:
    """psycopg's errors: a check's statement on PostgreSQL goes to the driver itself."""
    try:
        from psycopg import Error
    except ImportError:  # no PostgreSQL driver: nothing raises it
        return _Stopped
    return Error


class _Stopped(Exception):
    """Raised between statements when the step is cancelled or out of time."""


class _Guard:
    """Enforces read-only mode, the step timeout and cancel on one connection."""

    def __init__(self, ctx: StepContext, *, write: bool):
        self.cancel = ctx.cancel
        self.timeout = ctx.timeout
        self.deadline = time.monotonic() + ctx.timeout if ctx.timeout is not None else None
        self.write = write
        self.stopped: str | None = None

    def check(self) -> None:
        """Between statements: stop when cancelled or out of time."""
        if self._interrupted():
            raise _Stopped(self.stopped)

    def _interrupted(self) -> bool:
        if self.cancel.is_set():
            self.stopped = "cancel"
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.stopped = "timeout"
        return self.stopped is not None

    @contextmanager
    def watch(self, conn: Connection) -> Iterator[None]:
        raw: Any = conn.connection.dbapi_connection
        if conn.dialect.name == "sqlite":
            # The progress handler aborts a running statement without a watcher thread.
            raw.set_progress_handler(self._interrupted, 10_000)
            if not self.write:
                conn.exec_driver_sql("PRAGMA query_only = ON")
            try:
                yield
            finally:
                raw.set_progress_handler(None, 10_000)
                if not self.write:
                    conn.exec_driver_sql("PRAGMA query_only = OFF")  # the connection is pooled
            return
        if conn.dialect.name == "postgresql":
            if not self.write:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            if self.timeout is not None:
                ms = max(1, int(self.timeout * 1000))
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
            with _cancel_watcher(self, lambda: raw.cancel_safe()):
                yield
            return
        yield  # other databases: rollback is the only read-only guarantee


@contextmanager
def _cancel_watcher(guard: _Guard, cancel_query: Callable[[], None]) -> Iterator[None]:
    """Cancel the running PostgreSQL statement when the run is interrupted."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            if guard.cancel.is_set():
                guard.stopped = "cancel"
                cancel_query()
                return

    thread = threading.Thread(target=watch, name="tminus-sql-cancel", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()


def engine_for(shared: dict[str, Any], url: str, base_dir: Path, *, write: bool = True,
               roots: Iterable[str] = ()) -> Engine:
    """The run's engine for `url`; relative SQLite paths are relative to the runbook's folder, and
    stay inside it or a declared root (OutsideRoots, a ValueError, otherwise)."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is what tminus ships with
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database or ""
        if db and db != ":memory:" and not db.startswith("file:"):
            if Path(db).is_absolute():
                path = Path(db)  # a database named by its full path, like a server by its host
            else:
                path = base_dir / db
                confine(db, base_dir, roots, what="the SQLite database")
            if not write and not path.exists():
                # A read-only check must not create an empty database by accident.
                raise ValueError(f"SQLite database {path} does not exist; check the path")
            parsed = parsed.set(database=str(path))
    key = parsed.render_as_string(hide_password=False)
    read_only = not write and parsed.get_backend_name() == "postgresql"
    key += " (read-only)" if read_only else ""
    with _engines_lock:
        engines: dict[str, Engine] = shared.setdefault("sql.engines", {})
        engine = engines.get(key)
        if engine is None:
            if parsed.get_backend_name() == "sqlite":
                engine = create_engine(parsed)
                # pysqlite skips BEGIN before DDL; emit our own so a file is one transaction.
                event.listen(engine, "connect", _sqlite_autocommit_off)
                event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
            elif parsed.get_backend_name() == "postgresql":
                args: dict[str, Any] = {"connect_timeout": 10}
                if read_only:
                    # Checks get sessions of their own, read-only by default: a transaction begun
                    # after the check's own (a COMMIT that got through) is read-only too.
                    options = str(parsed.query.get("options", ""))
                    args["options"] = f"{options} -c default_transaction_read_only=on".strip()
                engine = create_engine(parsed, connect_args=args)
            else:
                engine = create_engine(parsed)
            engines[key] = engine
    return engine


def _sqlite_autocommit_off(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None


def _json_safe(value: Any) -> Any:
    """Database values as JSON: ledger evidence and expectations need plain types."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    return str(value)
