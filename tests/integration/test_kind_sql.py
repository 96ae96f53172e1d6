"""The `sql` kind against a real SQLite file and the real local PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers_kinds import run_step
from tminus.kinds.sql import close_shared


class Db:
    """Runs sql steps against one database, sharing engines like a run does."""

    def __init__(self, url: str, base_dir: Path):
        self.url = url
        self.base_dir = base_dir
        self.shared: dict[str, Any] = {}

    def __call__(self, query: str | None = None, **spec: Any) -> Any:
        kw = {k: spec.pop(k) for k in ("timeout", "cancel") if k in spec}
        config = {"url": self.url, **spec}
        if query is not None:
            config["query"] = query
        return run_step({"sql": config}, self.base_dir, shared=self.shared, **kw)

    def count(self, table: str) -> int:
        obs = self(f"SELECT count(*) AS n FROM {table}")
        assert obs.error is None, obs.error
        return int(obs.values["scalar"])


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    d = Db(url, tmp_path)
    obs = d("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)", write=True)
    assert obs.error is None, obs.error
    assert d("INSERT INTO items VALUES (1, 'a'), (2, 'b')", write=True).error is None
    yield d
    close_shared(d.shared)  # PostgreSQL cannot drop a database with pooled connections open


def test_select_with_params(db: Db) -> None:
    obs = db("SELECT id, name FROM items WHERE id >= :low ORDER BY id", params={"low": 1})
    assert obs.error is None
    assert obs.values["rows"] == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    assert obs.values["count"] == 2
    assert obs.values["scalar"] == 1
    assert obs.values["rowcount"] == 2
    assert obs.outputs["rows"] == obs.values["rows"]
    assert obs.evidence["rows"] == obs.values["rows"]


def test_no_rows_means_no_scalar(db: Db) -> None:
    obs = db("SELECT id FROM items WHERE id = :id", params={"id": 99})
    assert obs.values["rows"] == [] and obs.values["count"] == 0
    assert "scalar" not in obs.values


def test_write_false_is_read_only_and_changes_nothing(db: Db) -> None:
    obs = db("INSERT INTO items VALUES (3, 'c')")
    assert obs.error is not None and "database error" in obs.error
    assert "read" in obs.error.lower()  # "read-only transaction" / "attempt to write a readonly database"
    assert db.count("items") == 2
    # The pooled connection is usable for writes again afterwards.
    assert db("INSERT INTO items VALUES (3, 'c')", write=True).error is None
    assert db.count("items") == 3


def test_write_true_commits_and_reports_rowcount(db: Db) -> None:
    obs = db("UPDATE items SET name = :n WHERE id = 1", params={"n": "z"}, write=True)
    assert obs.error is None
    assert obs.values["rowcount"] == 1
    assert db("SELECT name FROM items WHERE id = 1").values["scalar"] == "z"


def test_multi_statement_file(db: Db, tmp_path: Path) -> None:
    (tmp_path / "migrate.sql").write_text(
        "-- add a table; and fill it\n"
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n"
        "INSERT INTO notes VALUES (1, 'semi;colon'), (2, 'it''s');\n"
        "/* block; comment */\n"
        "UPDATE notes SET body = body || '!' WHERE id = 2;\n"
        "SELECT id, body FROM notes ORDER BY id;\n"
        "-- trailing comment\n"
    )
    obs = db(file="migrate.sql", write=True)
    assert obs.error is None, obs.error
    assert obs.values["rows"] == [{"id": 1, "body": "semi;colon"}, {"id": 2, "body": "it's!"}]
    assert obs.values["rowcount"] == 2 + 1 + 2
    assert db.count("notes") == 2


def test_failing_file_is_rolled_back_as_a_whole(db: Db, tmp_path: Path) -> None:
    (tmp_path / "bad.sql").write_text(
        "CREATE TABLE half (id INTEGER);\nINSERT INTO items VALUES (9, 'x');\nINSERT INTO missing VALUES (1);\n"
    )
    obs = db(file="bad.sql", write=True)
    assert obs.error is not None and "missing" in obs.error
    assert db.count("items") == 2
    assert db("SELECT count(*) FROM half").error is not None  # the CREATE TABLE was undone too


def test_colon_inside_literal_with_params(db: Db) -> None:
    obs = db("SELECT '{\"a\":1}' AS j, 'x:y' AS k, :v AS v", params={"v": 7})
    assert obs.error is None, obs.error
    assert obs.values["rows"] == [{"j": '{"a":1}', "k": "x:y", "v": 7}]


def test_database_error_has_driver_message(db: Db) -> None:
    obs = db("SELEC 1")
    assert obs.error is not None and "syntax error" in obs.error
    assert obs.evidence["statement"] == "SELEC 1"


def test_missing_sql_file(db: Db) -> None:
    obs = db(file="nope.sql")
    assert obs.error is not None and "nope.sql" in obs.error


def test_sqlite_trigger_in_file_and_relative_path(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text(
        "CREATE TABLE t (n INTEGER);\n"
        "CREATE TABLE log (msg TEXT);\n"
        "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN\n"
        "  INSERT INTO log VALUES ('one;');\n"
        "  INSERT INTO log VALUES ('two');\n"
        "END;\n"
        "INSERT INTO t VALUES (1);\n"
        "SELECT msg FROM log ORDER BY msg;\n"
    )
    db = Db("sqlite:///app.db", tmp_path)  # relative to the runbook's folder, not the cwd
    obs = db(file="schema.sql", write=True)
    assert obs.error is None, obs.error
    assert obs.values["rows"] == [{"msg": "one;"}, {"msg": "two"}]
    assert (tmp_path / "app.db").exists()
    close_shared(db.shared)


def test_sqlite_read_check_does_not_create_a_database(tmp_path: Path) -> None:
    obs = Db("sqlite:///absent.db", tmp_path)("SELECT 1")
    assert obs.error is not None and "does not exist" in obs.error
    assert not (tmp_path / "absent.db").exists()


def test_sqlite_timeout_interrupts_a_long_query(sqlite_url: str, tmp_path: Path) -> None:
    db = Db(sqlite_url, tmp_path)
    db("CREATE TABLE x (n INTEGER)", write=True)
    start = time.monotonic()
    obs = db(
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c",
        timeout=0.3,
    )
    assert time.monotonic() - start < 5
    assert obs.timed_out and obs.error == "timed out after 0.3s"
    assert db.count("x") == 0  # the connection still works
    close_shared(db.shared)


@pytest.mark.postgres
def test_postgres_types_are_json_safe(pg_url: str, tmp_path: Path) -> None:
    db = Db(pg_url, tmp_path)
    obs = db(
        "SELECT 1.50::numeric AS price, 2.00::numeric AS whole, DATE '2024-01-02' AS day, "
        "TIMESTAMP '2024-01-02 03:04:05' AS ts, '\\x01ff'::bytea AS raw, "
        "'{\"a\": [1, 2.5]}'::jsonb AS doc, ARRAY[1.5::numeric] AS arr, NULL AS nothing"
    )
    assert obs.error is None, obs.error
    assert obs.values["rows"] == [
        {
            "price": 1.5,
            "whole": 2,
            "day": "2024-01-02",
            "ts": "2024-01-02T03:04:05",
            "raw": "01ff",
            "doc": {"a": [1, 2.5]},
            "arr": [1.5],
            "nothing": None,
        }
    ]
    close_shared(db.shared)


@pytest.mark.postgres
def test_postgres_statement_timeout(pg_url: str, tmp_path: Path) -> None:
    db = Db(pg_url, tmp_path)
    start = time.monotonic()
    obs = db("SELECT pg_sleep(10)", timeout=0.5)
    assert time.monotonic() - start < 5
    assert obs.timed_out and obs.error == "timed out after 0.5s"
    close_shared(db.shared)


@pytest.mark.postgres
def test_postgres_cancel_interrupts_the_query(pg_url: str, tmp_path: Path) -> None:
    db = Db(pg_url, tmp_path)
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    start = time.monotonic()
    obs = db("SELECT pg_sleep(10)", cancel=cancel)
    timer.cancel()
    assert time.monotonic() - start < 5
    assert obs.error is not None and "cancelled" in obs.error
    close_shared(db.shared)


@pytest.mark.postgres
def test_password_is_masked_in_evidence(pg_url: str, tmp_path: Path) -> None:
    url = pg_url.replace("postgres@", "postgres:hunter2@", 1)  # trust auth ignores it
    db = Db(url, tmp_path)
    obs = db("SELECT 1 AS one")
    assert obs.error is None, obs.error
    assert "hunter2" not in obs.evidence["url"] and "***" in obs.evidence["url"]
    close_shared(db.shared)


def test_bad_url_is_an_error(tmp_path: Path) -> None:
    obs = Db("nosuchdb://x/y", tmp_path)("SELECT 1")
    assert obs.error is not None and "bad database URL" in obs.error


# --- a check is one statement in a read-only transaction (issue 9, item 11) ---------------------


@pytest.mark.parametrize("script", [
    "SELECT 1; COMMIT; DELETE FROM items",
    "SELECT 1; COMMIT; DELETE FROM items; COMMIT",
    "COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; DELETE FROM items; COMMIT",
    "SELECT 1;\nDELETE FROM items",
])
def test_a_check_cannot_escape_its_read_only_transaction(db: Db, script: str) -> None:
    obs = db(script)
    assert obs.error is not None
    assert "one statement" in obs.error and "write: true" in obs.error
    assert db.count("items") == 2  # nothing was deleted


@pytest.mark.postgres
@pytest.mark.parametrize("script", [
    # The splitter sees one statement (it does not know E'' escapes); PostgreSQL would see three.
    "SELECT E'\\''; COMMIT; DELETE FROM items; SELECT ''",
    # One statement that ends the read-only transaction: what follows in the step must not write.
    "COMMIT",
])
def test_postgres_a_check_is_one_statement_on_the_wire(pg_url: str, tmp_path: Path, script: str) -> None:
    db = Db(pg_url, tmp_path)
    assert db("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)", write=True).error is None
    assert db("INSERT INTO items VALUES (1, 'a'), (2, 'b')", write=True).error is None
    db(script)
    assert db.count("items") == 2
    # the pooled connection a check used is still read-only in its next transaction, and writes still work
    assert db("DELETE FROM items").error is not None
    assert db("DELETE FROM items WHERE id = 2", write=True).error is None
    assert db.count("items") == 1
    close_shared(db.shared)


@pytest.mark.postgres
def test_postgres_check_session_is_read_only_by_default(pg_url: str, tmp_path: Path) -> None:
    """Even a statement that commits the check's transaction leaves a read-only session behind."""
    db = Db(pg_url, tmp_path)
    obs = db("SHOW default_transaction_read_only")
    assert obs.error is None, obs.error
    assert obs.values["scalar"] == "on"
    assert db("SHOW default_transaction_read_only", write=True).values["scalar"] == "off"
    close_shared(db.shared)


