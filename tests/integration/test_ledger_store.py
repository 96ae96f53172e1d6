"""The ledger on real SQLite files and a real PostgreSQL: runs, events, the hash chain, approvals."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from tests.helpers_db import query

from tminus.errors import LedgerError
from tminus.events import PAYLOAD_VERSION, Event
from tminus.ledger import Ledger, RunRecord, open_ledger, open_reader
from tminus.ledger.schema import SCHEMA_VERSION

pytestmark = pytest.mark.usefixtures("_no_key")


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    opened = open_ledger(url)
    yield opened
    opened.close()


def make_run(ledger: Ledger, run_id: str, **over: object) -> RunRecord:
    body = str(over.pop("runbook_text", "name: deploy\n"))
    fields: dict[str, object] = dict(
        run_id=run_id, runbook_name="deploy", runbook_path="/rb/deploy.yaml",
        content_hash=hashlib.sha256(body.encode()).hexdigest(), runbook_text=body, environment="prod",
        operator="alice", host="h1", pid=4242,
    )
    fields.update(over)
    return ledger.create_run(**fields)  # type: ignore[arg-type]


def fill(ledger: Ledger, run_id: str, n: int = 4) -> None:
    ledger.append(Event("run.started", run_id, {"runbook": "deploy"}))
    for i in range(1, n - 1):
        ledger.append(Event("step.finished", run_id, {"ok": True, "i": i, "out": "héllo"}, step_key=f"p.s{i}"))
    ledger.append(Event("run.finished", run_id, {"status": "completed"}))


def sql(url: str, statement: str, **params: object) -> None:
    """Tamper behind tminus's back, as an attacker with database access would."""
    query(url, statement, **params)


# --- runs and events --------------------------------------------------------------------------------


def test_create_append_and_read_back(ledger: Ledger) -> None:
    run = make_run(ledger, "20261123-090000-aaaa")
    assert (run.status, run.event_count, run.finished_at) == ("running", 0, None)
    first = ledger.append(Event("run.started", run.id, {"when": ("a", 1), "n": 1.5}))
    second = ledger.append(Event("step.started", run.id, {}, step_key="deploy.migrate"))
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.hash
    events = ledger.events(run.id)
    assert [(e.seq, e.type, e.step_key) for e in events] == [
        (1, "run.started", None), (2, "step.started", "deploy.migrate")
    ]
    assert events[0].data == {"when": ["a", 1], "n": 1.5, "v": PAYLOAD_VERSION}  # stored as JSON, versioned
    stored = ledger.get_run(run.id)
    assert stored is not None
    assert (stored.event_count, stored.head_hash) == (2, second.hash)

    ledger.set_status(run.id, "completed", exit_code=0, reason="all good", finished=True)
    done = ledger.get_run(run.id)
    assert done is not None
    assert (done.status, done.exit_code, done.reason) == ("completed", 0, "all good")
    assert done.finished_at is not None
    assert done.to_dict()["runbook_text"] == "name: deploy\n"


def test_get_run_by_prefix(ledger: Ledger) -> None:
    make_run(ledger, "20261123-090000-aaaa")
    make_run(ledger, "20261123-090000-abcd")
    found = ledger.get_run("20261123-090000-ab")
    assert found is not None and found.id == "20261123-090000-abcd"
    assert ledger.get_run("nope") is None
    assert ledger.get_run("2026112_") is None  # LIKE wildcards are taken literally
    with pytest.raises(LedgerError, match=r"ambiguous.*20261123-090000-aaaa.*20261123-090000-abcd"):
        ledger.get_run("20261123-0900")


def test_list_runs_filters_newest_first(ledger: Ledger) -> None:
    make_run(ledger, "r1")
    make_run(ledger, "r2", environment="staging")
    make_run(ledger, "r3", runbook_name="other")
    make_run(ledger, "r4")
    ledger.set_status("r4", "failed", exit_code=3, finished=True)
    assert [r.id for r in ledger.list_runs()] == ["r4", "r3", "r2", "r1"]
    assert [r.id for r in ledger.list_runs(runbook="deploy", environment="prod")] == ["r4", "r1"]
    assert [r.id for r in ledger.list_runs(status="failed")] == ["r4"]
    assert [r.id for r in ledger.list_runs(limit=2)] == ["r4", "r3"]


def test_append_to_unknown_run_and_duplicate_run_are_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="no such run"):
        ledger.append(Event("note", "ghost", {}))
    make_run(ledger, "r1")
    with pytest.raises(LedgerError, match="already exists"):
        make_run(ledger, "r1")


def test_two_writers_on_one_run_keep_one_chain(url: str, ledger: Ledger) -> None:
    """Another process (`tminus unlock`) may append to a run this process writes: the cached head must
    not fork the chain."""
    make_run(ledger, "r1")
    other = open_ledger(url)
    try:
        for i in range(3):
            ledger.append(Event("step.finished", "r1", {"i": i}))
            other.append(Event("note", "r1", {"i": i}))
    finally:
        other.close()
    assert [e.seq for e in ledger.events("r1")] == [1, 2, 3, 4, 5, 6]
    assert ledger.verify() == []


