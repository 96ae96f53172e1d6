"""Ordered SQL migrations with checksums, verify scripts, reverts and a migration lock.

A directory holds `NNNN_name.sql`, optionally `NNNN_name.down.sql` (revert) and `NNNN_name.verify.sql`
(a query whose first column is true once the migration is in place). Each migration runs in its own
transaction with its tracking row, unless its leading comments say `-- tminus: no-transaction`: then
its statements run one by one in autocommit and each completed statement is recorded, so an
interrupted run resumes at the next statement. See lock.py for how migrators exclude each
other; adopt.py and foreign.py for a tracking table of the application's own shape (`columns`).
Typical use:

    with Migrator(url, "migrations") as m:
        print(m.status())
        m.migrate()
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tminus.db.migrations import adopt, foreign, store
from tminus.db.migrations.adopt import Columns
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
from tminus.db.migrations.errors import (
    cause as _cause,
)
from tminus.db.migrations.errors import (
    excerpt as _excerpt,
)
from tminus.db.migrations.files import MigrationFile, checksum, discover
from tminus.db.migrations.lock import migration_lock
from tminus.db.migrations.report import (
    AppliedState,
    Done,
    HalfApplied,
    Outcome,
    Status,
    invalid_index_fix,
    invalid_indexes,
    run_verify_script,
)
from tminus.db.migrations.store import AppliedRow, Tables
from tminus.processes import default_operator

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "AppliedState", "Done", "DriftError", "HalfApplied", "HalfAppliedError", "LockTimeout", "MigrationError",
    "MigrationFailed", "MigrationFileError", "MigrationLockTimeout", "Migrator", "NotRevertible", "Outcome",
    "RevertIncomplete", "Status", "VerifyFailed",
]

def _lock_not_available(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    return (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) == "55P03"


class Migrator:
    def __init__(
        self,
        url: str,
        directory: str | Path,
        *,
        table: str = "schema_migrations",
        columns: Columns | None = None,
        lock_timeout: float = 5.0,
        statement_timeout: float | None = None,
        lock_retries: int = 3,
        lock_wait: float = 60.0,
        operator: str | None = None,
        host: str | None = None,
        on_event: Callable[[str], None] | None = None,
        on_start: Callable[[Outcome], None] | None = None,
    ):
        self.url = url
        self.directory = Path(directory)
        self.tables = Tables(table, adopted=columns is not None)
        self.columns = columns  # the mapping of an adopted table: read and written in its own shape
        self.lock_timeout = lock_timeout
        self.statement_timeout = statement_timeout
        self.lock_retries = lock_retries
        self.lock_wait = lock_wait
        self.operator = operator or default_operator()
        self.host = host or socket.gethostname()
        self.on_event = on_event or (lambda _msg: None)
        # Called under the lock with the plan, before the first migration is applied: the caller
        # records where the database was (a crash mid-apply must not lose the revert target).
        self.on_start = on_start or (lambda _plan: None)
        self._engine: Engine | None = None
        # The migrate or revert under way, as far as it got: when a later version fails, the
        # versions before it stay committed and a rollback must know where this run started.
        self.progress: Outcome | None = None

    # --- connections ------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> Engine:
        from sqlalchemy import create_engine, event
        from sqlalchemy.engine import make_url

        parsed = make_url(self.url)
        if parsed.get_backend_name() == "postgresql":
            # Session settings ride on the connection string so every connection (the lock one,
            # autocommit ones) has them without an extra round trip or a transaction.
            options = f"-c lock_timeout={max(1, int(self.lock_timeout * 1000))}"
            if self.statement_timeout is not None:
                options += f" -c statement_timeout={max(1, int(self.statement_timeout * 1000))}"
            app = f"tminus migrate {self.operator}@{self.host}"[:63]
            return create_engine(
                parsed, connect_args={"connect_timeout": 10, "application_name": app, "options": options}
            )
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed)

            def autocommit_off(dbapi_conn: Any, _record: Any) -> None:
                # We issue BEGIN IMMEDIATE ourselves: pysqlite would otherwise commit before DDL.
                dbapi_conn.isolation_level = None

            event.listen(engine, "connect", autocommit_off)
            return engine
        return create_engine(parsed)

    @property
    def sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Migrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One transaction: committed on success, rolled back on any error."""
        with self.engine.connect() as conn:
            if self.sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock now, not mid-migration
            try:
                yield conn
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def _autocommit(self, conn: Connection) -> Connection:
        # SQLite connections already autocommit (isolation_level None) outside an explicit BEGIN.
        return conn if self.sqlite else conn.execution_options(isolation_level="AUTOCOMMIT")

    def _log(self, version: str, action: str, outcome: str, duration_ms: float | None, detail: str | None) -> None:
        with self._tx() as conn:
            store.log(conn, self.tables, version=version, action=action, operator=self.operator, host=self.host,
                      duration_ms=duration_ms, outcome=outcome, detail=detail)

    # --- reading ----------------------------------------------------------------------------

    def files(self) -> list[MigrationFile]:
        return discover(self.directory)

    def _read(self) -> tuple[list[AppliedRow], dict[str, dict[int, str]], list[str]]:
        """What is applied (read only: an adopted table and its side tables are never written here)."""
        with self.engine.connect() as conn:
            if self.columns is None:
                adopt.check_own(conn, self.tables.main)
                rows = store.applied(conn, self.tables)
            else:
                rows = self._foreign(conn).rows(conn, self.files(), store.applied(conn, self.tables))
            return rows, store.progress(conn, self.tables), invalid_indexes(conn)

    def _foreign(self, conn: Connection) -> foreign.Foreign:
        assert self.columns is not None
        return foreign.Foreign(self.tables.main, adopt.resolve(conn, self.tables.main, self.columns))

    def _check_shape(self, *, inserts: bool) -> None:
        """Before anything is written (the lock row, the side tables), and in a dry run: the tracking
        table's shape; with `inserts`, that a row of an adopted table's shape can be written."""
        with self.engine.connect() as conn:
            if self.columns is None:
                adopt.check_own(conn, self.tables.main)
            else:
                mapped = self._foreign(conn).mapped
                if inserts:
                    adopt.check_writable(conn, self.tables.main, mapped)

    def _record(self, conn: Connection, mf: MigrationFile, ms: float) -> None:
        """`mf` applied: tminus's row, and in an adopted table the row of its own shape."""
        store.record_applied(conn, self.tables, self._row(mf, ms))
        if self.columns is not None:
            self._foreign(conn).insert(conn, mf)

    def _forget(self, conn: Connection, version: str) -> None:
        store.remove(conn, self.tables, version)
        if self.columns is not None:
            self._foreign(conn).delete(conn, version)

    def status(self) -> Status:
        files = self.files()
        rows, progress, invalid = self._read()
        return self._status(files, rows, progress, invalid)

    def _status(self, files: list[MigrationFile], rows: list[AppliedRow], progress: dict[str, dict[int, str]],
                invalid: list[str]) -> Status:
        by_version = {f.version: f for f in files}
        st = Status(current=rows[-1].version if rows else "", invalid_indexes=invalid)
        if self.columns is not None:
            st.adopted = {"table": self.tables.main, "columns": self.columns.mapped(), "side": self.tables.own}
            st.current = next((r.version for r in reversed(rows) if r.version in by_version), "")
            st.problems.extend(foreign.problems(rows, by_version, self.tables.main))
        for r in rows:
            mf = by_version.get(r.version)
            state = "missing" if mf is None else (
                "unchecked" if not r.checksum else "ok" if foreign.same_checksum(mf, r.checksum) else "changed")
            st.applied.append(AppliedState(**r.__dict__, state=state, file_checksum=mf.checksum if mf else None))
            when = f"applied {r.applied_at or 'at a time not recorded'}" + (
                f" by {r.operator}@{r.host}" if r.operator else "")
            if mf is None and r.recorded is not None:
                st.problems.append(
                    f"{self.tables.main} records version {r.recorded!r} ({when}) but no migration file in"
                    f" {self.directory} matches it ({foreign.RULE}); restore the file, or if the application"
                    " applied it by other means, add it to the directory"
                )
            elif mf is None:
                st.problems.append(
                    f"version {r.version} ({r.name}, {when}) is recorded as applied but no {r.version}_*.sql"
                    f" is in {self.directory}; restore the file (checksum {r.checksum})"
                )
            elif state == "changed":
                st.problems.append(
                    f"{mf.path.name} changed after it was applied ({when}): checksum was {r.checksum},"
                    f" is now {mf.checksum}"
                )
        applied = {r.version for r in rows}
        for mf in files:
            if mf.version in applied:
                continue
            st.pending.append({"version": mf.version, "name": mf.name, "file": str(mf.path),
                               "transactional": mf.transactional})
            if st.current and mf.version < st.current:
                st.problems.append(
                    f"{mf.path.name} is not applied but the later version {st.current} is; migrations apply in"
                    " order, so give it a version after the latest applied one"
                )
        for version, done in sorted(progress.items()):
            mf = by_version.get(version)
            total = len(mf.statements(sqlite=self.sqlite)) if mf else None
            st.half_applied.append(HalfApplied(version, mf.name if mf else "?", len(done), total))
        if invalid:
            st.problems.append(invalid_index_fix(invalid))
        return st

    def verify(self) -> Status:
        """Check for drift and half-applied migrations, then run every applied migration's verify
        script (rolled back). Raises DriftError, HalfAppliedError or VerifyFailed."""
        st = self.status()
        self._raise_drift(st)
        if st.half_applied:
            h = st.half_applied[0]
            raise HalfAppliedError(
                f"migration {h.version} is half-applied ({h.done} of {h.total} statements); run migrate to finish it"
            )
        by_version = {f.version: f for f in self.files()}
        for a in st.applied:
            mf = by_version[a.version]
            if mf.verify is None:
                continue
            with self.engine.connect() as conn:
                try:
                    why = run_verify_script(conn, mf, sqlite=self.sqlite)
                except Exception as exc:
                    why = f"{mf.verify.name} failed: {_cause(exc)}"
                conn.rollback()
            if why:
                raise VerifyFailed(f"verify of applied migration {a.version} failed: {why}", version=a.version)
        return st

    def _raise_drift(self, st: Status) -> None:
        drift = [p for p in st.problems if "INVALID" not in p]
        if drift:
            raise DriftError(drift)

    # --- migrate ----------------------------------------------------------------------------

    def migrate(self, to: str | None = None, dry_run: bool = False) -> Outcome:
        """Apply pending migrations up to `to` (default: all), each verified."""
        files = self.files()
        target = self._target(files, to)
        self._check_shape(inserts=True)
        if dry_run:
            return self._plan_migrate(files, target, *self._read())
        me = f"tminus migrate {self.operator}@{self.host}"
        with migration_lock(self.engine, self.tables, self.lock_wait, me):
            with self._tx() as conn:
                store.create(conn, self.tables)
            # Read again under the lock: another migrator may have applied versions meanwhile.
            outcome = self._plan_migrate(files, target, *self._read())
            outcome.dry_run = False
            self.progress = progress = Outcome("migrate", outcome.before, outcome.before)
            if outcome.done:
                self.on_start(outcome)
            by_version = {f.version: f for f in files}
            for planned in outcome.done:
                mf = by_version[planned.version]
                self.on_event(f"applying {mf.path.name} ...")
                if not planned.resumed_from:  # resumed: the first attempt recorded the schema before it
                    from tminus.db.migrations.proof import record_before

                    planned.proof_ms = round(record_before(self, mf), 1)
                done = self._apply(mf) if mf.transactional else self._apply_stepwise(mf)
                planned.duration_ms = done.duration_ms
                progress.done.append(planned)
                progress.after = planned.version
                self.on_event(f"applied {mf.path.name} in {done.duration_ms:.0f} ms")
            return outcome

    def _target(self, files: list[MigrationFile], to: str | None) -> str | None:
        if to is None:
            return None
        width = len(files[0].version) if files else len(to)
        norm = to.zfill(width) if to.isdigit() else to
        if norm not in {f.version for f in files} and norm.strip("0"):
            raise MigrationError(
                f"target version {to!r} is not in {self.directory}; expected one of "
                + (", ".join(f.version for f in files) or "(no migrations)")
            )
        return norm

    def _plan_migrate(self, files: list[MigrationFile], target: str | None, rows: list[AppliedRow],
                      progress: dict[str, dict[int, str]], invalid: list[str]) -> Outcome:
        st = self._status(files, rows, progress, invalid)
        self._raise_drift(st)
        pending = [f for f in files if f.version not in {r.version for r in rows}]
        if target is not None:
            pending = [f for f in pending if f.version <= target]
        if invalid and pending and not pending[0].transactional:
            raise HalfAppliedError(f"cannot resume {pending[0].path.name}: {invalid_index_fix(invalid)}")
        done = [
            Done(f.version, f.name, str(f.path), len(f.statements(sqlite=self.sqlite)),
                 resumed_from=len(progress.get(f.version, {})), transactional=f.transactional)
            for f in pending
        ]
        after = done[-1].version if done else st.current
        return Outcome("migrate", st.current, after, done, dry_run=True)

    def _retrying(self, run: Callable[[], Any], what: Callable[[], str], version: str) -> Any:
        """Run `run`, again after a lock_timeout failure (SQLSTATE 55P03) up to lock_retries times."""
        delay = 0.2
        for attempt in range(self.lock_retries + 1):
            try:
                return run()
            except Exception as exc:
                if not _lock_not_available(exc):
                    raise
                if attempt == self.lock_retries:
                    stmt = what()
                    raise LockTimeout(
                        f"migration {version}: statement could not get its lock within lock_timeout"
                        f" {self.lock_timeout:g}s, {attempt + 1} attempt(s): {_excerpt(stmt)}\n  another session"
                        " holds a conflicting lock on the table (see pg_locks); run when it is idle, or raise"
                        " lock_timeout / lock_retries",
                        version=version, statement=stmt,
                    ) from exc
                self.on_event(f"{version}: lock not available, retrying in {delay:.1f}s")
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def _apply(self, mf: MigrationFile) -> Done:
        statements = mf.statements(sqlite=self.sqlite)
        current = [""]

        def attempt() -> float:
            start = time.perf_counter()
            with self._tx() as conn:
                plain = conn.execution_options(no_parameters=True)
                for stmt in statements:
                    current[0] = stmt
                    plain.exec_driver_sql(stmt)
                current[0] = ""
                if mf.verify is not None:
                    self._verify_applied(conn, mf)
                ms = (time.perf_counter() - start) * 1000
                self._record(conn, mf, ms)
                store.log(conn, self.tables, version=mf.version, action="apply", operator=self.operator,
                          host=self.host, duration_ms=ms, outcome="ok")
            return ms

        try:
            ms = self._retrying(attempt, lambda: current[0], mf.version)
        except MigrationFailed as exc:
            self._log(mf.version, "apply", "failed", None, str(exc))
            raise
        except Exception as exc:
            self._log(mf.version, "apply", "failed", None, _cause(exc))
            raise MigrationFailed(
                f"migration {mf.path.name} failed and was rolled back (schema and {self.tables.main} unchanged):"
                f" {_cause(exc)}\n  statement: {_excerpt(current[0])}\n  fix the file and run migrate again",
                version=mf.version, statement=current[0],
            ) from exc
        return Done(mf.version, mf.name, str(mf.path), len(statements), ms)

    def _verify_applied(self, conn: Connection, mf: MigrationFile) -> None:
        try:
            why = run_verify_script(conn, mf, sqlite=self.sqlite)
        except Exception as exc:
            why = f"{mf.verify.name if mf.verify else 'verify'} raised: {_cause(exc)}"
        if why:
            raise VerifyFailed(
                f"verify of migration {mf.version} failed: {why}; the migration"
                + (" was rolled back" if mf.transactional else " ran but is not recorded as applied")
                + ". Fix the migration or its verify script and run migrate again",
                version=mf.version,
            )

    def _row(self, mf: MigrationFile, ms: float) -> AppliedRow:
        return AppliedRow(mf.version, mf.name, mf.checksum, store.now(), round(ms, 1), self.operator, self.host)

    def _apply_stepwise(self, mf: MigrationFile) -> Done:
        """A no-transaction migration: statement by statement in autocommit, each recorded."""
        statements = mf.statements(sqlite=self.sqlite)
        with self.engine.connect() as conn:
            done = store.progress(conn, self.tables).get(mf.version, {})
        for index, digest in sorted(done.items()):
            if index >= len(statements) or checksum(statements[index]) != digest:
                raise MigrationFailed(
                    f"{mf.path.name}: statement {index + 1} already ran in an earlier, interrupted run but has"
                    " changed since; only statements after the completed ones may be edited. Restore it, or"
                    f" undo its effect by hand and DELETE FROM {self.tables.progress} WHERE version = '{mf.version}'",
                    version=mf.version,
                )
        start = time.perf_counter()
        for index, stmt in enumerate(statements):
            if index in done:
                continue

            def run(stmt: str = stmt) -> None:
                with self.engine.connect() as conn:
                    self._autocommit(conn).execution_options(no_parameters=True).exec_driver_sql(stmt)
                    conn.commit()

            try:
                self._retrying(run, lambda stmt=stmt: stmt, mf.version)  # type: ignore[misc]
            except Exception as exc:
                msg = (f"migration {mf.path.name} (no-transaction) stopped at statement {index + 1} of"
                       f" {len(statements)}: {_cause(exc)}\n  statement: {_excerpt(stmt)}\n  statements 1-{index}"
                       " stay applied; fix the file and run migrate again: it resumes at this statement")
                with self.engine.connect() as conn:
                    invalid = invalid_indexes(conn)
                if invalid:
                    msg += "\n  " + invalid_index_fix(invalid)
                self._log(mf.version, "apply", "failed", None, msg)
                if isinstance(exc, MigrationFailed):
                    raise
                raise MigrationFailed(msg, version=mf.version, statement=stmt) from exc
            with self._tx() as conn:
                store.record_progress(conn, self.tables, mf.version, index, checksum(stmt))
        ms = (time.perf_counter() - start) * 1000
        with self._tx() as conn:
            if mf.verify is not None:
                try:
                    self._verify_applied(conn, mf)
                except VerifyFailed as exc:
                    conn.rollback()
                    self._log(mf.version, "apply", "failed", ms, str(exc))
                    raise
            self._record(conn, mf, ms)
            store.log(conn, self.tables, version=mf.version, action="apply", operator=self.operator,
                      host=self.host, duration_ms=ms, outcome="ok")
        return Done(mf.version, mf.name, str(mf.path), len(statements), ms, resumed_from=len(done),
                    transactional=False)

    # --- revert (in revert.py) ------------------------------------------------------------

    def revert(self, to: str, dry_run: bool = False) -> Outcome:
        """Run down files of applied versions above `to`, newest first; `to="0"` reverts everything.
        After each, the migration's verify script must fail: otherwise its objects are still there."""
        from tminus.db.migrations.revert import revert

        return revert(self, to, dry_run=dry_run)

    def stamp(self, to: str, dry_run: bool = False) -> Outcome:
        """Record versions up to `to` as applied without running them (stamp.py)."""
        from tminus.db.migrations.stamp import stamp

        return stamp(self, to, dry_run=dry_run)
