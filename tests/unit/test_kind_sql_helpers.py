"""Statement splitting and JSON-safe conversion of the `sql` kind (no database needed)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

from tminus.db.sqltext import escape_literal_colons as _escape_literal_colons
from tminus.db.sqltext import split_statements
from tminus.kinds.sql import _json_safe


def test_splits_on_top_level_semicolons_only() -> None:
    sql = """
    -- header; comment
    INSERT INTO t VALUES ('a;b', "c;d");
    /* block; comment */
    SELECT 1;;
    SELECT 'it''s; fine'
    """
    assert split_statements(sql) == [
        "-- header; comment\n    INSERT INTO t VALUES ('a;b', \"c;d\")",
        "/* block; comment */\n    SELECT 1",
        "SELECT 'it''s; fine'",
    ]


def test_postgres_dollar_quoted_bodies_stay_whole() -> None:
    sql = (
        "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;\n"
        "DO $body$ BEGIN PERFORM 1; END $body$;\n"
        "SELECT $1"
    )
    parts = split_statements(sql)
    assert len(parts) == 3
    assert parts[0].endswith("LANGUAGE plpgsql")
    assert parts[1] == "DO $body$ BEGIN PERFORM 1; END $body$"


def test_sqlite_trigger_body_is_one_statement() -> None:
    sql = "CREATE TRIGGER x AFTER INSERT ON t BEGIN INSERT INTO a VALUES (1); DELETE FROM b; END; SELECT 1;"
    assert split_statements(sql, sqlite=True) == [
        "CREATE TRIGGER x AFTER INSERT ON t BEGIN INSERT INTO a VALUES (1); DELETE FROM b; END",
        "SELECT 1",
    ]
    assert len(split_statements(sql)) == 4  # without the SQLite rule it would be cut apart


def test_comment_only_script_is_empty() -> None:
    assert split_statements("-- nothing\n/* here */ ;\n") == []


def test_colons_escaped_only_inside_literals() -> None:
    assert _escape_literal_colons("SELECT '{\"a\":1}'::jsonb, :p -- x:y") == (
        "SELECT '{\"a\"\\:1}'::jsonb, :p -- x\\:y"
    )


def test_json_safe_conversions() -> None:
    value = {
        "dec": Decimal("1.25"),
        "whole": Decimal("3.000"),
        "nan": Decimal("NaN"),
        "inf": float("inf"),
        "date": dt.date(2024, 1, 2),
        "ts": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "time": dt.time(1, 2),
        "delta": dt.timedelta(minutes=1, milliseconds=500),
        "raw": b"\x00\xff",
        "mv": memoryview(b"\x10"),
        "id": uuid.UUID(int=1),
        "nested": [(Decimal("0.5"), {"k": dt.date(2000, 1, 1)})],
        "other": object,
    }
    out = _json_safe(value)
    assert out["dec"] == 1.25 and isinstance(out["dec"], float)
    assert out["whole"] == 3 and isinstance(out["whole"], int)
    assert out["nan"] == "NaN" and out["inf"] == "inf"
    assert out["date"] == "2024-01-02"
    assert out["ts"] == "2024-01-02T03:04:05+00:00"
    assert out["time"] == "01:02:00"
    assert out["delta"] == 60.5
    assert out["raw"] == "00ff" and out["mv"] == "10"
    assert out["id"] == "00000000-0000-0000-0000-000000000001"
    assert out["nested"] == [[0.5, {"k": "2000-01-01"}]]
    json.dumps(out, allow_nan=False)  # everything is plain JSON
