"""Fingerprints on the real local PostgreSQL and SQLite: order-independent, change-sensitive."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers_db import run_sql

from helpers_kinds import run_step
from tminus.db import pgtools
from tminus.db.fingerprint import FingerprintError, compare, fingerprint, tables_of
from tminus.expect.evaluate import evaluate_all
from tminus.expect.grammar import parse


@pytest.fixture(params=["sqlite", "postgresql"])
def two_urls(request: pytest.FixtureRequest, tmp_path) -> tuple[str, str]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    first = request.getfixturevalue("pg_url")
    # a second fresh database on the same server, dropped at the end
    target = pgtools.pg_target(first)
    name = pgtools.create_scratch(target, "tminus_t_fp_")
    request.addfinalizer(lambda: pgtools.drop_database(target, name))
    return first, first.rsplit("/", 1)[0] + "/" + name


CREATE = "CREATE TABLE notes (id INTEGER, body TEXT)"


def test_independent_of_insertion_order(two_urls: tuple[str, str]) -> None:
    a, b = two_urls
    run_sql(a, CREATE, "INSERT INTO notes VALUES (1, 'x')", "INSERT INTO notes VALUES (2, 'y')",
            "INSERT INTO notes VALUES (2, 'y')")
    run_sql(b, CREATE, "INSERT INTO notes VALUES (2, 'y')", "INSERT INTO notes VALUES (1, 'x')",
            "INSERT INTO notes VALUES (2, 'y')")
    fa, fb = fingerprint(a), fingerprint(b)
    assert fa == fb
    assert fa["notes"]["rows"] == 3 and len(fa["notes"]["checksum"]) == 32
    assert compare(fa, fb) == []


def test_changed_value_or_duplicate_differs(two_urls: tuple[str, str]) -> None:
    a, b = two_urls
    run_sql(a, CREATE, "INSERT INTO notes VALUES (1, 'x'), (2, 'y')")
    run_sql(b, CREATE, "INSERT INTO notes VALUES (1, 'x'), (2, 'Y')")
    assert fingerprint(a)["notes"]["checksum"] != fingerprint(b)["notes"]["checksum"]
    assert compare(fingerprint(a), fingerprint(b)) == ["table notes: content differs (2 rows, same count)"]
    # duplicates count: XOR-combining would let two identical rows cancel out; a sum does not
    run_sql(a, "DELETE FROM notes", "INSERT INTO notes VALUES (1, 'x'), (1, 'x'), (2, 'y'), (2, 'y')")
    run_sql(b, "DELETE FROM notes", "INSERT INTO notes VALUES (3, 'z'), (3, 'z'), (4, 'w'), (4, 'w')")
    assert fingerprint(a)["notes"]["checksum"] != fingerprint(b)["notes"]["checksum"]


def test_compare_messages(two_urls: tuple[str, str]) -> None:
    a, b = two_urls
    run_sql(a, CREATE, "CREATE TABLE gone (x INTEGER)", "INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    run_sql(b, CREATE, "CREATE TABLE fresh (x INTEGER)",
            "INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')")
    assert compare(fingerprint(a), fingerprint(b)) == [
        "table fresh is new (not in the earlier fingerprint)",
        "table gone missing after",
        "table notes: 3 rows vs 4 rows",
    ]


def test_tables_filter_and_unknown_table(two_urls: tuple[str, str]) -> None:
    a, _ = two_urls
    run_sql(a, CREATE, "CREATE TABLE other (x INTEGER)")
    assert list(tables_of(fingerprint(a, ["notes"]))) == ["notes"]
    with pytest.raises(FingerprintError, match=r"no table nope.*expected one of: notes, other"):
        fingerprint(a, ["nope"])


def test_pg_other_schemas_are_qualified(pg_url: str) -> None:
    run_sql(pg_url, CREATE, "CREATE SCHEMA audit", "CREATE TABLE audit.events (id INTEGER)",
            "INSERT INTO audit.events VALUES (1)")
    fp = fingerprint(pg_url)
    assert set(tables_of(fp)) == {"notes", "audit.events"}
    assert fp["audit.events"]["rows"] == 1
    assert list(tables_of(fingerprint(pg_url, ["public.notes"]))) == ["notes"]


def test_sqlite_missing_file_is_not_created(tmp_path) -> None:
    with pytest.raises(FingerprintError, match="does not exist"):
        fingerprint(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()


# --- the CLI: --json, --compare with a database or a second saved file ---------------------------

def tminus_db(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tminus", "db", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_cli_json_and_compare(two_urls: tuple[str, str], tmp_path: Path) -> None:
    url, _ = two_urls
    run_sql(url, CREATE, "INSERT INTO notes VALUES (1, 'x')")
    saved = tminus_db("fingerprint", "--url", url, "--json")
    assert saved.returncode == 0, saved.stderr
    fp = json.loads(saved.stdout)
    assert fp["notes"]["rows"] == 1 and set(fp["@schema"]["column"]) == {"notes.id", "notes.body"}
    before = tmp_path / "before.json"
    before.write_text(saved.stdout)
    same = tminus_db("fingerprint", "--url", url, "--compare", str(before))
    assert same.returncode == 0 and same.stdout.strip() == "no differences"

    run_sql(url, "CREATE INDEX notes_body ON notes (body)")
    changed = tminus_db("fingerprint", "--url", url, "--compare", str(before))
    assert changed.returncode == 1
    assert changed.stdout.strip() == "index notes_body is new (not in the earlier fingerprint)"
    as_json = json.loads(tminus_db("fingerprint", "--url", url, "--compare", str(before), "--json").stdout)
    assert as_json["equal"] is False
    assert [(d["kind"], d["name"], d["change"]) for d in as_json["differences"]] == [("index", "notes_body", "new")]

    after = tmp_path / "after.json"
    after.write_text(tminus_db("fingerprint", "--url", url, "--json").stdout)
    files = tminus_db("fingerprint", "--compare", str(before), "--to", str(after))
    assert files.returncode == 1 and "index notes_body is new" in files.stdout
    text = tminus_db("fingerprint", "--url", url)
    assert "notes" in text.stdout and "1 rows" in text.stdout and "[index]" in text.stdout


def test_cli_usage_and_bad_files(tmp_path: Path) -> None:
    neither = tminus_db("fingerprint")
    assert neither.returncode == 2 and "--url" in neither.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    refused = tminus_db("fingerprint", "--compare", str(bad), "--to", str(bad))
    assert refused.returncode == 1 and "is not a fingerprint" in refused.stderr


# --- the kind: digests, diff and include_tminus --------------------------------------------------

def test_kind_outputs_digests_and_diff(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    run_sql(url, CREATE, "CREATE TABLE tminus_runs (id INTEGER)", "INSERT INTO notes VALUES (1, 'x')")
    first = run_step({"fingerprint": {"url": url}}, tmp_path)
    assert first.error is None and first.values["tables"] == 1 and first.values["rows"] == 1
    assert set(first.outputs["digests"]) >= {"rows", "column", "table", "all"}
    with_own = run_step({"fingerprint": {"url": url, "include_tminus": True}}, tmp_path)
    assert with_own.values["tables"] == 2

    run_sql(url, "PRAGMA user_version = 3", "INSERT INTO tminus_runs VALUES (1)")
    checked = run_step({"fingerprint": {"url": url, "compare_to": json.dumps(first.outputs["fingerprint"])}},
                       tmp_path)
    assert checked.failures == ["pragma user_version: value 0 -> 3"]
    assert checked.values["diff"] == checked.outputs["diff"] == checked.failures
    assert checked.evidence["differences"][0]["kind"] == "pragma"
    assert checked.outputs["digests"]["pragma"] != first.outputs["digests"]["pragma"]
    # expectations read them
    verdicts = evaluate_all([parse('diff contains "pragma user_version: value 0 -> 3"'), parse("diff count == 1"),
                             parse('digests keys contains "pragma"')], checked.values)
    assert [v.passed for v in verdicts] == [True, True, True]


def test_legacy_fingerprint_compares_rows_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    run_sql(url, CREATE, "INSERT INTO notes VALUES (1, 'x')")
    legacy = {"notes": {"rows": 1, "checksum": "0" * 32}}  # saved by a tminus without the schema
    assert compare(legacy, fingerprint(url)) == []
    assert compare({"notes": {"rows": 2, "checksum": "0" * 32}}, fingerprint(url)) == ["table notes: 2 rows vs 1 rows"]


# --- tminus's own bookkeeping: apply then revert leaves the fingerprint as it was -----------------

def test_migrate_then_revert_is_invisible(pg_url: str) -> None:
    migrations = Path(__file__).resolve().parents[2] / "examples" / "metrics-subsystem" / "migrations"
    assert tminus_db("migrate", str(migrations), "--url", pg_url, "--to", "0004").returncode == 0
    before = fingerprint(pg_url)
    assert tminus_db("migrate", str(migrations), "--url", pg_url).returncode == 0
    assert "table metrics_alert is new (not in the earlier fingerprint)" in compare(before, fingerprint(pg_url))
    assert tminus_db("revert", str(migrations), "--url", pg_url, "--to", "0004").returncode == 0
    assert compare(before, fingerprint(pg_url)) == []
    # the tracking tables did change: they are only left out by default
    own = compare(before, fingerprint(pg_url, include_tminus=True))
    assert "table schema_migrations_log is new (not in the earlier fingerprint)" in own