# --- the hash chain ---------------------------------------------------------------------------------


def test_verify_intact_ledger(ledger: Ledger) -> None:
    make_run(ledger, "r1")
    make_run(ledger, "r2")
    fill(ledger, "r1")
    fill(ledger, "r2", n=6)
    assert ledger.verify() == []
    assert ledger.verify("r1") == []


def test_changed_event_data_is_detected(url: str, ledger: Ledger) -> None:
    make_run(ledger, "r1")
    fill(ledger, "r1")
    sql(url, "UPDATE tminus_events SET data = :d WHERE run_id = 'r1' AND seq = 2", d='{"ok":false}')
    assert ledger.verify() == [
        "run r1: event 2 (step.finished) hash mismatch - the event was changed after it was written"
    ]


def test_deleted_last_event_is_detected(url: str, ledger: Ledger) -> None:
    make_run(ledger, "r1")
    fill(ledger, "r1")
    sql(url, "DELETE FROM tminus_events WHERE run_id = 'r1' AND seq = 4")
    problems = ledger.verify("r1")
    assert len(problems) == 1
    assert "event 4 missing at the end" in problems[0] and "deleted" in problems[0]


def test_deleted_middle_event_is_detected(url: str, ledger: Ledger) -> None:
    make_run(ledger, "r1")
    fill(ledger, "r1", n=6)
    sql(url, "DELETE FROM tminus_events WHERE run_id = 'r1' AND seq IN (2, 3)")
    assert ledger.verify() == ["run r1: events 2-3 missing - deleted from the ledger after being written"]


def test_changed_prev_hash_is_detected(url: str, ledger: Ledger) -> None:
    make_run(ledger, "r1")
    fill(ledger, "r1")
    sql(url, "UPDATE tminus_events SET prev_hash = :h WHERE run_id = 'r1' AND seq = 3", h="0" * 64)
    problems = ledger.verify()
    assert any("event 3 (step.finished) does not link to event 2" in p for p in problems), problems


def test_changed_run_details_are_detected(url: str, ledger: Ledger) -> None:
    make_run(ledger, "r1")
    make_run(ledger, "r2")
    fill(ledger, "r1")
    sql(url, "UPDATE tminus_runs SET operator = 'mallory'")
    sql(url, "UPDATE tminus_runs SET runbook_text = 'name: evil' WHERE id = 'r2'")
    problems = ledger.verify()
    assert len(problems) == 2, problems
    assert "event 1 (run.started) does not link to the run's recorded details" in problems[0]
    assert problems[1] == "run r2: the run's head hash does not match its chain - its recorded details were changed"


def test_verify_unknown_run_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="no run ghost"):
        ledger.verify("ghost")


# --- schema and connection --------------------------------------------------------------------------


def test_newer_schema_version_is_refused(url: str) -> None:
    open_ledger(url).close()
    sql(url, "UPDATE tminus_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(LedgerError, match=rf"schema version 99.*versions up to {SCHEMA_VERSION}.*upgrade tminus"):
        open_ledger(url)
    with pytest.raises(LedgerError, match=r"schema version 99.*upgrade tminus"):
        open_reader(url)


def test_reopening_keeps_data(url: str) -> None:
    with open_ledger(url) as first:
        make_run(first, "r1")
        fill(first, "r1")
    with open_ledger(url) as second:
        assert len(second.events("r1")) == 4
        second.append(Event("note", "r1", {"after": "reopen"}))
        assert second.verify() == []


@pytest.mark.postgres
def test_unreachable_database_names_the_url_with_password_masked() -> None:
    with pytest.raises(LedgerError) as caught:
        open_ledger("postgresql://tminus:s3cret@127.0.0.1:1/ledger")
    message = str(caught.value)
    assert "postgresql+psycopg://tminus:***@127.0.0.1:1/ledger" in message
    assert "s3cret" not in message


# --- approvals --------------------------------------------------------------------------------------


def test_approval_recorded_by_another_process(url: str, ledger: Ledger) -> None:
    make_run(ledger, "r1")
    ledger.append(Event("approval.requested", "r1", {}, step_key="deploy.cutover"))
    script = textwrap.dedent("""
        import sys
        from tminus.ledger import open_ledger
        with open_ledger(sys.argv[1]) as other:
            other.record_approval("r1", "deploy.cutover", approved=True, by="bob", host="h2", reason="lgtm")
            other.record_approval("r1", None, approved=False, by="carol", host="h3")
    """)
    done = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    step = ledger.approvals("r1", "deploy.cutover")
    assert [(a.approved, a.by, a.host, a.reason) for a in step] == [(True, "bob", "h2", "lgtm")]
    everything = ledger.approvals("r1")
    assert [(a.step_key, a.approved, a.by) for a in everything] == [
        ("deploy.cutover", True, "bob"), (None, False, "carol")
    ]
    assert ledger.approvals("r1", "other.step") == []


def test_approval_for_unknown_run_is_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="no run ghost"):
        ledger.record_approval("ghost", None, approved=True, by="bob", host="h")
