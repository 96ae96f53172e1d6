"""The `migrate` kind driving a real Alembic project, on SQLite and PostgreSQL: through the kind,
then inside `tminus run`, where a failed phase reverts what Alembic applied."""

from __future__ import annotations

import re
import sqlite3
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from tests.helpers import run_json, write_runbook

from helpers_kinds import run_step
from tminus.kinds.base import Observation

REV1, REV2, REV3, BAD = "1a2b3c4d5e6f", "2b3c4d5e6f70", "3c4d5e6f7081", "4d5e6f708192"
APP_TABLES = {"accounts", "invoices"}

# alembic's generic template, as a project would keep it. env.py reads sqlalchemy.url from the
# configuration, which tminus sets to the step's url; the ini's own URL is a developer default
# that must never be touched here. One transaction per revision, so a failing revision leaves the
# earlier ones applied (the partial failure the rollback must still revert).
ALEMBIC_INI = """
    [alembic]
    script_location = %(here)s/migrations
    prepend_sys_path = .
    sqlalchemy.url = sqlite:///%(here)s/developer.db

    [loggers]
    keys = root,sqlalchemy,alembic

    [handlers]
    keys = console

    [formatters]
    keys = generic

    [logger_root]
    level = WARNING
    handlers = console
    qualname =

    [logger_sqlalchemy]
    level = WARNING
    handlers =
    qualname = sqlalchemy.engine

    [logger_alembic]
    level = INFO
    handlers =
    qualname = alembic

    [handler_console]
    class = StreamHandler
    args = (sys.stderr,)
    level = NOTSET
    formatter = generic

    [formatter_generic]
    format = %(levelname)-5.5s [%(name)s] %(message)s
"""

ENV_PY = """
    from logging.config import fileConfig

    from alembic import context
    from sqlalchemy import engine_from_config, pool

    config = context.config
    if config.config_file_name is not None:
        fileConfig(config.config_file_name)


    def run_migrations_offline():
        context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
                          dialect_opts={"paramstyle": "named"}, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


    def run_migrations_online():
        engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                    poolclass=pool.NullPool)
        with engine.connect() as connection:
            context.configure(connection=connection, transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()


    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()
"""

REVISIONS = {
    f"{REV1}_create_accounts.py": f"""
        import sqlalchemy as sa
        from alembic import op

        revision = "{REV1}"
        down_revision = None


        def upgrade():
            op.create_table("accounts", sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("email", sa.String(200), nullable=False, unique=True))


        def downgrade():
            op.drop_table("accounts")
    """,
    f"{REV2}_create_invoices.py": f"""
        import sqlalchemy as sa
        from alembic import op

        revision = "{REV2}"
        down_revision = "{REV1}"


        def upgrade():
            op.create_table("invoices", sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
                            sa.Column("cents", sa.Integer, nullable=False))


        def downgrade():
            op.drop_table("invoices")
    """,
    f"{REV3}_accounts_plan.py": f"""
        import sqlalchemy as sa
        from alembic import op

        revision = "{REV3}"
        down_revision = "{REV2}"


        def upgrade():
            op.add_column("accounts", sa.Column("plan", sa.String(20), nullable=False, server_default="free"))


        def downgrade():
            with op.batch_alter_table("accounts") as batch:  # SQLite rebuilds the table; PostgreSQL alters it
                batch.drop_column("plan")
    """,
}

FAILING = {
    f"{BAD}_backfill_plans.py": f"""
        from alembic import op

        revision = "{BAD}"
        down_revision = "{REV3}"


        def upgrade():
            op.execute("UPDATE accounts SET tier = plan")


        def downgrade():
            pass
    """,
}


