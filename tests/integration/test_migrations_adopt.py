"""Adopting an existing migrations table (`columns:`), against real SQLite files and PostgreSQL:
read-only status and verify, apply and revert in the table's own shape, and the shape errors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tminus.db.migrations import DriftError, Migrator
from tminus.db.migrations.adopt import Columns, ShapeError
from tminus.db.migrations.files import discover
from tminus.db.migrations.foreign import flyway_crc32

FIXTURES = Path(__file__).parent.parent / "fixtures" / "migrations"
APP = ("CREATE TABLE schema_migrations (version VARCHAR(255) PRIMARY KEY,"
       " applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)")
MAPPING = Columns(version="version", applied_at="applied_at")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
def mdir(tmp_path: Path) -> Path:
    d = tmp_path / "migrations"
    shutil.copytree(FIXTURES / "basic", d)
    return d


def sql(url: str, *statements: str, params: dict[str, object] | None = None) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = None
            for stmt in statements:
                result = conn.execute(text(stmt), params or {})
            return [tuple(r) for r in result] if result is not None and result.returns_rows else []
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def app_applies(url: str, mdir: Path, *recorded: str, create: str = APP) -> None:
    """The application's own migrator: runs the files and records each version its way."""
    sql(url, create)
    files = {int(f.version): f for f in discover(mdir)}
    for value in recorded:
        mf = files[int(value.split("_")[0].split(".")[0])]
        sql(url, *mf.statements(sqlite=url.startswith("sqlite")))
        sql(url, "INSERT INTO schema_migrations (version) VALUES (:v)", params={"v": value})


def rows(url: str) -> list[tuple[object, ...]]:
    return sql(url, "SELECT * FROM schema_migrations ORDER BY version")


@pytest.fixture
def adopted(url: str, mdir: Path) -> Iterator[Migrator]:
    m = Migrator(url, mdir, columns=MAPPING, operator="tester", host="box", lock_wait=5)
    yield m
    m.close()


def test_read_only_adoption_leaves_the_table_byte_identical(url: str, mdir: Path, adopted: Migrator) -> None:
    app_applies(url, mdir, "0001_create_users.sql", "0002_add_orders.sql")
    before_rows, before_tables = rows(url), tables(url)
    st = adopted.status()
    assert st.ok and st.current == "0002"
    assert [(a.version, a.recorded, a.state) for a in st.applied] == [
        ("0001", "0001_create_users.sql", "unchecked"), ("0002", "0002_add_orders.sql", "unchecked")]
    assert [p["version"] for p in st.pending] == ["0003"]
    assert st.adopted == {"table": "schema_migrations", "columns": {"version": "version", "applied_at": "applied_at"},
                          "side": "tminus_schema_migrations"}
    assert adopted.verify().ok  # the verify scripts of 0001 and 0002 ran
    out = adopted.migrate(dry_run=True)
    assert out.versions == ["0003"] and out.before == "0002"
    assert rows(url) == before_rows and tables(url) == before_tables  # nothing written, no side table


def test_a_verify_script_failing_on_an_adopted_version(url: str, mdir: Path, adopted: Migrator) -> None:
    app_applies(url, mdir, "0001_create_users.sql")
    sql(url, "DELETE FROM users")
    with pytest.raises(Exception, match="verify of applied migration 0001 failed"):
        adopted.verify()


def test_version_formats_unknown_and_renamed(url: str, mdir: Path, adopted: Migrator) -> None:
    sql(url, APP)
    for value in ("1", "0002_add_orders", "20240101120000", "abc", "0003_renamed_index.sql"):
        sql(url, "INSERT INTO schema_migrations (version) VALUES (:v)", params={"v": value})
    st = adopted.status()
    assert [(a.version, a.state) for a in st.applied] == [
        ("20240101120000", "missing"), ("abc", "missing"), ("0001", "unchecked"), ("0002", "unchecked"),
        ("0003", "unchecked")]
    assert st.current == "0003" and not st.ok
    text_ = "\n".join(st.problems)
    assert "records version 'abc'" in text_ and "records version '20240101120000'" in text_
    assert "versions match files by number" in text_
    assert "records '0003_renamed_index.sql' but the file of version 0003 is 0003_orders_index.sql" in text_
    with pytest.raises(DriftError):
        adopted.verify()


