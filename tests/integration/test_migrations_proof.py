"""Every revert proven: the schema recorded before a migration, compared after its down file ran
(tminus.db.migrations.proof), on real SQLite files and the real local PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tminus.db.migrations import Migrator, RevertIncomplete
from tminus.db.migrations.proof import SchemaLeftover

BASE = "CREATE TABLE metrics (id {pk}, ts TEXT NOT NULL, v REAL);"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


def pk(url: str) -> str:
    return "INTEGER PRIMARY KEY AUTOINCREMENT" if url.startswith("sqlite") else "SERIAL PRIMARY KEY"


def write(d: Path, name: str, up: str, down: str, verify: str | None = None) -> None:
    (d / f"{name}.sql").write_text(up)
    (d / f"{name}.down.sql").write_text(down)
    if verify is not None:
        (d / f"{name}.verify.sql").write_text(verify)


@pytest.fixture
def mdir(tmp_path: Path, url: str) -> Path:
    d = tmp_path / "migrations"
    d.mkdir()
    write(d, "0001_init", BASE.format(pk=pk(url)), "DROP TABLE metrics;")
    return d


@pytest.fixture
def migrator(url: str, mdir: Path) -> Iterator[Migrator]:
    m = Migrator(url, mdir, operator="tester", host="box", lock_wait=5)
    yield m
    m.close()


def run(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def applied(url: str) -> list[str]:
    return [str(r[0]) for r in run(url, "SELECT version FROM schema_migrations ORDER BY version")]


@pytest.mark.parametrize("with_verify", [False, True])
def test_down_missing_drop_index_fails_its_revert(migrator: Migrator, mdir: Path, url: str,
                                                  with_verify: bool) -> None:
    # the verify script checks the column only: it cannot see the index left behind
    verify = ("SELECT count(*) = 1 FROM pragma_table_info('metrics') WHERE name = 'note'" if url.startswith("sqlite")
              else "SELECT count(*) = 1 FROM information_schema.columns WHERE table_name = 'metrics'"
                   " AND column_name = 'note'")
    write(mdir, "0002_ts_index",
          "CREATE INDEX metrics_ts_idx ON metrics (ts);\nALTER TABLE metrics ADD COLUMN note TEXT;",
          "ALTER TABLE metrics DROP COLUMN note;", verify if with_verify else None)
    migrator.migrate()
    run(url, "INSERT INTO metrics (ts, v) VALUES ('2026-01-01', 1.5)")  # traffic in between is fine
    with pytest.raises(SchemaLeftover) as err:
        migrator.revert("0001")
    assert "index metrics_ts_idx (not there before)" in str(err.value)
    assert "the revert was rolled back" in str(err.value)
    assert [(d.kind, d.name, d.change) for d in err.value.differences] == [("index", "metrics_ts_idx", "new")]
    assert isinstance(err.value, RevertIncomplete)
    assert applied(url) == ["0001", "0002"]  # rolled back: still applied, the column still there
    assert run(url, "SELECT note FROM metrics") == [(None,)]
    # the fixed down file passes, proven
    (mdir / "0002_ts_index.down.sql").write_text("DROP INDEX metrics_ts_idx;\nALTER TABLE metrics DROP COLUMN note;")
    out = migrator.revert("0001")
    assert [(d.version, d.proof) for d in out.done] == [("0002", "proven")]
    assert applied(url) == ["0001"]


def test_correct_down_passes_and_everything_reverts(migrator: Migrator, mdir: Path, url: str) -> None:
    write(mdir, "0002_ts_index", "CREATE INDEX metrics_ts_idx ON metrics (ts);", "DROP INDEX metrics_ts_idx;")
    migrator.migrate()
    out = migrator.revert("0")
    assert [(d.version, d.proof) for d in out.done] == [("0002", "proven"), ("0001", "proven")]
    assert all(d.proof_ms is not None and d.proof_ms >= 0 for d in out.done)
    assert applied(url) == []
    # the recorded schemas go with the versions they belong to
    assert run(url, "SELECT count(*) FROM schema_migrations_schema") == [(0,)]


def test_column_and_constraint_changes_left_fail(migrator: Migrator, mdir: Path, url: str) -> None:
    if url.startswith("sqlite"):
        write(mdir, "0002_widen", "ALTER TABLE metrics ADD COLUMN unit TEXT NOT NULL DEFAULT 'ms';",
              "SELECT 1;")
        expected = "column metrics.unit (not there before)"
    else:
        write(mdir, "0002_widen", "ALTER TABLE metrics ALTER COLUMN v TYPE DOUBLE PRECISION;\n"
              "ALTER TABLE metrics ADD CONSTRAINT metrics_v_positive CHECK (v > 0);",
              "ALTER TABLE metrics DROP CONSTRAINT metrics_v_positive;")
        expected = "column metrics.v: type real -> double precision"
    migrator.migrate()
    with pytest.raises(SchemaLeftover) as err:
        migrator.revert("0001")
    assert expected in str(err.value)
    assert applied(url) == ["0001", "0002"]


def test_constraint_left_fails_on_postgres(pg_url: str, tmp_path: Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    write(d, "0001_init", BASE.format(pk="SERIAL PRIMARY KEY"), "DROP TABLE metrics;")
    write(d, "0002_check", "ALTER TABLE metrics ADD CONSTRAINT metrics_v_positive CHECK (v > 0);", "SELECT 1;")
    with Migrator(pg_url, d, lock_wait=5) as m:
        m.migrate()
        with pytest.raises(SchemaLeftover, match=r"constraint metrics\.metrics_v_positive \(not there before\)"):
            m.revert("0001")


def test_sequence_set_back_fails_but_traffic_does_not(migrator: Migrator, mdir: Path, url: str) -> None:
    sqlite = url.startswith("sqlite")
    # the migration seeds rows and its down deletes them, then resets the counter: ids would repeat
    reset = ("UPDATE sqlite_sequence SET seq = 0 WHERE name = 'metrics';" if sqlite
             else "SELECT setval('metrics_id_seq', 1, false);")
    write(mdir, "0002_seed", "INSERT INTO metrics (ts, v) VALUES ('seed', 1), ('seed', 2);",
          "DELETE FROM metrics WHERE ts = 'seed';\n" + reset)
    migrator.migrate("0001")
    run(url, "INSERT INTO metrics (ts, v) VALUES ('before', 0)")  # the counter is at 1 before 0002
    migrator.migrate()
    run(url, "INSERT INTO metrics (ts, v) VALUES ('after', 3)")  # and moves on with traffic
    with pytest.raises(SchemaLeftover, match=r"sequence metrics(_id_seq)? set back") as err:
        migrator.revert("0001")
    assert "sequence" in {d.kind for d in err.value.differences}
    if not sqlite:  # setval ignores the rollback: the message says so, and the operator sets it forward
        assert "not transactional" in str(err.value)
        run(url, "SELECT setval('metrics_id_seq', (SELECT max(id) FROM metrics))")
    # without the reset, the forward-moved counter is traffic: proven
    (mdir / "0002_seed.down.sql").write_text("DELETE FROM metrics WHERE ts = 'seed';")
    out = migrator.revert("0001")
    assert out.done[0].proof == "proven"


def test_revert_of_version_applied_elsewhere_is_unproven(migrator: Migrator, mdir: Path, url: str) -> None:
    write(mdir, "0002_ts_index", "CREATE INDEX metrics_ts_idx ON metrics (ts);", "SELECT 1;")
    migrator.migrate()
    run(url, "DELETE FROM schema_migrations_schema WHERE version = '0002'")  # as an older tminus left it
    out = migrator.revert("0001")
    assert out.done[0].proof is not None and out.done[0].proof.startswith("unproven: no schema was recorded")
    assert applied(url) == ["0001"]


def tminus(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    return subprocess.run([sys.executable, "-m", "tminus", "db", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_cli_revert_names_the_leftover(url: str, mdir: Path) -> None:
    write(mdir, "0002_ts_index", "CREATE INDEX metrics_ts_idx ON metrics (ts);", "SELECT 1;")
    ok = tminus("migrate", str(mdir), "--url", url)
    assert ok.returncode == 0, ok.stderr
    bad = tminus("revert", str(mdir), "--url", url, "--to", "1")
    assert bad.returncode == 1
    assert "index metrics_ts_idx (not there before)" in bad.stderr
    (mdir / "0002_ts_index.down.sql").write_text("DROP INDEX metrics_ts_idx;")
    good = tminus("revert", str(mdir), "--url", url, "--to", "1")
    assert good.returncode == 0, good.stderr
    assert "reverted 0002 0002_ts_index.down.sql (1 statements)" in good.stdout
    assert "schema proven" in good.stdout


def test_runbook_rollback_with_a_leftover_fails_exit_12(url: str, mdir: Path, tmp_path: Path) -> None:
    """A rollback's automatic revert that leaves an index: rollback_failed (exit 12), the index named
    in the revert step's evidence, and the revert rolled back (0002 still applied)."""
    from tests.helpers import run_json, write_runbook

    write(mdir, "0002_ts_index", "CREATE INDEX metrics_ts_idx ON metrics (ts);", "SELECT 1;")
    write_runbook(tmp_path, f"""
        version: 1
        name: proof
        phases:
          - name: migrate
            steps:
              - name: Apply
                migrate: {{url: "{url}", dir: migrations}}
        verify:
          - name: a check that fails, so the run rolls back
            sql: {{url: "{url}", query: SELECT 1}}
            expect: [scalar == 2]
        decision: auto
        """)
    code, result = run_json("run", "runbook.yaml", "--yes", cwd=tmp_path)
    assert code == 12 and result["status"] == "rollback_failed", result
    _, shown = run_json("show", result["run_id"], cwd=tmp_path)
    ends = [e["data"] for e in shown["events"]
            if e["type"] == "step.finished" and (e["step_key"] or "").endswith(".undo[auto]")]
    assert len(ends) == 1 and ends[0]["status"] != "ok"
    assert "index metrics_ts_idx (not there before)" in ends[0]["message"]
    assert [(d["kind"], d["name"], d["change"]) for d in ends[0]["evidence"]["leftovers"]] == [
        ("index", "metrics_ts_idx", "new")]
    assert applied(url) == ["0001", "0002"]


def test_schema_only_fingerprint_reads_no_rows(migrator: Migrator, url: str) -> None:
    from tminus.db.fingerprint import fingerprint
    from tminus.db.migrations.proof import describe, leftovers

    migrator.migrate()
    before = fingerprint(url, rows=False)
    assert before["metrics"] == {} and "@schema" in before
    run(url, "INSERT INTO metrics (ts, v) VALUES ('x', 1)")
    # rows are not part of it; the sequence moved forward with the insert: traffic, not a leftover
    assert leftovers(before, fingerprint(url, rows=False)) == []
    assert fingerprint(url)["metrics"]["rows"] == 1  # the full one still counts them
    run(url, "CREATE INDEX metrics_v_idx ON metrics (v)")
    assert [describe(d) for d in leftovers(before, fingerprint(url, rows=False))] == [
        "index metrics_v_idx (not there before)"]
