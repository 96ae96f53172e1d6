"""Every Alembic revert proven: the schema recorded before an upgrade (with the step's
`revert_target` effect) must be back after the automatic downgrade; a leftover fails the revert and
the rollback (exit 12), naming the object. Real Alembic, on SQLite and PostgreSQL."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import run_json, write_runbook
from tests.integration.test_alembic import REV1, REV3, RUNBOOK, make_project, state

from helpers_kinds import execute, make_ctx

REV_IDX = "5e6f70819203"

# a revision whose downgrade forgets its index
FORGETFUL = f"""
    from alembic import op

    revision = "{REV_IDX}"
    down_revision = "{REV3}"


    def upgrade():
        op.create_index("accounts_email_idx", "accounts", ["email"])


    def downgrade():
        pass  # op.drop_index("accounts_email_idx") forgotten
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> str:
    return "sqlite:///app.db" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


def _finished_revert(base: Path, run_id: str) -> dict[str, Any]:
    _code, shown = run_json("show", run_id, cwd=base)
    ends = [e for e in shown["events"] if e["type"] == "step.finished" and "undo[auto]" in (e["step_key"] or "")]
    assert len(ends) == 1, ends
    return dict(ends[0]["data"])


def test_a_correct_downgrade_is_proven(db: str, tmp_path: Path) -> None:
    base = make_project(tmp_path)
    write_runbook(base, RUNBOOK.format(url=db, smoke="exit 1"))
    code, result = run_json("run", "runbook.yaml", cwd=base)
    assert code == 11 and result["status"] == "rolled_back", result
    revert = _finished_revert(base, result["run_id"])
    assert revert["evidence"]["proof"] == "proven", revert["evidence"]
    assert revert["evidence"]["schema_ms"] >= 0 and "leftovers" not in revert["evidence"]


def test_a_forgotten_drop_index_fails_the_revert(db: str, tmp_path: Path) -> None:
    base = make_project(tmp_path)
    (base / "migrations" / "versions" / f"{REV_IDX}_plan_index.py").write_text(textwrap.dedent(FORGETFUL).lstrip())
    # accounts is there before the run: the index left on it is what the revert must not leave
    assert execute(make_ctx({"migrate": {"url": db, "alembic": "alembic.ini", "to": REV1}}, base)).error is None
    write_runbook(base, RUNBOOK.format(url=db, smoke="exit 1"))
    code, result = run_json("run", "runbook.yaml", cwd=base)
    assert code == 12 and result["status"] == "rollback_failed", result
    revert = _finished_revert(base, result["run_id"])
    assert "index accounts_email_idx (not there before)" in revert["message"], revert["message"]
    assert "left the schema different from before the upgrade" in revert["message"]
    leftovers = revert["evidence"]["leftovers"]
    assert [(d["kind"], d["name"], d["change"]) for d in leftovers] == [("index", "accounts_email_idx", "new")]
    assert revert["evidence"]["proof"] == "failed"
    # the downgrade itself ran: Alembic committed it; only the index is left
    assert state(db, base) == ({"accounts"}, [REV1], {"id", "email"})


def test_explicit_revert_to_is_proven_in_the_same_run_else_unproven(tmp_path: Path) -> None:
    base = make_project(tmp_path)
    url = "sqlite:///app.db"
    shared: dict[str, Any] = {}
    assert execute(make_ctx({"migrate": {"url": url, "alembic": "alembic.ini", "to": REV1}}, base)).error is None
    up = execute(make_ctx({"migrate": {"url": url, "alembic": "alembic.ini"}}, base, shared=shared))
    assert up.error is None, up.error
    back = execute(make_ctx({"migrate": {"url": url, "alembic": "alembic.ini", "revert_to": REV1}}, base,
                            shared=shared))
    assert back.error is None, back.error
    assert back.evidence["proof"] == "proven"
    # another process (no baseline recorded there): reverted, but unproven, and says why
    assert execute(make_ctx({"migrate": {"url": url, "alembic": "alembic.ini"}}, base)).error is None
    back = execute(make_ctx({"migrate": {"url": url, "alembic": "alembic.ini", "revert_to": "0"}}, base))
    assert back.error is None, back.error
    assert back.evidence["proof"].startswith("unproven: no schema was recorded when the database was at base")


def test_the_schema_is_recorded_with_the_revert_target_and_carried_to_the_revert(tmp_path: Path) -> None:
    import sqlite3

    from tminus.db.alembic_proof import decode
    from tminus.kinds.base import Execution
    from tminus.kinds.migrate import derive_undo

    base = make_project(tmp_path)
    with sqlite3.connect(base / "app.db") as conn:
        conn.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY)")
    seen: list[dict[str, Any]] = []

    def sink(effect: str, details: dict[str, Any]) -> None:
        if effect == "revert_target":  # recorded before Alembic created anything
            assert state("sqlite:///app.db", base)[0] == {"audit"}
        seen.append({"effect": effect, **details})

    ctx = make_ctx({"migrate": {"url": "sqlite:///app.db", "alembic": "alembic.ini"}}, base)
    ctx.effect_sink = sink
    obs = execute(ctx)
    assert obs.error is None, obs.error
    recorded = seen[0]
    assert recorded["effect"] == "revert_target" and recorded["before"] == ""
    schema = decode(recorded["schema"])
    assert set(schema["@schema"]["table"]) == {"audit"}  # alembic_version and tminus's lock table left out
    undo = derive_undo(ctx.step, Execution(key=ctx.step.key, effects=seen, status="ok", outputs=obs.outputs))
    assert undo is not None and len(undo) == 1
    assert undo[0].migrate is not None and undo[0].migrate.schema_before == recorded["schema"]
    assert "{{" not in recorded["schema"]  # a step config is rendered: the fingerprint must not look like a template