def test_a_version_recorded_twice(url: str, mdir: Path, adopted: Migrator) -> None:
    sql(url, APP)
    for value in ("1", "0001"):
        sql(url, "INSERT INTO schema_migrations (version) VALUES (:v)", params={"v": value})
    assert any("recorded 2 times" in p for p in adopted.status().problems)


@pytest.mark.parametrize("column", ["VARCHAR(64)", "VARCHAR(32)", "INTEGER"])
def test_mapped_checksum_is_compared(url: str, mdir: Path, column: str) -> None:
    sql(url, f"CREATE TABLE schema_migrations (version VARCHAR(255) PRIMARY KEY, checksum {column})")
    first = discover(mdir)[0]
    import hashlib

    good = {"VARCHAR(64)": first.checksum, "VARCHAR(32)": hashlib.md5(first.text.encode()).hexdigest(),
            "INTEGER": flyway_crc32(first.text)}[column]
    sql(url, *first.statements(sqlite=url.startswith("sqlite")))
    sql(url, "INSERT INTO schema_migrations VALUES ('0001', :c)", params={"c": good})
    with Migrator(url, mdir, columns=Columns(version="version", checksum="checksum")) as m:
        assert [a.state for a in m.status().applied] == ["ok"]
        sql(url, "UPDATE schema_migrations SET checksum = :c", params={"c": 12345 if column == "INTEGER" else "0" * 32})
        st = m.status()
        assert [a.state for a in st.applied] == ["changed"] and "changed after it was applied" in st.problems[0]
        with pytest.raises(DriftError):
            m.verify()
        sql(url, "UPDATE schema_migrations SET checksum = :c", params={"c": good})
        m.migrate(to="0002")  # tminus writes the checksum in the column's form; status agrees with it
        assert [a.state for a in m.status().applied] == ["ok", "ok"]
        written = sql(url, "SELECT checksum FROM schema_migrations WHERE version = '0002'")[0][0]
        assert len(str(written)) == {"VARCHAR(64)": 64, "VARCHAR(32)": 32}.get(column, len(str(written)))


def test_apply_and_revert_write_the_tables_own_shape(url: str, mdir: Path, adopted: Migrator) -> None:
    app_applies(url, mdir, "0001_create_users.sql")
    app_row = rows(url)
    out = adopted.migrate()
    assert out.versions == ["0002", "0003"] and out.before == "0001"
    recorded = rows(url)
    assert [r[0] for r in recorded] == ["0001_create_users.sql", "0002_add_orders.sql", "0003_orders_index.sql"]
    assert recorded[0] == app_row[0] and all(r[1] is not None for r in recorded)
    side = sql(url, "SELECT version, checksum, operator FROM tminus_schema_migrations ORDER BY version")
    assert side == [(f.version, f.checksum, "tester") for f in discover(mdir)[1:]]
    st = adopted.status()
    assert st.ok and [a.state for a in st.applied] == ["unchecked", "ok", "ok"]
    assert st.applied[1].operator == "tester"
    assert {"tminus_schema_migrations_log", "tminus_schema_migrations_schema"} <= tables(url)
    assert not {"schema_migrations_log", "schema_migrations_schema"} & tables(url)

    back = adopted.revert("0001")
    assert back.versions == ["0003", "0002"] and [d.proof for d in back.done] == ["proven", "proven"]
    assert rows(url) == app_row  # the application's own row untouched
    assert sql(url, "SELECT count(*) FROM tminus_schema_migrations")[0][0] == 0
    assert adopted.migrate().versions == ["0002", "0003"]  # and forward again
    gone = adopted.revert("0")  # 0001 was applied by the application: reverted, its row removed
    assert gone.done[-1].version == "0001" and gone.done[-1].proof.startswith("unproven")
    assert rows(url) == []


def test_written_versions_copy_the_latest_rows_format(url: str, mdir: Path, adopted: Migrator) -> None:
    app_applies(url, mdir, "1")
    adopted.migrate(to="0002")
    assert [r[0] for r in rows(url)] == ["1", "2"]
    sql(url, "DELETE FROM schema_migrations WHERE version = '2'",
        "UPDATE schema_migrations SET version = '0001_create_users'")
    sql(url, "DROP TABLE orders")
    adopted.migrate(to="0002")
    assert [r[0] for r in rows(url)] == ["0001_create_users", "0002_add_orders"]