def make_project(root: Path, *, failing: bool = False) -> Path:
    """alembic.ini, env.py and hand-written revisions under `root`, as `alembic init` lays them out."""
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "alembic.ini").write_text(textwrap.dedent(ALEMBIC_INI).lstrip())
    (root / "migrations" / "env.py").write_text(textwrap.dedent(ENV_PY).lstrip())
    (root / "migrations" / "script.py.mako").write_text("")  # only `alembic revision` uses it
    for name, body in {**REVISIONS, **(FAILING if failing else {})}.items():
        (versions / name).write_text(textwrap.dedent(body).lstrip())
    return root


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The step's url: a SQLite file relative to the runbook's folder, or a scratch PostgreSQL database."""
    return "sqlite:///app.db" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


def _engine_url(url: str, base: Path) -> str:
    return f"sqlite:///{base / 'app.db'}" if url == "sqlite:///app.db" else url


def state(url: str, base: Path) -> tuple[set[str], list[str], set[str]]:
    """(application tables, alembic_version rows, columns of accounts) as the database has them."""
    engine = create_engine(_engine_url(url, base))
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            versions = (
                [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
                if "alembic_version" in tables else []
            )
            columns = {c["name"] for c in inspect(conn).get_columns("accounts")} if "accounts" in tables else set()
    finally:
        engine.dispose()
    return tables & (APP_TABLES | {"audit"}), versions, columns


def migrate(base: Path, url: str, **options: object) -> Observation:
    return run_step({"migrate": {"url": url, "alembic": "alembic.ini", **options}}, base)


def test_upgrade_to_head_then_downgrade(db: str, tmp_path: Path) -> None:
    base = make_project(tmp_path)
    obs = migrate(base, db)
    assert obs.error is None, obs.error
    assert obs.outputs == {"before": "", "after": REV3, "applied": [REV1, REV2, REV3], "reverted": []}
    assert obs.values["count"] == 3
    assert state(db, base) == (APP_TABLES, [REV3], {"id", "email", "plan"})
    # the step's url is the database migrated, not the ini's developer default
    assert not (base / "developer.db").exists()

    again = migrate(base, db)
    assert again.error is None and again.outputs == {
        "before": REV3, "after": REV3, "applied": [], "reverted": []}

    obs = migrate(base, db, revert_to=REV1)
    assert obs.error is None, obs.error
    assert obs.outputs == {"before": REV3, "after": REV1, "applied": [], "reverted": [REV3, REV2]}
    assert state(db, base) == ({"accounts"}, [REV1], {"id", "email"})

    # "0", as for SQL files, means nothing applied: alembic's base
    obs = migrate(base, db, revert_to="0")
    assert obs.error is None, obs.error
    assert obs.outputs["after"] == "" and obs.outputs["reverted"] == [REV1]
    assert state(db, base) == (set(), [], set())


def test_upgrade_to_a_revision(db: str, tmp_path: Path) -> None:
    base = make_project(tmp_path)
    obs = migrate(base, db, to=REV1)
    assert obs.error is None, obs.error
    assert obs.outputs == {"before": "", "after": REV1, "applied": [REV1], "reverted": []}
    assert state(db, base) == ({"accounts"}, [REV1], {"id", "email"})

    obs = migrate(base, db, to=REV2[:4])  # a unique prefix, as alembic accepts it
    assert obs.error is None, obs.error
    assert obs.outputs == {"before": REV1, "after": REV2, "applied": [REV2], "reverted": []}
    assert state(db, base) == (APP_TABLES, [REV2], {"id", "email"})


def test_dry_run_prints_the_sql_and_changes_nothing(db: str, tmp_path: Path) -> None:
    base = make_project(tmp_path)
    obs = migrate(base, db, dry_run=True)
    assert obs.error is None, obs.error
    sql = obs.evidence["stdout"]
    assert "CREATE TABLE accounts" in sql and "CREATE TABLE invoices" in sql
    assert re.search(r'ALTER TABLE accounts ADD COLUMN "?plan"?', sql)  # SQLite quotes the name
    assert obs.outputs["before"] == "" and obs.outputs["after"] == REV3
    assert state(db, base) == (set(), [], set())

    assert migrate(base, db, to=REV1).error is None
    # offline SQL starts where the database is, not from base
    obs = migrate(base, db, dry_run=True)
    assert obs.error is None, obs.error
    sql = obs.evidence["stdout"]
    assert "CREATE TABLE accounts" not in sql and "CREATE TABLE invoices" in sql
    assert obs.outputs["applied"] == [REV2, REV3]

    obs = migrate(base, db, revert_to="base", dry_run=True)
    assert obs.error is None, obs.error
    assert "DROP TABLE accounts" in obs.evidence["stdout"]
    assert state(db, base) == ({"accounts"}, [REV1], {"id", "email"})


def test_failing_revision_reports_alembic_error_and_where_it_stopped(db: str, tmp_path: Path) -> None:
    base = make_project(tmp_path, failing=True)
    obs = migrate(base, db)
    error = obs.error
    assert error is not None and error.startswith("alembic upgrade head failed (exit 1): ")
    assert "tier" in error  # the database's own complaint about the missing column
    # the revisions before the failing one are committed: the evidence says so, for the rollback
    assert obs.outputs == {}
    assert {k: obs.evidence[k] for k in ("before", "after", "applied")} == {
        "before": "", "after": REV3, "applied": [REV1, REV2, REV3]}
    assert "UPDATE accounts SET tier = plan" in obs.evidence["stderr"]
    assert state(db, base) == (APP_TABLES, [REV3], {"id", "email", "plan"})


def test_unknown_target_and_missing_ini(sqlite_url: str, tmp_path: Path) -> None:
    base = make_project(tmp_path)
    obs = migrate(base, sqlite_url, to="ffffffffffff")
    assert obs.error is not None and "ffffffffffff" in obs.error
    assert obs.evidence["before"] == obs.evidence["after"] == "" and obs.evidence["applied"] == []
    obs = run_step({"migrate": {"url": sqlite_url, "alembic": "db/alembic.ini"}}, base)
    assert obs.error is not None and "db/alembic.ini not found" in obs.error


RUNBOOK = """
    name: alembic-then-fail
    phases:
      - name: schema
        steps:
          - id: schema
            migrate: {{url: "{url}", alembic: alembic.ini}}
          - name: smoke test fails
            run: "{smoke}"
