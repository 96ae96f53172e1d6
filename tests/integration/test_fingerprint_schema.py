"""The mutation corpus: one change at a time on a copy of an example database, on the real local
PostgreSQL and on SQLite files. Each change must show as exactly the named differences; each
control (maintenance that changes nothing a user sees) must show none."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from tminus.db import pgtools
from tminus.db.fingerprint import compare, digests, fingerprint, tables_of

PG_BASE = [
    "CREATE SCHEMA app",
    "CREATE TYPE mood AS ENUM ('sad', 'ok')",
    "CREATE DOMAIN posint AS integer CHECK (VALUE > 0)",
    "CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL)",
    "CREATE TABLE notes (id serial PRIMARY KEY, author_id integer, body text, score integer DEFAULT 0,"
    " m mood, p posint)",
    "CREATE TABLE empty_t (a integer)",
    "CREATE TABLE metrics (ts timestamptz, v double precision)",
    "CREATE INDEX metrics_ts_idx ON metrics (ts)",
    "CREATE TABLE app.events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text)",
    "INSERT INTO authors (name) VALUES ('ann'), ('bob')",
    "INSERT INTO notes (author_id, body, score) SELECT 1 + g % 2, 'note ' || g, g FROM generate_series(1, 10) g",
    "INSERT INTO metrics SELECT timestamptz '2026-01-01 00:00+00' + g * interval '1 minute', g / 3.0"
    " FROM generate_series(1, 50) g",
    "INSERT INTO app.events (kind) VALUES ('a'), ('b')",
    "CREATE VIEW v_scores AS SELECT id, score FROM notes",
    "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$",
    "CREATE TRIGGER metrics_touch BEFORE UPDATE ON metrics FOR EACH ROW EXECUTE FUNCTION touch()",
    # tminus's own bookkeeping, as `tminus db migrate` and the ledger create it
    "CREATE TABLE schema_migrations (version text PRIMARY KEY)",
    "CREATE TABLE schema_migrations_log (id serial PRIMARY KEY, version text, action text)",
    "CREATE TABLE tminus_events (id serial PRIMARY KEY, body text)",
]

PG_CHANGES: dict[str, tuple[list[str], list[str]]] = {
    "index": (["CREATE INDEX notes_score_idx ON notes (score)"],
              ["index notes_score_idx is new (not in the earlier fingerprint)"]),
    "invalid index": (["UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'metrics_ts_idx'::regclass"],
                      ["index metrics_ts_idx: valid yes -> no"]),
    "dropped index": (["DROP INDEX metrics_ts_idx"], ["index metrics_ts_idx missing after"]),
    "foreign key": (["ALTER TABLE notes ADD CONSTRAINT notes_author_fk FOREIGN KEY (author_id) REFERENCES authors"],
                    ["constraint notes.notes_author_fk is new (not in the earlier fingerprint)"]),
    "check": (["ALTER TABLE notes ADD CONSTRAINT notes_score_check CHECK (score >= 0)"],
              ["constraint notes.notes_score_check is new (not in the earlier fingerprint)"]),
    "unique": (["ALTER TABLE authors ADD CONSTRAINT authors_name_key UNIQUE (name)"],
               ["constraint authors.authors_name_key is new (not in the earlier fingerprint)",
                "index authors_name_key is new (not in the earlier fingerprint)"]),
    "sequence value": (["SELECT nextval('notes_id_seq')"], ["sequence notes_id_seq: last_value 10 -> 11"]),
    "identity value": (["SELECT nextval('app.events_id_seq')"], ["sequence app.events_id_seq: last_value 2 -> 3"]),
    "sequence definition": (["ALTER SEQUENCE notes_id_seq INCREMENT BY 5"],
                            ["sequence notes_id_seq: increment 1 -> 5"]),
    "default": (["ALTER TABLE notes ALTER score SET DEFAULT 1"], ["column notes.score: default 0 -> 1"]),
    "not null": (["ALTER TABLE notes ALTER body SET NOT NULL"], ["column notes.body: not_null no -> yes"]),
    "type that prints the same": (["ALTER TABLE notes ALTER body TYPE varchar"],
                                  ["column notes.body: type text -> character varying"]),
    "column rename": (["ALTER TABLE notes RENAME body TO text_body"],
                      ["column notes.body missing after",
                       "column notes.text_body is new (not in the earlier fingerprint)"]),
    "column on an empty table": (["ALTER TABLE empty_t ADD COLUMN b integer"],
                                 ["column empty_t.b is new (not in the earlier fingerprint)"]),
    "view": (["CREATE OR REPLACE VIEW v_scores AS SELECT id, score FROM notes WHERE score > 1"],
             ["view v_scores: definition changed"]),
    "materialized view": (["CREATE MATERIALIZED VIEW mv AS SELECT 1 AS one"],
                          ["materialized view mv is new (not in the earlier fingerprint)"]),
    "function": (["CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS"
                  " $$BEGIN NEW.score := 0; RETURN NEW; END$$"], ["function touch(): definition changed"]),
    "trigger": (["CREATE TRIGGER notes_touch BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION touch()"],
                ["trigger notes.notes_touch is new (not in the earlier fingerprint)"]),
    "table comment": (["COMMENT ON TABLE notes IS 'the notes'"], ["table notes: comment none -> the notes"]),
    "column comment": (["COMMENT ON COLUMN notes.body IS 'text'"], ["column notes.body: comment none -> text"]),
    "index comment": (["COMMENT ON INDEX metrics_ts_idx IS 'by time'"],
                      ["index metrics_ts_idx: comment none -> by time"]),
    "table grant": (["GRANT SELECT ON notes TO PUBLIC"],
                    ["table notes: grants none -> {postgres=arwdDxt/postgres,=r/postgres}"]),
    "column grant": (["GRANT UPDATE (body) ON notes TO PUBLIC"],
                     ["column notes.body: grants none -> {=w/postgres}"]),
    "function grant": (["REVOKE EXECUTE ON FUNCTION touch() FROM PUBLIC"],
                       ["function touch(): grants none -> {postgres=X/postgres}"]),
    "schema grant": (["GRANT USAGE ON SCHEMA app TO PUBLIC"],
                     ["schema app: grants none -> {postgres=UC/postgres,=U/postgres}"]),
    "enum value": (["ALTER TYPE mood ADD VALUE 'glad'"], ["enum mood: labels 'sad', 'ok' -> 'sad', 'ok', 'glad'"]),
    "domain": (["ALTER DOMAIN posint ADD CONSTRAINT posint_small CHECK (VALUE < 100)"],
               ["domain posint: constraints posint_check CHECK ((VALUE > 0)) -> posint_check CHECK ((VALUE > 0)),"
                " posint_small CHECK ((VALUE < 100))"]),
    "policy": (["CREATE POLICY own ON notes USING (author_id = 1)"],
               ["policy notes.own is new (not in the earlier fingerprint)"]),
    "row security": (["ALTER TABLE notes ENABLE ROW LEVEL SECURITY"], ["table notes: row_security no -> yes"]),
    "column order": (["ALTER TABLE empty_t ADD COLUMN b integer", "ALTER TABLE empty_t DROP COLUMN a",
                      "ALTER TABLE empty_t ADD COLUMN a integer"],
                     ["column empty_t.a: position 1 -> 2", "column empty_t.b is new (not in the earlier fingerprint)"]),
    "storage option": (["ALTER TABLE notes SET (fillfactor = 70)"], ["table notes: options none -> {fillfactor=70}"]),
    "rule": (["CREATE RULE no_delete AS ON DELETE TO authors DO INSTEAD NOTHING"],
             ["rule authors.no_delete is new (not in the earlier fingerprint)"]),
    "extended statistics": (["CREATE STATISTICS notes_stats ON author_id, score FROM notes"],
                            ["statistics notes_stats is new (not in the earlier fingerprint)"]),
    "disabled trigger": (["ALTER TABLE metrics DISABLE TRIGGER metrics_touch"],
                         ["trigger metrics.metrics_touch: enabled O -> D"]),
    "new table": (["CREATE TABLE fresh (x integer)"], ["table fresh is new (not in the earlier fingerprint)"]),
    "row content": (["UPDATE notes SET body = 'changed' WHERE id = 3"],
                    ["table notes: content differs (10 rows, same count)"]),
    "row count": (["DELETE FROM metrics WHERE v > 16"], ["table metrics: 50 rows vs 48 rows"]),
    "schema": (["CREATE SCHEMA more"], ["schema more is new (not in the earlier fingerprint)"]),
}

PG_CONTROLS: dict[str, list[str]] = {
    "VACUUM FULL": ["VACUUM FULL notes", "VACUUM FULL metrics"],
    "ANALYZE": ["ANALYZE"],
    "delete and re-insert an identical row": [
        "DELETE FROM notes WHERE id = 4",
        "INSERT INTO notes (id, author_id, body, score) VALUES (4, 1, 'note 4', 4)"],
    "REINDEX": ["REINDEX TABLE notes", "REINDEX INDEX metrics_ts_idx"],
    "REINDEX CONCURRENTLY": ["REINDEX INDEX CONCURRENTLY metrics_ts_idx"],
    "row order on disk": ["CLUSTER notes USING notes_pkey", "UPDATE metrics SET v = v WHERE v < 5"],
    "tminus bookkeeping": [
        "INSERT INTO schema_migrations VALUES ('0002')",
        "INSERT INTO schema_migrations_log (version, action) VALUES ('0002', 'apply'), ('0002', 'revert')",
        "DELETE FROM schema_migrations", "INSERT INTO tminus_events (body) VALUES ('x')",
        "CREATE INDEX tminus_events_body ON tminus_events (body)"],
    "a session's settings": ["ALTER DATABASE {db} SET TimeZone = 'Asia/Tokyo'",
                             "ALTER DATABASE {db} SET DateStyle = 'SQL, DMY'",
                             "ALTER DATABASE {db} SET extra_float_digits = -2"],
}


def pg_run(url: str, *statements: str) -> None:
    with psycopg.connect(**pgtools.pg_target(url).connect_kwargs(), autocommit=True) as conn:
        for stmt in statements:
            conn.execute(stmt)


@pytest.mark.parametrize("name", list(PG_CHANGES))
def test_pg_change_is_named(pg_url: str, name: str) -> None:
    statements, expected = PG_CHANGES[name]
    pg_run(pg_url, *PG_BASE)
    before = fingerprint(pg_url)
    pg_run(pg_url, *statements)
    assert compare(before, fingerprint(pg_url)) == expected


@pytest.mark.parametrize("name", list(PG_CONTROLS))
def test_pg_control_is_not_flagged(pg_url: str, name: str) -> None:
    pg_run(pg_url, *PG_BASE)
    before = fingerprint(pg_url)
    database = pgtools.pg_target(pg_url).database
    pg_run(pg_url, *(stmt.format(db=pgtools.ident(database)) for stmt in PG_CONTROLS[name]))
    after = fingerprint(pg_url)
    assert compare(before, after) == []
    assert digests(before) == digests(after)


def test_pg_bookkeeping_shows_when_included(pg_url: str) -> None:
    pg_run(pg_url, *PG_BASE)
    before = fingerprint(pg_url, include_tminus=True)
    assert {"schema_migrations_log", "tminus_events"} <= set(tables_of(before))
    pg_run(pg_url, "INSERT INTO schema_migrations_log (version, action) VALUES ('0002', 'apply')")
    assert compare(before, fingerprint(pg_url, include_tminus=True)) == [
        "table schema_migrations_log: 0 rows vs 1 rows",
        "sequence schema_migrations_log_id_seq: is_called no -> yes",
    ]
    assert "schema_migrations_log" not in tables_of(fingerprint(pg_url))


def test_pg_tables_filter_keeps_their_objects_only(pg_url: str) -> None:
    pg_run(pg_url, *PG_BASE)
    fp = fingerprint(pg_url, ["notes"])
    schema = fp["@schema"]
    assert set(schema["table"]) == {"notes"} and set(schema["sequence"]) == {"notes_id_seq"}
    assert "view" not in schema and "function" not in schema and "schema" not in schema
    assert all(name.startswith("notes.") for name in schema["column"])


SQLITE_BASE = [
    "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT, score INT DEFAULT 0)",
    "CREATE TABLE empty_t (a INT)",
    "CREATE INDEX notes_score ON notes (score)",
    "INSERT INTO notes (body, score) VALUES ('a', 1), ('b', 2), ('c', 3)",
    "CREATE VIEW v AS SELECT id FROM notes",
    "CREATE TABLE schema_migrations_log (id INTEGER PRIMARY KEY AUTOINCREMENT, version TEXT)",
]

SQLITE_CHANGES: dict[str, tuple[list[str], list[str]]] = {
    "AUTOINCREMENT counter": (["INSERT INTO notes (body) VALUES ('d')", "DELETE FROM notes WHERE body = 'd'"],
                              ["sequence notes: last_value 3 -> 4"]),
    "index": (["CREATE INDEX notes_body ON notes (body)"],
              ["index notes_body is new (not in the earlier fingerprint)"]),
    "dropped index": (["DROP INDEX notes_score"], ["index notes_score missing after"]),
    "view": (["DROP VIEW v", "CREATE VIEW v AS SELECT id, body FROM notes"],
             ["view v: sql CREATE VIEW v AS SELECT id FROM notes -> CREATE VIEW v AS SELECT id, body FROM notes"]),
    "trigger": (["CREATE TRIGGER notes_t AFTER INSERT ON notes BEGIN SELECT 1; END"],
                ["trigger notes_t is new (not in the earlier fingerprint)"]),
    "trigger on a view": (["CREATE TRIGGER v_insert INSTEAD OF INSERT ON v BEGIN SELECT 1; END"],
                          ["trigger v_insert is new (not in the earlier fingerprint)"]),
    "user_version": (["PRAGMA user_version = 5"], ["pragma user_version: value 0 -> 5"]),
    "application_id": (["PRAGMA application_id = 7"], ["pragma application_id: value 0 -> 7"]),
    "column on an empty table": (["ALTER TABLE empty_t ADD COLUMN b INT"],
                                 ["column empty_t.b is new (not in the earlier fingerprint)",
                                  "table empty_t: sql CREATE TABLE empty_t (a INT)"
                                  " -> CREATE TABLE empty_t (a INT, b INT)"]),
    "column rename": (["ALTER TABLE empty_t RENAME COLUMN a TO z"],
                      ["column empty_t.a missing after", "column empty_t.z is new (not in the earlier fingerprint)",
                       "table empty_t: sql CREATE TABLE empty_t (a INT) -> CREATE TABLE empty_t (z INT)"]),
    "row content": (["UPDATE notes SET body = 'B' WHERE id = 2"],
                    ["table notes: content differs (3 rows, same count)"]),
}

SQLITE_CONTROLS: dict[str, list[str]] = {
    "VACUUM": ["VACUUM"],
    "ANALYZE": ["ANALYZE"],
    "delete and re-insert an identical row": ["DELETE FROM notes WHERE id = 2",
                                              "INSERT INTO notes (id, body, score) VALUES (2, 'b', 2)"],
    "REINDEX": ["REINDEX"],
    "tminus bookkeeping": ["INSERT INTO schema_migrations_log (version) VALUES ('0002'), ('0002')"],
}


def sqlite_run(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    try:
        for stmt in statements:
            conn.execute(stmt)
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize("name", list(SQLITE_CHANGES))
def test_sqlite_change_is_named(tmp_path: Path, name: str) -> None:
    statements, expected = SQLITE_CHANGES[name]
    db = tmp_path / "app.db"
    sqlite_run(db, *SQLITE_BASE)
    before = fingerprint(f"sqlite:///{db}")
    sqlite_run(db, *statements)
    assert compare(before, fingerprint(f"sqlite:///{db}")) == expected


@pytest.mark.parametrize("name", list(SQLITE_CONTROLS))
def test_sqlite_control_is_not_flagged(tmp_path: Path, name: str) -> None:
    db = tmp_path / "app.db"
    sqlite_run(db, *SQLITE_BASE)
    before = fingerprint(f"sqlite:///{db}")
    sqlite_run(db, *SQLITE_CONTROLS[name])
    after = fingerprint(f"sqlite:///{db}")
    assert compare(before, after) == []
    assert digests(before) == digests(after)