def test_integer_version_column(url: str, mdir: Path) -> None:
    app_applies(url, mdir, "1", create="CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY,"
                                         " applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)")
    with Migrator(url, mdir, columns=MAPPING) as m:
        assert m.status().current == "0001"
        m.migrate()
        assert [r[0] for r in rows(url)] == [1, 2, 3]
        m.revert("0002")
        assert [r[0] for r in rows(url)] == [1, 2]


def test_default_table_of_another_shape_is_a_clear_error(url: str, mdir: Path) -> None:
    app_applies(url, mdir, "0001_create_users.sql")
    before = tables(url)
    with Migrator(url, mdir, lock_wait=5) as m:
        for action in (m.status, m.verify, m.migrate, lambda: m.revert("0"), lambda: m.stamp("0001")):
            with pytest.raises(ShapeError) as err:
                action()
            msg = str(err.value)
            assert "tracking table schema_migrations exists but is not tminus's" in msg
            assert "has no column name, checksum, duration_ms, operator, host" in msg
            assert "found:    version (VARCHAR(255)), applied_at (" in msg
            assert "columns: {version: version, applied_at: applied_at}" in msg
            assert "--column version=version --column applied_at=applied_at" in msg
            assert 'column "name" does not exist' not in msg
    assert tables(url) == before  # not even a lock table


def test_mapped_column_that_is_not_there(url: str, mdir: Path) -> None:
    app_applies(url, mdir, "0001_create_users.sql")
    with Migrator(url, mdir, columns=Columns(version="filename", name="description")) as m:
        with pytest.raises(ShapeError, match=r"has no column for version -> filename, name -> description") as err:
            m.status()
        assert "found:    version (VARCHAR(255)), applied_at" in str(err.value)


def test_adopting_a_table_that_does_not_exist(url: str, mdir: Path) -> None:
    with Migrator(url, mdir, table="flyway_schema_history", columns=MAPPING) as m:
        for action in (m.status, m.migrate):
            with pytest.raises(ShapeError, match="table flyway_schema_history does not exist"):
                action()
    assert tables(url) == set()


def test_not_null_column_without_default_blocks_writing_not_reading(url: str, mdir: Path) -> None:
    app_applies(url, mdir, create="CREATE TABLE schema_migrations (version VARCHAR(255) PRIMARY KEY,"
                                  " installed_by VARCHAR(100) NOT NULL, success BOOLEAN NOT NULL DEFAULT TRUE)")
    sql(url, *discover(mdir)[0].statements(sqlite=url.startswith("sqlite")))
    sql(url, "INSERT INTO schema_migrations (version, installed_by) VALUES ('0001', 'app')")
    before, before_tables = rows(url), tables(url)
    with Migrator(url, mdir, columns=Columns(version="version"), lock_wait=5) as m:
        assert m.status().current == "0001"  # read-only adoption works
        for action in (m.migrate, lambda: m.migrate(dry_run=True), lambda: m.stamp("0002"),
                       lambda: m.stamp("0002", dry_run=True)):
            with pytest.raises(ShapeError) as err:
                action()
            assert "column installed_by VARCHAR(100) NOT NULL is NOT NULL without a default" in str(err.value)
            assert "success" not in str(err.value).split("found:")[0]  # it has a default
        assert rows(url) == before and tables(url) == before_tables
        assert m.revert("0").versions == ["0001"]  # deleting a row needs no value for installed_by
    assert rows(url) == [] and "users" not in tables(url)


def test_stamp_moves_to_a_table_of_tminus_own(url: str, mdir: Path, adopted: Migrator) -> None:
    """The upgrade path: adopted read-only, then tminus's own table stamped at the same version."""
    app_applies(url, mdir, "0001_create_users.sql", "0002_add_orders.sql")
    current = adopted.verify().current
    with Migrator(url, mdir, table="tminus_migrations", operator="op", lock_wait=5) as own:
        assert own.stamp(current, dry_run=True).versions == ["0001", "0002"]
        assert "tminus_migrations" not in tables(url)
        out = own.stamp(current)
        assert out.action == "stamp" and out.versions == ["0001", "0002"] and out.after == "0002"
        st = own.status()
        assert st.ok and st.current == "0002" and [a.state for a in st.applied] == ["ok", "ok"]
        assert own.migrate().versions == ["0003"]
        actions = sql(url, "SELECT version, action FROM tminus_migrations_log ORDER BY at")
        assert actions[:2] == [("0001", "stamp"), ("0002", "stamp")]
    assert [r[0] for r in rows(url)] == ["0001_create_users.sql", "0002_add_orders.sql"]  # left to the app


