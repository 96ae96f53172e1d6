"""The `migrate` kind driving a real Django project (tests/fixtures/django_project: apps shop and blog,
an irreversible app legacy) on a fresh PostgreSQL database per test: through the kind, then inside
`tminus run`, where a failed phase migrates each app back exactly where it was."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import run_json, tminus, write_runbook

from helpers_django import BLOG, SHOP, Db, django, make_project
from helpers_kinds import run_step
from tminus.kinds.base import Observation

pytestmark = pytest.mark.postgres


@pytest.fixture
def db(pg_url: str) -> Db:
    return Db(pg_url)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def migrate(base: Path, db: Db, **options: Any) -> Observation:
    return run_step(django(db.url, **options), base, timeout=120)


def test_apply_everything_then_nothing_more(base: Path, db: Db) -> None:
    obs = migrate(base, db)
    assert obs.error is None, obs.error
    assert obs.outputs["before"] == {"blog": "zero", "shop": "zero"}
    assert obs.outputs["after"] == {"blog": BLOG[-1], "shop": SHOP[-1]}
    assert obs.outputs["applied"] == [f"blog.{n}" for n in BLOG] + [f"shop.{n}" for n in SHOP]
    assert obs.outputs["reverted"] == [] and obs.values["count"] == 7
    assert db.applied("shop") == SHOP and db.applied("blog") == BLOG
    assert db.scalar("SELECT count(*) FROM blog_post") == 2  # the data migration ran
    assert obs.evidence["commands"][0]["command"] == ["manage.py", "migrate", "--noinput"]

    again = migrate(base, db)
    assert again.error is None, again.error
    assert again.outputs["applied"] == [] and again.outputs["before"] == again.outputs["after"]


def test_apply_to_a_target_then_an_app_then_back(base: Path, db: Db) -> None:
    obs = migrate(base, db, targets={"shop": "0002"})  # a unique prefix, as manage.py accepts it
    assert obs.error is None, obs.error
    assert obs.outputs["after"] == {"blog": "zero", "shop": "0002_product_price"}
    assert db.rows() == [("shop", "0001_initial"), ("shop", "0002_product_price")]

    obs = migrate(base, db, apps=["blog"])
    assert obs.error is None, obs.error
    assert obs.outputs["applied"] == [f"blog.{n}" for n in BLOG]
    assert db.applied("shop") == SHOP[:2]

    obs = migrate(base, db, targets={"blog": "0001_initial", "shop": "zero"})
    assert obs.error is None, obs.error
    assert obs.outputs["after"] == {"blog": "0001_initial", "shop": "zero"}
    # blog's rows are the newest: blog is migrated back first
    assert obs.outputs["reverted"] == ["blog.0003_seed_posts", "blog.0002_post_slug",
                                       "shop.0002_product_price", "shop.0001_initial"]
    assert [c["command"][2:4] for c in obs.evidence["commands"]] == [["blog", "0001_initial"], ["shop", "zero"]]
    assert db.rows() == [("blog", "0001_initial")]


def test_dry_run_shows_the_plan_and_changes_nothing(base: Path, db: Db) -> None:
    obs = migrate(base, db, apps=["shop"], dry_run=True, settings="mysite.settings")
    assert obs.error is None, obs.error
    assert obs.evidence["plan"] == [f"shop.{n}" for n in SHOP]
    assert obs.outputs["applied"] == [f"shop.{n}" for n in SHOP]
    assert db.rows() == []


def test_failing_second_of_three_records_the_first(base: Path, db: Db) -> None:
    """blog.0002 fails (its transaction rolls back): 0001 stays applied, and the evidence says so."""
    obs = migrate(base, db, apps=["blog"], env={"DJANGO_FAIL": "blog.0002"})
    assert obs.error is not None and "manage.py migrate blog --noinput failed (exit 1)" in obs.error
    assert "blog.0002 fails, as the test asked" in obs.error
    assert obs.evidence["before"] == {"blog": "zero", "shop": "zero"}
    assert obs.evidence["applied"] == ["blog.0001_initial"]
    assert db.rows() == [("blog", "0001_initial")]
    assert db.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'blog_post'"
                     " AND column_name = 'slug'") == 0


def test_irreversible_migration_is_refused_before_anything_is_applied(base: Path, db: Db) -> None:
    obs = migrate(base, db, env={"DJANGO_EXTRA_APPS": "legacy"})
    assert obs.error is not None
    assert obs.error.startswith("refusing to apply legacy.0002_backfill_notes (Raw Python operation): it cannot be"
                                " unapplied")
    assert "django.allow_irreversible: true" in obs.error
    assert "legacy.0002_backfill_notes IRREVERSIBLE: Raw Python operation" in obs.evidence["plan"]
    assert db.rows() == []


def test_irreversible_revert_fails_up_front_naming_the_migration(base: Path, db: Db) -> None:
    env = {"DJANGO_EXTRA_APPS": "legacy"}
    assert migrate(base, db, env=env, allow_irreversible=True).error is None
    rows = db.rows()
    obs = migrate(base, db, env=env, targets={"legacy": "zero", "blog": "zero"})
    assert obs.error is not None
    assert obs.error.startswith("cannot unapply legacy.0002_backfill_notes (Raw Python operation): Django has no"
                                " reverse")
    assert "Nothing was unapplied" in obs.error
    assert db.rows() == rows


def test_lock_held_by_another_migrator(base: Path, db: Db) -> None:
    """The PostgreSQL advisory lock of the other migrate backends: waited for up to lock_wait."""
    import psycopg

    from tminus.db.migrations.lock import lock_key

    holder = psycopg.connect(db.libpq, autocommit=True)
    try:
        holder.execute(f"SELECT pg_advisory_lock({lock_key('schema_migrations')})")
        obs = migrate(base, db, lock_wait="1s")
        assert obs.error is not None and "another migrator has held the migration lock for more than 1s" in obs.error
        assert db.rows() == []

        release = threading.Timer(1.0, holder.close)  # the other migrator finishes while we wait
        release.start()
        try:
            obs = migrate(base, db, lock_wait="60s")
        finally:
            release.join()
        assert obs.error is None, obs.error
        assert db.applied("shop") == SHOP
    finally:
        holder.close()


def test_wrong_interpreter_and_other_database_are_clear(base: Path, db: Db, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    bare = tmp_path / "bin" / "python3"
    bare.symlink_to("/usr/bin/python3")  # Debian's python: no Django
    obs = run_step(django(db.url, python=str(bare)), base)
    assert obs.error is not None and "cannot import Django: set django.python" in obs.error

    obs = run_step(django(db.url, settings="mysite.nope"), base)
    assert obs.error is not None and "reading the Django migration state failed" in obs.error
    assert "No module named 'mysite.nope'" in obs.error

    step = django(db.url)
    step["migrate"]["django"]["env"]["DATABASE_URL"] = db.url.rsplit("/", 1)[0] + "/postgres"
    obs = run_step(step, base)
    assert obs.error is not None
    assert "Django's settings use database 'postgres', the step's url" in obs.error
    assert db.rows() == []


RUNBOOK = """
    name: django-release
    phases:
      - name: schema
        steps:
          - name: migrate the release
            migrate:
              url: "{{ env.DB_URL }}"
              django:
                manage: app/manage.py
                python: "{{ env.PY }}"
                env: {DATABASE_URL: "{{ env.DB_URL }}"}
                APPS
          - name: smoke test
            run: "SMOKE"