def test_a_check_with_one_statement_and_a_trailing_semicolon_passes(db: Db) -> None:
    obs = db("SELECT count(*) FROM items;  -- how many\n")
    assert obs.error is None, obs.error
    assert obs.values["scalar"] == 2


def test_a_multi_statement_file_is_refused_as_a_check(db: Db, tmp_path: Path) -> None:
    (tmp_path / "check.sql").write_text("SELECT 1;\nDELETE FROM items;\n")
    obs = db(file="check.sql")
    assert obs.error is not None and "one statement" in obs.error and "check.sql" in obs.error
    assert db.count("items") == 2


def test_write_steps_still_run_several_statements(db: Db) -> None:
    obs = db("DELETE FROM items WHERE id = 1; INSERT INTO items VALUES (5, 'e')", write=True)
    assert obs.error is None, obs.error
    assert db.count("items") == 2
    assert db("SELECT name FROM items WHERE id = 5").values["scalar"] == "e"


def test_a_percent_sign_in_a_check_with_and_without_params(db: Db) -> None:
    obs = db("SELECT '50%' AS p, name FROM items WHERE name LIKE 'a%'")
    assert obs.error is None, obs.error
    assert obs.values["rows"] == [{"p": "50%", "name": "a"}]
    obs = db("SELECT '50%' AS p, :v AS v, '%(x)s' AS f", params={"v": 7})
    assert obs.error is None, obs.error
    assert obs.values["rows"] == [{"p": "50%", "v": 7, "f": "%(x)s"}]