def test_careless_mappings_are_refused() -> None:
    from tminus.db.migrations.errors import MigrationError

    for mapping, why in [({}, "needs 'version'"), ({"name": "n"}, "needs 'version'"),
                         ({"version": "v", "verison": "x"}, "unknown column notion 'verison'"),
                         ({"version": "v; DROP TABLE x"}, "not a plain column name"),
                         ({"version": ""}, "needs 'version'"),
                         ({"version": "v", "name": "V"}, "mapped twice")]:
        with pytest.raises(MigrationError, match=why):
            Columns.parse(mapping)


def test_the_applications_own_rollback_then_tminus_again(url: str, mdir: Path, adopted: Migrator) -> None:
    """Runbook 004's manual rollback: the application drops the tables and deletes its rows; the
    side table still has tminus's rows for them. The table is the truth: pending again, re-applied."""
    app_applies(url, mdir, "0001_create_users.sql")
    adopted.migrate()
    sql(url, "DROP TABLE orders", "DELETE FROM schema_migrations WHERE version IN"
        " ('0002_add_orders.sql', '0003_orders_index.sql')")
    st = adopted.status()
    assert st.ok and st.current == "0001" and [p["version"] for p in st.pending] == ["0002", "0003"]
    assert adopted.migrate().versions == ["0002", "0003"]
    assert adopted.revert("0001").done[0].proof == "proven"  # the schema recorded by the second apply


def test_careless_values_in_the_table(url: str, mdir: Path, adopted: Migrator) -> None:
    sql(url, "CREATE TABLE schema_migrations (version VARCHAR(6000), applied_at TIMESTAMP)")
    for value in (" 0001 ", "", "9" * 5000, "0001_x.sql; DROP TABLE users", None):
        sql(url, "INSERT INTO schema_migrations (version) VALUES (:v)", params={"v": value})
    st = adopted.status()
    assert st.current == "0001" and not st.ok
    assert sum("matches it" in p for p in st.problems) == 4  # '', the huge number, the injection, NULL


def test_mapping_ignores_case_and_keeps_the_real_names(url: str, mdir: Path) -> None:
    sql(url, 'CREATE TABLE schema_migrations ("Version" VARCHAR(255), "AppliedAt" VARCHAR(40))',
        *discover(mdir)[0].statements(sqlite=url.startswith("sqlite")),
        """INSERT INTO schema_migrations ("Version") VALUES ('0001_create_users.sql')""")
    with Migrator(url, mdir, columns=Columns(version="version", applied_at="appliedat")) as m:
        assert m.status().current == "0001"
        m.migrate(to="0002")
    assert sql(url, 'SELECT "Version" FROM schema_migrations ORDER BY 1') == [
        ("0001_create_users.sql",), ("0002_add_orders.sql",)]


def test_a_table_in_another_schema(pg_url: str, mdir: Path) -> None:
    sql(pg_url, "CREATE SCHEMA app", "CREATE TABLE app.schema_migrations (version BIGINT PRIMARY KEY)")
    with Migrator(pg_url, mdir, table="app.schema_migrations", columns=Columns(version="version")) as m:
        assert m.migrate(to="0002").versions == ["0001", "0002"]
        assert m.revert("0001").versions == ["0002"]
    assert sql(pg_url, "SELECT version FROM app.schema_migrations") == [(1,)]
    assert sql(pg_url, "SELECT version FROM app.tminus_schema_migrations") == [("0001",)]


def test_a_no_transaction_migration_cut_short_resumes(url: str, mdir: Path, adopted: Migrator) -> None:
    """Its progress is tminus's (side table); the application's row is written once it is complete."""
    from tminus.db.migrations import MigrationFailed

    app_applies(url, mdir, "0001_create_users.sql", "0002_add_orders.sql", "0003_orders_index.sql")
    step = mdir / "0004_stepwise.sql"
    step.write_text("-- tminus: no-transaction\nCREATE TABLE a (x INTEGER);\nINSERT INTO nowhere VALUES (1);\n")
    with pytest.raises(MigrationFailed, match="stopped at statement 2 of 2"):
        adopted.migrate()
    st = adopted.status()
    assert [(h.version, h.done, h.total) for h in st.half_applied] == [("0004", 1, 2)]
    assert len(rows(url)) == 3  # nothing recorded for 0004 in the application's table
    step.write_text("-- tminus: no-transaction\nCREATE TABLE a (x INTEGER);\nCREATE TABLE b (y INTEGER);\n")
    out = adopted.migrate()
    assert out.versions == ["0004"] and out.done[0].resumed_from == 1
    assert rows(url)[-1][0] == "0004_stepwise.sql" and adopted.status().ok