"""


def _run(base: Path, db: Db, smoke: str = "exit 1", apps: str = "",
         env: dict[str, str] | None = None) -> tuple[int, Any]:
    import sys

    write_runbook(base, RUNBOOK.replace("APPS", apps).replace("SMOKE", smoke))
    return run_json("run", "runbook.yaml", "--no-input", cwd=base,
                    env={"DB_URL": db.url, "PY": sys.executable, **(env or {})})


def _undo(base: Path, run_id: str) -> list[dict[str, Any]]:
    _code, shown = run_json("show", run_id, cwd=base)
    return [e for e in shown["events"] if (e["step_key"] or "").endswith(".undo[auto]")]


def test_failed_phase_migrates_each_app_back_exactly(base: Path, db: Db) -> None:
    """shop at 0002 with products, blog at 0001 with a post: the release applies the rest, the smoke
    test fails, the revert returns each app to where it was; schema and rows as before."""
    assert migrate(base, db, targets={"shop": "0002", "blog": "0001"}).error is None
    db.execute("INSERT INTO shop_product (name, price) VALUES ('tea', 0), ('coffee', 0)",
               "INSERT INTO blog_post (title) VALUES ('kept')")
    rows, before = db.rows(), db.dump()

    code, result = _run(base, db)
    assert code == 11 and result["status"] == "rolled_back", result
    assert db.rows() == rows
    assert db.dump() == before
    undo = _undo(base, result["run_id"])
    started = [e["data"]["config"]["django"] for e in undo if e["type"] == "step.started"]
    assert [s["targets"] for s in started] == [{"blog": "0001_initial", "shop": "0002_product_price"}]
    finished = [e["data"] for e in undo if e["type"] == "step.finished"]
    assert finished[0]["status"] == "ok", finished
    # shop's rows were written last: it goes back first
    assert [c["command"][2:4] for c in finished[0]["evidence"]["commands"]] == [
        ["shop", "0002_product_price"], ["blog", "0001_initial"]]
    assert finished[0]["outputs"]["reverted"] == [
        "shop.0004_order", "shop.0003_populate_prices", "blog.0003_seed_posts", "blog.0002_post_slug"]


def test_step_failing_mid_way_is_reverted(base: Path, db: Db) -> None:
    """blog.0001 applied, blog.0002 failed: the rollback unapplies 0001 (blog back to zero)."""
    code, result = _run(base, db, smoke="true", apps="apps: [blog]", env={"DJANGO_FAIL": "blog.0002"})
    assert code == 11 and result["status"] == "rolled_back", result
    assert "blog.0002 fails" in result["reason"]
    assert db.rows() == []
    assert db.scalar("SELECT to_regclass('blog_post')") is None
    finished = [e["data"] for e in _undo(base, result["run_id"]) if e["type"] == "step.finished"]
    assert finished[0]["outputs"]["reverted"] == ["blog.0001_initial"]


def test_irreversible_migration_fails_the_rollback_clearly(base: Path, db: Db) -> None:
    code, result = _run(base, db, apps="allow_irreversible: true", env={"DJANGO_EXTRA_APPS": "legacy"})
    assert code == 12 and result["status"] == "rollback_failed", result
    rows = db.rows()
    assert ("legacy", "0002_backfill_notes") in rows
    finished = [e["data"] for e in _undo(base, result["run_id"]) if e["type"] == "step.finished"]
    assert "cannot unapply legacy.0002_backfill_notes" in finished[0]["message"], finished
    assert db.rows() == rows  # refused before anything was unapplied


def test_validation_refuses_sql_options_with_django(base: Path) -> None:
    write_runbook(base, """
        name: bad
        phases:
          - name: schema
            steps:
              - migrate:
                  url: postgresql://db/app
                  to: "0002"
                  django: {manage: app/manage.py}
    """)
    done = tminus("validate", "runbook.yaml", cwd=base)
    assert done.returncode == 78, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "runbook.yaml:5:9:" in out and "'to' does not apply to 'django'" in out and "django.targets" in out


def test_sqlite_project_under_the_lock_row(tmp_path: Path) -> None:
    """SQLite: the step's url relative to the runbook, Django's settings on the same file; the lock
    row of the other backends is taken and released around the commands."""
    import sqlite3

    base = make_project(tmp_path)
    step = django("sqlite:///app.db")
    step["migrate"]["django"]["env"]["DATABASE_URL"] = f"sqlite:///{base / 'app.db'}"
    obs = run_step(step, base, timeout=120)
    assert obs.error is None, obs.error
    assert obs.outputs["after"] == {"blog": BLOG[-1], "shop": SHOP[-1]}
    step["migrate"]["django"]["targets"] = {"shop": "0002", "blog": "zero"}
    obs = run_step(step, base, timeout=120)
    assert obs.error is None, obs.error
    assert obs.outputs["reverted"][:2] == ["shop.0004_order", "shop.0003_populate_prices"]
    with sqlite3.connect(base / "app.db") as conn:
        assert conn.execute("SELECT app, name FROM django_migrations ORDER BY id").fetchall() == [
            ("shop", "0001_initial"), ("shop", "0002_product_price")]
        assert conn.execute("SELECT count(*) FROM schema_migrations_lock").fetchone() == (0,)


SQUASH = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    replaces = [("blog", "0001_initial"), ("blog", "0002_post_slug")]
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(name="Post", fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("title", models.CharField(max_length=200)),
            ("slug", models.CharField(default="", max_length=200)),
        ]),
    ]
'''


def test_release_bringing_a_squash_is_reverted_to_a_replaced_migration(base: Path, db: Db) -> None:
    """blog at 0001_initial; the release adds 0001_squashed_0002 (replacing 0001 and 0002): the state
    before is read as the graph of the new release counts it (0001_initial, partly squashed), and the
    revert returns blog there."""
    assert migrate(base, db, targets={"blog": "0001_initial"}).error is None
    rows, before = db.rows(), db.dump()
    (base / "app" / "blog" / "migrations" / "0001_squashed_0002_post_slug.py").write_text(SQUASH.lstrip())
    code, result = _run(base, db)
    assert code == 11 and result["status"] == "rolled_back", result
    undo = _undo(base, result["run_id"])
    started = [e["data"]["config"]["django"] for e in undo if e["type"] == "step.started"]
    assert started[0]["targets"] == {"blog": "0001_initial", "shop": "zero"}
    # as `manage.py migrate blog 0001_initial` does, Django keeps the squash's own row (harmless: with
    # 0002 unapplied the graph reads the replaced migrations again); schema and the other rows are back
    squash = ("blog", "0001_squashed_0002_post_slug")
    assert [r for r in db.rows() if r != squash] == rows
    assert [line for line in db.dump() if squash[1] not in line] == before
    finished = [e["data"] for e in undo if e["type"] == "step.finished"]
    assert finished[0]["outputs"]["after"] == {"blog": "0001_initial", "shop": "zero"}
