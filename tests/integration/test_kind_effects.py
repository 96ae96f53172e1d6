"""Kinds record their effect *before* acting: at the moment the record is written, nothing it
names has happened yet (real processes, real SQLite and PostgreSQL, real Alembic)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from tests.integration.test_alembic import REV3, make_project

from helpers_kinds import execute, make_ctx
from tminus.kinds.transport import group_members, process_start_time

MIGRATIONS = Path(__file__).resolve().parents[1] / "fixtures" / "migrations" / "basic"


def _versions(url: str, table: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(table):
                return []
            column = "version_num" if table == "alembic_version" else "version"
            return [r[0] for r in conn.execute(text(f"SELECT {column} FROM {table} ORDER BY 1"))]
    finally:
        engine.dispose()


def test_run_records_its_process_group_before_feeding_it(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def sink(effect: str, details: dict[str, Any]) -> None:
        # the command blocks on stdin, which is written only after this returns
        assert not (tmp_path / "done").exists()
        assert group_members(details["pgid"]) and process_start_time(details["pid"]) == details["started"]
        seen.append({"effect": effect, **details})

    ctx = make_ctx({"run": {"command": "read line; echo $line > done", "stdin": "go\n"}}, tmp_path)
    ctx.effect_sink = sink
    obs = execute(ctx)
    assert obs.error is None and (tmp_path / "done").read_text() == "go\n"
    assert len(seen) == 1 and seen[0]["effect"] == "process" and seen[0]["pgid"] == obs.evidence["pid"]
    assert seen[0]["command"].startswith("read line")


def test_run_that_cannot_record_does_not_run(tmp_path: Path) -> None:
    def broken(effect: str, details: dict[str, Any]) -> None:
        raise RuntimeError("the ledger is gone")

    ctx = make_ctx({"run": "sleep 0.5; touch ran"}, tmp_path)
    ctx.effect_sink = broken
    with pytest.raises(RuntimeError):
        execute(ctx)
    assert not (tmp_path / "ran").exists()


def test_migrate_records_the_revert_target_before_the_first_migration(tmp_path: Path, url: str) -> None:
    shutil.copytree(MIGRATIONS, tmp_path / "migrations")
    assert execute(make_ctx({"migrate": {"url": url, "dir": "migrations", "to": "0001"}}, tmp_path)).error is None
    seen: list[dict[str, Any]] = []

    def sink(effect: str, details: dict[str, Any]) -> None:
        assert _versions(url.replace("postgresql://", "postgresql+psycopg://"), "schema_migrations") == ["0001"]
        seen.append({"effect": effect, **details})

    ctx = make_ctx({"migrate": {"url": url, "dir": "migrations"}}, tmp_path)
    ctx.effect_sink = sink
    obs = execute(ctx)
    assert obs.error is None, obs.error
    assert seen == [{"effect": "revert_target", "before": "0001", "versions": ["0002", "0003"],
                     "url": seen[0]["url"]}]
    # nothing to apply: nothing to record
    seen.clear()
    assert execute(ctx).error is None and seen == []


def test_alembic_records_the_revert_target_before_upgrading(tmp_path: Path) -> None:
    base = make_project(tmp_path)
    seen: list[dict[str, Any]] = []

    def sink(effect: str, details: dict[str, Any]) -> None:
        if effect == "revert_target":
            assert _versions(f"sqlite:///{base / 'app.db'}", "alembic_version") == []
        seen.append({"effect": effect, **details})

    ctx = make_ctx({"migrate": {"url": "sqlite:///app.db", "alembic": "alembic.ini"}}, base)
    ctx.effect_sink = sink
    obs = execute(ctx)
    assert obs.error is None, obs.error
    assert obs.outputs["after"] == REV3
    assert [(s["effect"], s.get("before")) for s in seen] == [("revert_target", ""), ("process", None)]
    # the driver's process group, for resume to end if tminus is killed while it runs
    assert seen[1]["pgid"] > 0 and seen[1]["command"] == "alembic upgrade head"


def test_a_stopped_run_ends_the_alembic_process_it_started(tmp_path: Path) -> None:
    """Alembic runs in its own process group (so a kill -9 of tminus leaves it for resume to end):
    a stop of the run (Ctrl-C no longer reaches it through the terminal) must end it instead."""
    import threading
    import time

    from tests.integration.test_alembic import REV2

    base = make_project(tmp_path)
    slow = next((base / "migrations" / "versions").glob(f"{REV3}_*.py"))
    slow.write_text(slow.read_text().replace("def upgrade():\n", "def upgrade():\n    import time\n"
                                             "    time.sleep(30)\n"))
    seen: list[dict[str, Any]] = []
    ctx = make_ctx({"migrate": {"url": "sqlite:///app.db", "alembic": "alembic.ini"}}, base)
    ctx.effect_sink = lambda effect, details: seen.append({"effect": effect, **details})
    url = f"sqlite:///{base / 'app.db'}"

    def stop_when_rev2_is_in() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _versions(url, "alembic_version") != [REV2]:
            time.sleep(0.05)
        ctx.cancel.set()

    stopper = threading.Thread(target=stop_when_rev2_is_in)
    stopper.start()
    started = time.monotonic()
    obs = execute(ctx)
    stopper.join()
    assert time.monotonic() - started < 20
    assert obs.error is not None and "stopped with the run" in obs.error, obs.error
    (process,) = [s for s in seen if s["effect"] == "process"]
    assert not group_members(process["pgid"])
    assert _versions(url, "alembic_version") == [REV2]