FLYWAY = ("CREATE TABLE flyway_schema_history (installed_rank INT NOT NULL PRIMARY KEY, version VARCHAR(50),"
          " description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL,"
          " checksum INT, installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT"
          " CURRENT_TIMESTAMP, execution_time INT NOT NULL, success BOOLEAN NOT NULL)")


def test_flyway_history_read_only(url: str, mdir: Path) -> None:
    """Flyway's table: versions `1`, `2` and CRC32 checksums are read; a row cannot be written by
    tminus (installed_rank, installed_by... are NOT NULL), which is said before anything changes."""
    sql(url, FLYWAY)
    for rank, mf in enumerate(discover(mdir)[:2], start=1):
        sql(url, *mf.statements(sqlite=url.startswith("sqlite")))
        sql(url, "INSERT INTO flyway_schema_history VALUES (:r, :v, :d, 'SQL', :s, :c, 'app', CURRENT_TIMESTAMP,"
            " 5, TRUE)", params={"r": rank, "v": str(rank), "d": mf.name.replace("_", " "),
                                 "s": f"V{rank}__{mf.name}.sql", "c": flyway_crc32(mf.text)})
    before = sql(url, "SELECT * FROM flyway_schema_history ORDER BY installed_rank")
    mapping = Columns(version="version", name="description", applied_at="installed_on", checksum="checksum")
    with Migrator(url, mdir, table="flyway_schema_history", columns=mapping, lock_wait=5) as m:
        st = m.verify()
        assert st.current == "0002" and [(a.version, a.name, a.state) for a in st.applied] == [
            ("0001", "create users", "ok"), ("0002", "add orders", "ok")]
        with pytest.raises(ShapeError) as err:
            m.migrate()
        for column in ("installed_rank", "type", "script", "installed_by", "execution_time", "success"):
            assert column in str(err.value).split("found:")[0]
    assert sql(url, "SELECT * FROM flyway_schema_history ORDER BY installed_rank") == before
    assert not any(t.startswith("tminus_") for t in tables(url))


def test_a_key_that_fills_itself_does_not_block_writing(url: str, mdir: Path) -> None:
    key = ("id INTEGER PRIMARY KEY" if url.startswith("sqlite")
           else "id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n SERIAL")
    sql(url, f"CREATE TABLE schema_migrations ({key}, version TEXT NOT NULL)")
    with Migrator(url, mdir, columns=Columns(version="version")) as m:
        assert m.migrate(to="0002").versions == ["0001", "0002"]
    assert [r[0] for r in sql(url, "SELECT version FROM schema_migrations ORDER BY id")] == ["0001", "0002"]


def test_stamp_an_adopted_table_for_a_version_applied_by_hand(url: str, mdir: Path, adopted: Migrator) -> None:
    """Runbook 004's manual path (psql -f 0002...) leaves the schema applied and the table silent:
    stamping records the row the application's way, running nothing (0002 again would fail)."""
    app_applies(url, mdir, "0001_create_users.sql")
    sql(url, *discover(mdir)[1].statements(sqlite=url.startswith("sqlite")))
    out = adopted.stamp("0002")
    assert out.versions == ["0002"] and out.action == "stamp"
    assert [r[0] for r in rows(url)] == ["0001_create_users.sql", "0002_add_orders.sql"]
    assert sql(url, "SELECT count(*) FROM orders") == [(1,)]  # not run twice
    assert adopted.verify().current == "0002"


def test_reserved_words_as_column_names(url: str, mdir: Path) -> None:
    sql(url, 'CREATE TABLE "order" ("user" VARCHAR(50) NOT NULL, "select" VARCHAR(40))')
    with Migrator(url, mdir, table="order", columns=Columns(version="user", applied_at="select")) as m:
        assert m.migrate(to="0001").versions == ["0001"]
        assert m.status().current == "0001"
        m.revert("0")
    assert sql(url, 'SELECT count(*) FROM "order"') == [(0,)]