"""


def _reverts(base: Path, run_id: str) -> list[dict[str, object]]:
    _code, shown = run_json("show", run_id, cwd=base)
    return [e for e in shown["events"] if "undo[auto]" in (e["step_key"] or "")]


def test_failed_phase_reverts_alembic_to_base(db: str, tmp_path: Path) -> None:
    base = make_project(tmp_path)
    write_runbook(base, RUNBOOK.format(url=db, smoke="exit 1"))
    code, result = run_json("run", "runbook.yaml", cwd=base)
    assert code == 11 and result["status"] == "rolled_back", result
    # nothing was applied before the step: the automatic revert goes to alembic's base
    assert state(db, base) == (set(), [], set())
    started = [e for e in _reverts(base, result["run_id"]) if e["type"] == "step.started"]
    assert [e["data"]["config"]["revert_to"] for e in started] == ["base"]


def test_partly_failed_alembic_step_is_reverted(db: str, tmp_path: Path) -> None:
    base = make_project(tmp_path, failing=True)
    write_runbook(base, RUNBOOK.format(url=db, smoke="true"))
    code, result = run_json("run", "runbook.yaml", cwd=base)
    assert code == 11 and result["status"] == "rolled_back", result
    assert "alembic upgrade head failed" in result["reason"]
    # three revisions were committed before the fourth failed; the rollback undid them all
    assert state(db, base) == (set(), [], set())
    finished = [e for e in _reverts(base, result["run_id"]) if e["type"] == "step.finished"]
    assert [e["data"]["outputs"]["reverted"] for e in finished] == [[REV3, REV2, REV1]]


def test_sqlite_lock_table_is_released(tmp_path: Path) -> None:
    """The migration lock is held around the Alembic subprocess and released after it."""
    base = make_project(tmp_path)
    assert migrate(base, "sqlite:///app.db").error is None
    with sqlite3.connect(base / "app.db") as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations_lock").fetchone() == (0,)
