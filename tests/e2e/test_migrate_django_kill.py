"""kill -9 of tminus while `manage.py migrate` runs (the Django project of tests/fixtures, held inside
shop.0003 by a file it waits for), then `tminus rollback` or `tminus resume --retry`: the state of
every app was recorded before the first migration ran, the killed manage.py is ended before anything
else acts, and the revert returns each app exactly where it was (pg_dump of schema and rows)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import run_json, spawn, tminus, wait_for, write_runbook

from helpers_django import BLOG, SHOP, Db, django, make_project
from helpers_kinds import run_step

pytestmark = pytest.mark.postgres

RUNBOOK = """
    name: django-kill
    phases:
      - name: schema
        steps:
          - name: migrate the release
            migrate:
              url: "{{ env.DB_URL }}"
              lock_wait: 30s
              django:
                manage: app/manage.py
                python: "{{ env.PY }}"
                env: {DATABASE_URL: "{{ env.DB_URL }}"}
"""
KEY = "phases[0].steps[0]"


@pytest.fixture
def setup(tmp_path: Path, pg_url: str) -> tuple[Path, Db, dict[str, str], list[str], list[tuple[str, str]]]:
    """blog at 0001 with a post, shop at 0001; the runbook; the state to come back to."""
    db = Db(pg_url)
    make_project(tmp_path)
    assert run_step(django(db.url, targets={"blog": "0001", "shop": "0001"}), tmp_path, timeout=120).error is None
    db.execute("INSERT INTO blog_post (title) VALUES ('kept')", "INSERT INTO shop_product (name) VALUES ('tea')")
    write_runbook(tmp_path, RUNBOOK)
    env = {"DB_URL": db.url, "PY": sys.executable, "DJANGO_HOLD_DIR": str(tmp_path)}
    return tmp_path, db, env, db.dump(), db.rows()


def _kill_inside_shop_0003(base: Path, env: dict[str, str]) -> str:
    proc = spawn("run", "runbook.yaml", "--no-input", cwd=base, env={**env, "DJANGO_HOLD": "shop.0003"})
    try:
        wait_for(lambda: (base / "holding-shop.0003").exists() or proc.poll() is not None, timeout=120)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except BaseException:
        (base / "release").touch()
        raise
    _code, runs = run_json("history", cwd=base)
    assert runs[0]["status"] == "running"
    return str(runs[0]["id"])


def _events(base: Path, run_id: str) -> list[dict[str, Any]]:
    code, shown = run_json("show", run_id, cwd=base)
    assert code == 0, shown
    return list(shown["events"])


def _finished(events: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["type"] == "step.finished" and e["step_key"] == key]


def _recorded_state(events: list[dict[str, Any]]) -> list[Any]:
    return [e["data"]["django"] for e in events if e["type"] == "step.effect" and e["step_key"] == KEY
            and e["data"]["effect"] == "revert_target"]


def test_killed_mid_migrate_then_rolled_back(setup: Any) -> None:
    base, db, env, before, rows = setup
    run_id = _kill_inside_shop_0003(base, env)
    # blog 0002, 0003 and shop 0002 were committed; shop.0003 is held open by the living manage.py
    assert db.applied("blog") == BLOG and db.applied("shop") == SHOP[:2]
    assert _recorded_state(_events(base, run_id)) == [{"blog": "0001_initial", "shop": "0001_initial"}]

    code, result = run_json("rollback", run_id, "--reason", "killed mid-migrate", "--no-input", cwd=base, env=env)
    (base / "release").touch()  # had the killed run's manage.py lived on, it would now commit shop.0003
    assert code == 11 and result["status"] == "rolled_back", result
    events = _events(base, run_id)
    revert = _finished(events, f"{KEY}.undo[auto]")
    assert [r["status"] for r in revert] == ["ok"], revert
    assert revert[0]["outputs"]["reverted"] == ["shop.0002_product_price", "blog.0003_seed_posts",
                                                "blog.0002_post_slug"]
    assert db.rows() == rows
    assert db.dump() == before
    assert tminus("ledger", "verify", cwd=base).returncode == 0
    # the manage.py that was killed first is gone: nothing more gets applied
    wait_for(lambda: db.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                               " AND pid <> pg_backend_pid()") == 0, timeout=30)
    assert db.rows() == rows


def test_killed_mid_migrate_then_resumed_and_rolled_back_later(setup: Any) -> None:
    """resume --retry runs the step again (the killed manage.py ended first) to the end; a later
    `tminus rollback` of the completed run goes back to the state before the *first* attempt."""
    base, db, env, before, rows = setup
    run_id = _kill_inside_shop_0003(base, env)
    # the orphaned manage.py still holds inside shop.0003; the retry (not held) must end it first
    code, result = run_json("resume", run_id, "--retry", "--no-input", cwd=base, env=env)
    (base / "release").touch()
    assert code == 0 and result["status"] == "completed", result
    assert db.applied("blog") == BLOG and db.applied("shop") == SHOP
    assert db.scalar("SELECT price FROM shop_product WHERE name = 'tea'") == 300  # shop.0003 ran once, fully
    events = _events(base, run_id)
    assert _recorded_state(events) == [{"blog": "0001_initial", "shop": "0001_initial"},
                                       {"blog": "0003_seed_posts", "shop": "0002_product_price"}]

    code, result = run_json("rollback", run_id, "--reason", "orders failing", "--no-input", cwd=base, env=env)
    assert code == 11 and result["status"] == "rolled_back", result
    assert db.rows() == rows
    assert db.dump() == before
