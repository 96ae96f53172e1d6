"""A rehearsal record on PostgreSQL reads back as on SQLite: the JSON types survive the JSONB round
trip (floats, None, nested lists), the listing filters by kind, and `show` gives the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers import tminus
from tests.rehearsal_records import fabricate, good_cycle

from tminus.ledger import open_ledger
from tminus.projection import project
from tminus.reports.rehearsal import render, to_json

pytestmark = pytest.mark.postgres


def test_a_rehearsal_record_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    bad = good_cycle(2, "migrate", ok=False, rto_s=None, verify_s=None, run_id="PG-C2",
                     fingerprints={"equal": False, "differences": ["table orders: rows 3 -> 4"]},
                     kill_switch={"run_id": "K", "status": "completed", "actual_s": 0.25, "target_s": 30.0,
                                  "within": True})
    with open_ledger(pg_url) as ledger:
        fabricate(ledger, tmp_path, "PG-R", [good_cycle(1, "expand", run_id="PG-C1", rto_s=1.125), bad],
                  ok=False, exit_code=12, reason="cycle 2")
        record = ledger.get_run("PG-R")
        view = project(ledger.events("PG-R")).rehearsal
        data = to_json(record, view)
        lines = render(view, record)
    assert [c["rto_s"] for c in data["cycles"]] == [1.125, None]
    assert data["cycles"][1]["kill_switch"]["actual_s"] == 0.25
    assert "      kill switch 250ms against target 30.0s: within target (run K, completed)" in lines
    assert "        table orders: rows 3 -> 4" in lines

    listed = tminus("rehearsals", "shop", "--json", "--ledger", pg_url, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)  # the cycles' own runs (kind run) are not rehearsals
    assert [(r["rehearsal_id"], r["verdict"], r["cycles"], r["max_rto_s"]) for r in rows] == [
        ("PG-R", "failed", {"ok": 1, "total": 2}, 1.125)]
    from click.testing import CliRunner

    from tminus.cli.app import cli

    shown = CliRunner().invoke(cli, ["show", "PG-R", "--json", "--ledger", pg_url])  # in this process
    assert json.loads(shown.stdout) == json.loads(json.dumps(data))
