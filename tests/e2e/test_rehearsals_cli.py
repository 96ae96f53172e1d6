"""`tminus rehearsals`, `tminus show REHEARSAL_ID` and the refusals around a rehearsal record, through the
real command, over records written by the real writer (tests/rehearsal_records.py). A few calls spawn
`tminus`; the others invoke the same command in this process (`local`), to spare a second of start-up each."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from tests.helpers import tminus
from tests.rehearsal_records import MASKED_URL, SECRET, fabricate, good_cycle

from tminus.ledger import open_ledger


def local(*args: str) -> Result:
    """The command in this process, stdout and stderr apart."""
    from tminus.cli.app import cli

    return CliRunner().invoke(cli, list(args), env={"TMINUS_OPERATOR": "tester"})


def ledger_url(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'ledger.db'}"


def fill(tmp: Path) -> None:
    """Three records, oldest first: shop/staging passed, shop/qa failed, shop/staging unfinished."""
    leaky = f"postgresql://app:{SECRET}@db.internal/shop"
    bad = good_cycle(2, "migrate", ok=False, run_id="CYC-2", rto_s=400.0, budget_s=120.0, within_budget=False,
                     problems=[f"state not restored on {leaky}"],
                     fingerprints={"equal": False, "differences": ["table orders: column [b]nickname[/b] added",
                                                                   "table orders: checksum " + "f" * 190]})
    with open_ledger(ledger_url(tmp)) as ledger:
        fabricate(ledger, tmp, "REH-A", [good_cycle(1, "expand", run_id="CYC-1")], ok=True)
        fabricate(ledger, tmp, "REH-B", [good_cycle(1, "expand", run_id="CYC-3"), bad], ok=False, exit_code=12,
                  reason="cycle 2: the state was not restored", environment="qa")
        fabricate(ledger, tmp, "REH-C", [], ok=None)


def test_rehearsals_lists_newest_first_and_filters(tmp_path: Path) -> None:
    fill(tmp_path)
    url = ledger_url(tmp_path)
    text = tminus("rehearsals", "--ledger", url, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    rows = [line for line in text.stdout.splitlines() if "REH-" in line]
    assert [r.split()[1] for r in rows] == ["REH-C", "REH-B", "REH-A"]
    cells = [c.strip() for c in rows[1].strip("│ ").split("│")]
    assert cells[0] == "REH-B" and cells[2:7] == ["shop", "qa", "failed", "1/2", "6m40s"]
    assert len(cells[7]) == 12 and cells[1].startswith("20")
    assert [c.strip() for c in rows[0].strip("│ ").split("│")][4:7] == ["unfinished", "0/0", "-"]

    # by the runbook's file (its name is read), one environment, a limit; as JSON
    code = local("rehearsals", str(tmp_path / "runbook.yaml"), "-e", "staging", "-n", "1", "--json", "--ledger", url)
    assert code.exit_code == 0, code.output
    listed = json.loads(code.stdout)
    assert [r["rehearsal_id"] for r in listed] == ["REH-C"]
    assert set(listed[0]) == {"rehearsal_id", "started_at", "finished_at", "runbook", "environment", "operator",
                              "status", "verdict", "cycles", "max_rto_s", "procedure_hash", "procedure_hashes"}
    other = local("rehearsals", "no-such-runbook", "--json", "--ledger", url)
    assert other.exit_code == 0 and json.loads(other.stdout) == []
    bad = local("rehearsals", "-n", "0", "--ledger", url)
    assert bad.exit_code == 2 and "at least 1" in bad.stderr
    empty = local("rehearsals", "--ledger", ledger_url(tmp_path / "nowhere"))
    assert empty.exit_code == 0 and "No rehearsals recorded" in empty.stdout
    assert not (tmp_path / "nowhere").exists()  # looking creates no ledger


def test_show_a_rehearsal_and_the_refusals(tmp_path: Path) -> None:
    fill(tmp_path)
    url = ledger_url(tmp_path)
    shown = tminus("show", "REH-B", "--ledger", url, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.startswith("Rehearsal REH-B: shop in qa · FAILED")
    assert "run CYC-3" in out and "run CYC-2" in out  # each cycle names its run
    assert "RTO 6m40s against budget 2m00s: OVER BUDGET by 4m40s" in out
    assert "        table orders: column [b]nickname[/b] added\n" in out  # not read as markup
    assert f"        table orders: checksum {'f' * 190}\n" in out  # a long line is not wrapped
    assert f"fingerprinted: shop db: {MASKED_URL} (orders) [migrate]" in out
    assert SECRET not in out and "T+0:00" not in out  # the report, not the run's event lines
    as_json = local("show", "REH-B", "--json", "--ledger", url)
    data = json.loads(as_json.stdout)
    assert data["rehearsal_id"] == "REH-B" and data["verdict"] == "failed" and data["exit_code"] == 12
    assert [c["run_id"] for c in data["cycles"]] == ["CYC-3", "CYC-2"] and SECRET not in as_json.stdout
    cycle = local("show", "CYC-2", "--ledger", url)  # a cycle's run is an ordinary run
    assert cycle.exit_code == 0 and cycle.stdout.startswith("Run CYC-2: shop in qa · run")
    assert "· rehearsal REH-B cycle 2: fault fail after 'migrate'" in cycle.stdout

    refused = tminus("resume", "REH-B", "--ledger", url, cwd=tmp_path)
    assert refused.returncode == 15, refused.stderr
    assert "is a rehearsal record, not a run" in refused.stderr and "tminus show" in refused.stderr
    for args in (["rollback", "REH-B", "--reason", "try"], ["resume", "REH-C"]):
        again = local(*args, "--ledger", url)
        assert again.exit_code == 15 and "is a rehearsal record, not a run" in again.stderr, (args, again.output)
    with open_ledger(url) as ledger:  # nothing was written
        assert [len(ledger.events(r)) for r in ("REH-B", "REH-C")] == [5, 2]
        assert ledger.get_run("REH-C").status == "running"
    history = json.loads(local("history", "--json", "--ledger", url).stdout)
    assert {h["id"]: h["kind"] for h in history if h["id"].startswith("REH")} == {
        "REH-A": "rehearsal", "REH-B": "rehearsal", "REH-C": "rehearsal"}
