"""The migration safety lint: each rule at the right line, safe forms, literals, opt-outs, files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from tminus.db.lint import RULES, Finding, lint_directory, lint_sql, migration_files, statements

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lint"

EXPECTED = {
    ("0002_risky.sql", 3, "add-column-not-null-no-default"),
    ("0002_risky.sql", 4, "create-index-not-concurrently"),
    ("0002_risky.sql", 5, "alter-column-type"),
    ("0002_risky.sql", 7, "drop-column"),
    ("0002_risky.sql", 8, "drop-table"),
    ("0002_risky.sql", 9, "rename-column"),
    ("0002_risky.sql", 10, "rename-table"),
    ("0002_risky.sql", 11, "fk-without-not-valid"),
    ("0002_risky.sql", 12, "check-without-not-valid"),
    ("0002_risky.sql", 13, "alter-column-type"),
    ("0002_risky.sql", 13, "drop-column"),
    ("0003_no_lock_timeout.sql", 2, "missing-lock-timeout"),
    ("0006_concurrently_in_transaction.sql", 2, "concurrently-in-transaction"),
    ("0007_concurrently_begin.sql", 3, "concurrently-in-transaction"),
    ("0009_opt_outs.sql", 9, "rename-column"),
    ("0009_opt_outs.sql", 11, "drop-table"),
    ("0009_opt_outs.sql", 14, "drop-table"),
}


def rules(sql: str, ignore: Iterable[str] = ()) -> list[tuple[int, str]]:
    return [(f.line, f.rule) for f in lint_sql(sql, "0001_x.sql", ignore)]


def test_fixture_directory_findings_exactly() -> None:
    findings = lint_directory(FIXTURES)
    assert {(f.file, f.line, f.rule) for f in findings} == EXPECTED
    assert len(findings) == len(EXPECTED)
    assert [f.file for f in findings] == sorted(f.file for f in findings)  # version order
    assert {r for _, _, r in EXPECTED} == set(RULES)  # every rule is exercised


def test_every_finding_names_risk_and_safer_pattern() -> None:
    for f in lint_directory(FIXTURES):
        rule = RULES[f.rule]
        assert f.risk == rule.risk and f.safer == rule.safer and f.message
        assert "{subject}" not in f.message


def test_risk_levels() -> None:
    assert {r.risk for r in RULES.values()} <= {"high", "medium", "low"}
    assert RULES["drop-column"].risk == "high"
    assert RULES["missing-lock-timeout"].risk == "medium"
    assert "tminus migrate" in RULES["missing-lock-timeout"].what


def test_safe_and_literal_files_are_clean() -> None:
    for name in ("0001_create_tables.sql", "0004_safe.sql", "0005_index_concurrently.sql",
                 "0008_comments_and_strings.sql"):
        assert lint_sql((FIXTURES / name).read_text(), name) == [], name


def test_down_verify_and_other_files_are_not_linted(tmp_path: Path) -> None:
    names = [p.name for p in migration_files(FIXTURES)]
    assert "0002_risky.down.sql" not in names and "0004_safe.verify.sql" not in names
    assert "0002_risky.sql" in names
    for name in ("0001_a.down.sql", "0001_a.verify.sql", "schema.sql", "0001_a.sql.bak", "x_0001.sql"):
        (tmp_path / name).write_text("DROP TABLE users;")
    assert lint_directory(tmp_path) == []
    (tmp_path / "10_b.sql").write_text("DROP TABLE b;")
    (tmp_path / "9_a.sql").write_text("DROP TABLE a;")
    assert [f.file for f in lint_directory(tmp_path, ignore=["missing-lock-timeout"])] == ["9_a.sql", "10_b.sql"]


def test_missing_directory_and_unknown_rule(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        lint_directory(tmp_path / "nope")
    with pytest.raises(ValueError, match="unknown lint rule drop-colum"):
        lint_directory(FIXTURES, ignore=["drop-colum"])


def test_ignore_parameter_skips_whole_rules() -> None:
    found = lint_directory(FIXTURES, ignore=("drop-table", "rename-column"))
    assert {f.rule for f in found} == {r for _, _, r in EXPECTED} - {"drop-table", "rename-column"}
    assert rules("DROP TABLE a;", ignore=["drop-table", "missing-lock-timeout"]) == []


def test_finding_format_and_dict() -> None:
    [f] = lint_sql("SET lock_timeout = '5s';\n\nALTER TABLE t DROP COLUMN c;", "0005_x.sql")
    assert f.format().startswith("0005_x.sql:3: [high] drop-column: DROP COLUMN t.c breaks")
    assert " safer: expand/contract" in f.format()
    assert f.to_dict() == {"file": "0005_x.sql", "line": 3, "rule": "drop-column", "risk": "high",
                           "message": f.message, "safer": f.safer}
    assert isinstance(f, Finding)


# --- rules one by one ------------------------------------------------------------------------

T = "SET lock_timeout = '5s';\n"  # so only the rule under test fires


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("ALTER TABLE t ADD COLUMN c int NOT NULL", ["add-column-not-null-no-default"]),
        ("ALTER TABLE t ADD c int NOT NULL", ["add-column-not-null-no-default"]),
        ("ALTER TABLE IF EXISTS ONLY s.t ADD COLUMN IF NOT EXISTS c int NOT NULL", ["add-column-not-null-no-default"]),
        ("ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0", []),
        ("ALTER TABLE t ADD COLUMN c int", []),
        ("ALTER TABLE t ADD COLUMN c int NULL", []),
        ("ALTER TABLE t ADD COLUMN c bigint GENERATED ALWAYS AS IDENTITY NOT NULL", []),
        ("CREATE INDEX i ON t (c)", ["create-index-not-concurrently"]),
        ("CREATE UNIQUE INDEX IF NOT EXISTS i ON ONLY s.t USING btree (c)", ["create-index-not-concurrently"]),
        ("CREATE INDEX ON t (c)", ["create-index-not-concurrently"]),
        ("ALTER TABLE t ALTER COLUMN c TYPE bigint", ["alter-column-type"]),
        ("ALTER TABLE t ALTER c SET DATA TYPE bigint USING c::bigint", ["alter-column-type"]),
        ("ALTER TABLE t ALTER COLUMN c SET DEFAULT 0", []),
        ("ALTER TABLE t DROP COLUMN c", ["drop-column"]),
        ("ALTER TABLE t DROP c CASCADE", ["drop-column"]),
        ("ALTER TABLE t DROP CONSTRAINT k", []),
        ("ALTER TABLE t ALTER COLUMN c DROP NOT NULL", []),
        ("DROP TABLE t", ["drop-table"]),
        ("DROP TABLE IF EXISTS a, b CASCADE", ["drop-table"]),
        ("ALTER TABLE t RENAME COLUMN a TO b", ["rename-column"]),
        ("ALTER TABLE t RENAME a TO b", ["rename-column"]),
        ("ALTER TABLE t RENAME TO u", ["rename-table"]),
        ("ALTER TABLE t RENAME CONSTRAINT a TO b", []),
        ("ALTER TABLE t ADD FOREIGN KEY (c) REFERENCES u (id)", ["fk-without-not-valid"]),
        ("ALTER TABLE t ADD CONSTRAINT k FOREIGN KEY (c) REFERENCES u (id) ON DELETE CASCADE NOT VALID", []),
        ("ALTER TABLE t ADD CONSTRAINT k CHECK (c > 0 AND d IS NOT NULL)", ["check-without-not-valid"]),
        ("ALTER TABLE t ADD CONSTRAINT k CHECK (c > 0) NOT VALID", []),
        ("ALTER TABLE t VALIDATE CONSTRAINT k", []),
        ("ALTER TABLE t ADD CONSTRAINT k UNIQUE USING INDEX i", []),
        ("ALTER TABLE t ADD COLUMN a int NOT NULL, ADD COLUMN b numeric(10, 2), DROP COLUMN c",
         ["add-column-not-null-no-default", "drop-column"]),
        ("create index i on t (c)", ["create-index-not-concurrently"]),
        ("CREATE INDEX CONCURRENTLY i ON t (c)", ["concurrently-in-transaction"]),
        ("REFRESH MATERIALIZED VIEW CONCURRENTLY v", []),
        ("SELECT 1", []),
    ],
)
def test_rule(sql: str, expected: list[str]) -> None:
    assert rules(T + sql + ";") == [(2, r) for r in expected]


def test_tables_created_in_the_same_file_are_exempt() -> None:
    sql = (
        'CREATE TABLE "Events" (id int);\n'
        'CREATE INDEX ON "Events" (id);\n'
        "CREATE TABLE IF NOT EXISTS app.logs (id int);\n"
        "CREATE INDEX logs_id ON logs (id);\n"
        "ALTER TABLE app.logs ADD COLUMN at timestamptz NOT NULL, ADD FOREIGN KEY (id) REFERENCES x (id);\n"
        "DROP TABLE logs;\n"
        "CREATE INDEX events_id ON events (id);\n"  # unquoted: a different table than "Events"
    )
    assert rules(sql) == [(7, "create-index-not-concurrently"), (7, "missing-lock-timeout")]


def test_index_before_its_table_is_created_is_flagged() -> None:
    assert rules(T + "CREATE INDEX i ON t (c);\nCREATE TABLE t (c int);") == [(2, "create-index-not-concurrently")]


# --- lock_timeout ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["SET lock_timeout = '5s';", "SET lock_timeout TO 5000;", "set local LOCK_TIMEOUT = '2s';",
     "SELECT set_config('lock_timeout', '3s', false);", "SET SESSION lock_timeout='1min';"],
)
def test_lock_timeout_set(header: str) -> None:
    assert rules(f"{header}\nALTER TABLE t ADD COLUMN c int;") == []


@pytest.mark.parametrize(
    "statement",
    ["ALTER TABLE t ADD COLUMN c int", "DROP INDEX i", "TRUNCATE t", "LOCK TABLE t IN EXCLUSIVE MODE",
     "VACUUM FULL t", "REINDEX TABLE t", "REFRESH MATERIALIZED VIEW v", "CLUSTER t USING i"],
)
def test_locking_statements_need_lock_timeout(statement: str) -> None:
    assert (1, "missing-lock-timeout") in rules(statement + ";")


@pytest.mark.parametrize(
    "sql",
    ["SET lock_timeout = 0;\nALTER TABLE t ADD COLUMN c int;",
     "SET lock_timeout = DEFAULT;\nALTER TABLE t ADD COLUMN c int;",
     "SET lock_timeout = '0s';\nALTER TABLE t ADD COLUMN c int;"],
)
def test_zero_lock_timeout_does_not_count(sql: str) -> None:
    assert rules(sql) == [(2, "missing-lock-timeout")]


def test_lock_timeout_flagged_once_at_the_first_locking_statement() -> None:
    sql = "SELECT 1;\nINSERT INTO t VALUES (1);\nALTER TABLE t ADD COLUMN c int;\nALTER TABLE u ADD COLUMN d int;"
    assert rules(sql) == [(3, "missing-lock-timeout")]


def test_non_locking_statements_need_no_lock_timeout() -> None:
    sql = ("ALTER TABLE t VALIDATE CONSTRAINT k;\nCREATE TABLE n (id int);\nALTER TABLE n ADD COLUMN c int;\n"
           "UPDATE t SET c = 1;\nCREATE VIEW v AS SELECT 1;")
    assert rules(sql) == []


# --- transactions ----------------------------------------------------------------------------


def test_concurrently_needs_the_no_transaction_header() -> None:
    body = "CREATE INDEX CONCURRENTLY i ON t (c);"
    assert rules(body) == [(1, "concurrently-in-transaction")]
    assert rules("-- tminus: no-transaction\n" + body) == []
    assert rules("-- why this migration exists\n--tminus: no-transaction\n\n" + body) == []
    # The header counts only among the leading comments, as `tminus migrate` reads it.
    assert rules("SELECT 1;\n-- tminus: no-transaction\n" + body) == [(3, "concurrently-in-transaction")]
    assert "no '-- tminus: no-transaction' header" in lint_sql(body, "f")[0].message


def test_concurrently_with_explicit_begin() -> None:
    sql = "-- tminus: no-transaction\nSTART TRANSACTION;\nDROP INDEX CONCURRENTLY IF EXISTS i;\nCOMMIT;"
    [f] = lint_sql(sql, "0001_x.sql")
    assert (f.line, f.rule) == (3, "concurrently-in-transaction")
    assert "explicit BEGIN at line 2" in f.message


# --- comments, literals, identifiers -------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "-- DROP TABLE users;\nSELECT 1;",
        "/* ALTER TABLE t DROP COLUMN c; */ SELECT 1;",
        "SELECT 'DROP TABLE t; ALTER TABLE t RENAME TO u';",
        "SELECT 'it''s; DROP TABLE t';",
        "SELECT E'\\'; DROP TABLE t; \\'';",
        "DO $$ BEGIN EXECUTE 'DROP TABLE t'; ALTER TABLE t DROP COLUMN c; END $$;",
        "SELECT $tag$ DROP TABLE t; $$ nested $$ $tag$;",
        'SELECT "drop table; x" FROM "rename to";',
        "INSERT INTO t (c) VALUES ('CREATE INDEX i ON t (c)');",
        "SELECT 1; -- trailing ALTER TABLE t DROP COLUMN c;",
    ],
)
def test_comments_and_literals_never_trigger(sql: str) -> None:
    assert rules(sql) == []


def test_statement_lines_skip_leading_comments_and_blank_lines() -> None:
    sql = "\n-- heading\n/* block\n comment */\n\n  ALTER TABLE t\n DROP COLUMN c;\nSELECT ';\n';\nDROP TABLE u"
    assert [(s.line, s.end_line) for s in statements(sql)] == [(6, 7), (8, 9), (10, 10)]
    assert rules(T + sql) == [(7, "drop-column"), (11, "drop-table")]


def test_crlf_and_bom_keep_line_numbers() -> None:
    sql = "\ufeffSET lock_timeout = '5s';\r\n\r\nDROP TABLE t;\r\n"
    assert rules(sql) == [(3, "drop-table")]


def test_unterminated_literal_hides_the_rest() -> None:
    assert rules("SELECT 'oops;\nDROP TABLE t;") == []


# --- opt-outs --------------------------------------------------------------------------------


def test_opt_out_forms() -> None:
    assert rules(T + "-- tminus-lint: ignore drop-column (unused since 2.1)\nALTER TABLE t DROP COLUMN c;") == []
    assert rules(T + "ALTER TABLE t DROP COLUMN c; -- tminus-lint: ignore drop-column") == []
    assert rules(T + "-- tminus-lint: ignore\nALTER TABLE t DROP COLUMN c, ALTER c2 TYPE int;") == []
    assert rules(T + "-- TMINUS-LINT: IGNORE drop-column\nALTER TABLE t DROP COLUMN c;") == []
    assert rules(T + "--tminus-lint:ignore drop-column rename-table\nALTER TABLE t DROP COLUMN c;") == []


def test_opt_out_is_per_rule_and_per_statement() -> None:
    sql = T + "-- tminus-lint: ignore drop-column\nALTER TABLE t DROP COLUMN c, ALTER d TYPE int;\nDROP TABLE u;"
    assert rules(sql) == [(3, "alter-column-type"), (4, "drop-table")]


def test_trailing_opt_out_belongs_to_its_own_line() -> None:
    sql = T + "ALTER TABLE t DROP COLUMN c; -- tminus-lint: ignore\nALTER TABLE t DROP COLUMN d;"
    assert rules(sql) == [(3, "drop-column")]


def test_opt_out_must_be_right_above() -> None:
    sql = T + "-- tminus-lint: ignore drop-table\n\nDROP TABLE t;"
    assert rules(sql) == [(4, "drop-table")]


def test_opt_out_inside_a_string_does_not_count() -> None:
    sql = T + "SELECT '\n-- tminus-lint: ignore\n';\nDROP TABLE t;"
    assert rules(sql) == [(5, "drop-table")]


def test_opt_out_covers_missing_lock_timeout_at_its_statement() -> None:
    sql = "-- tminus-lint: ignore missing-lock-timeout (tminus migrate sets it)\nALTER TABLE t ADD COLUMN c int;"
    assert rules(sql) == []
