"""The ledger-wide chain: deleting a run's tail, or a whole run, is detected even when the attacker
also fixes the run row (event_count, head_hash) - the tail truncation that erased a rollback.

The attacker here has write access to the database and, for the keyed cases, not the key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import tminus, write_runbook
from tests.helpers_db import query

from tminus.events import Event
from tminus.ledger import Ledger, open_ledger, open_reader


@pytest.fixture(params=["keyed", "unkeyed"])
def ledger(url: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    if request.param == "keyed":
        monkeypatch.setenv("TMINUS_LEDGER_KEY", "s3cret-key")
    opened = open_ledger(url)
    yield opened
    opened.close()


def make_run(ledger: Ledger, run_id: str) -> None:
    body = "name: deploy\n"
    ledger.create_run(run_id=run_id, runbook_name="deploy", runbook_path="/rb/deploy.yaml",
                      content_hash=hashlib.sha256(body.encode()).hexdigest(), runbook_text=body,
                      environment="prod", operator="alice", host="h1", pid=4242)


def append(ledger: Ledger, run_id: str, *types: str) -> None:
    for type_ in types:
        ledger.append(Event(type_, run_id, {"what": type_}))


ROLLED_BACK = ("run.started", "step.finished", "rollback.started", "rollback.finished", "run.finished")


def sql(url: str, statement: str, **params: object) -> list[tuple[object, ...]]:
    return query(url, statement, **params)


def truncate(url: str, run_id: str, keep: int) -> None:
    """Delete a run's events after `keep` and make the run row agree: its chain alone then looks whole."""
    sql(url, "DELETE FROM tminus_events WHERE run_id = :r AND seq > :k", r=run_id, k=keep)
    [(head,)] = sql(url, "SELECT hash FROM tminus_events WHERE run_id = :r AND seq = :k", r=run_id, k=keep)
    sql(url, "UPDATE tminus_runs SET event_count = :k, head_hash = :h, status = 'failed' WHERE id = :r",
        k=keep, h=head, r=run_id)


def test_intact_ledger_verifies(ledger: Ledger) -> None:
    make_run(ledger, "r1")
    append(ledger, "r1", *ROLLED_BACK)
    make_run(ledger, "r2")
    append(ledger, "r2", "run.started")
    assert ledger.verify() == [] and ledger.verify("r1") == []


def test_deleted_tail_of_a_finished_run_is_detected(url: str, ledger: Ledger) -> None:
    make_run(ledger, "r1")
    append(ledger, "r1", *ROLLED_BACK)
    make_run(ledger, "r2")
    append(ledger, "r2", "run.started", "run.finished")
    truncate(url, "r1", keep=2)  # the rollback is gone
    problems = ledger.verify()
    assert any("ledger-wide" in p and "missing" in p for p in problems), problems
    assert ledger.verify("r1") != []


def test_deleted_tail_of_a_running_run_is_detected_once_anything_follows(url: str, ledger: Ledger) -> None:
    make_run(ledger, "r1")
    append(ledger, "r1", "run.started", "step.started", "step.finished")
    make_run(ledger, "r2")
    append(ledger, "r2", "run.started")
    truncate(url, "r1", keep=1)
    assert any("ledger-wide" in p for p in ledger.verify()), ledger.verify()


def test_deleted_whole_run_is_detected(url: str, ledger: Ledger) -> None:
    make_run(ledger, "r1")
    append(ledger, "r1", *ROLLED_BACK)
    make_run(ledger, "r2")
    append(ledger, "r2", "run.started")
    sql(url, "DELETE FROM tminus_events WHERE run_id = 'r1'")
    sql(url, "DELETE FROM tminus_runs WHERE id = 'r1'")
    problems = ledger.verify()
    assert any("ledger-wide" in p and "missing" in p for p in problems), problems


def test_the_ledgers_own_tail_is_detected_against_a_recorded_head(url: str, ledger: Ledger) -> None:
    """Deleting the newest events of the whole ledger (and resetting every head) leaves a ledger that
    is consistent in itself: only a head recorded elsewhere tells. verify checks one when given it."""
    make_run(ledger, "r1")
    append(ledger, "r1", *ROLLED_BACK)
    head = ledger.ledger_head()
    assert head.count == len(ROLLED_BACK)
    assert ledger.verify(head=head) == []
    sql(url, "DELETE FROM tminus_events WHERE run_id = 'r1' AND seq > 2")
    truncate(url, "r1", keep=2)
    assert ledger.verify() == []  # undetectable from inside the ledger
    problems = ledger.verify(head=head)
    assert problems and "recorded head" in problems[0], problems


def test_forged_links_are_detected_with_a_key(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a key the attacker cannot relink the rest of the ledger over the gap: every link is an HMAC.
    (Without a key anyone can recompute plain SHA-256 links: verify then proves integrity against
    accidents and naive edits only - see docs/concepts.md.)"""
    monkeypatch.setenv("TMINUS_LEDGER_KEY", "s3cret-key")
    with open_ledger(url) as ledger:
        make_run(ledger, "r1")
        append(ledger, "r1", *ROLLED_BACK)
        make_run(ledger, "r2")
        append(ledger, "r2", "run.started")
    truncate(url, "r1", keep=2)
    # Renumber r2's link to close the gap, with an unkeyed SHA-256 the attacker can compute.
    [(prev,)] = sql(url, "SELECT lhash FROM tminus_events WHERE run_id = 'r1' AND seq = 2")
    [(ehash,)] = sql(url, "SELECT hash FROM tminus_events WHERE run_id = 'r2' AND seq = 1")
    forged = hashlib.sha256(f'{prev}[3,"r2",1,"{ehash}"]'.encode()).hexdigest()
    sql(url, "UPDATE tminus_events SET lseq = 3, lhash = :f WHERE run_id = 'r2'", f=forged)
    with open_reader(url) as reader:
        problems = reader.verify()
    assert any("ledger-wide" in p for p in problems), problems


# --- the command, on a real run that rolled back ----------------------------------------------------

ROLLS_BACK = """
    name: anchored
    phases:
      - name: p
        steps:
          - run: "echo changed"
            undo:
              - run: "echo undone"
          - run: "exit 3"
"""


def test_ledger_verify_detects_an_erased_rollback_and_checks_a_recorded_head(tmp_path: Path) -> None:
    env = {"TMINUS_LEDGER_KEY": "s3cret-key", "TMINUS_LEDGER": f"sqlite:///{tmp_path / 'ledger.db'}"}
    write_runbook(tmp_path, ROLLS_BACK)
    first = tminus("run", "runbook.yaml", "--json", cwd=tmp_path, env=env)
    assert json.loads(first.stdout)["status"] == "rolled_back", first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    intact = tminus("ledger", "verify", cwd=tmp_path, env=env)
    assert intact.returncode == 0 and "intact" in intact.stdout, intact.stderr
    head = intact.stdout.split("head ", 1)[1].split()[0]
    assert tminus("ledger", "verify", "--head", head, cwd=tmp_path, env=env).returncode == 0
    assert tminus("run", "runbook.yaml", cwd=tmp_path, env=env).returncode != 0  # a later run

    url = env["TMINUS_LEDGER"]
    [(started,)] = sql(url, "SELECT min(seq) FROM tminus_events WHERE run_id = :r AND type = 'rollback.started'",
                       r=run_id)
    truncate(url, run_id, keep=int(str(started)) - 1)
    erased = tminus("ledger", "verify", cwd=tmp_path, env=env)
    assert erased.returncode == 1 and "TAMPERED: ledger-wide chain" in erased.stderr, erased.stderr
    assert tminus("ledger", "verify", "--head", head, cwd=tmp_path, env=env).returncode == 1
    bad = tminus("ledger", "verify", "--head", "nonsense", cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "COUNT:HASH" in bad.stderr, bad.stderr


def test_concurrent_writers_to_different_runs_keep_one_ledger_wide_chain(url: str) -> None:
    """Two processes' ledgers (two connections, two caches) appending at once: every append gets its
    own link, none is lost, and the chain verifies."""
    import threading

    ledgers = [open_ledger(url), open_ledger(url)]
    try:
        for n, ledger in enumerate(ledgers):
            make_run(ledger, f"r{n}")

        def write(n: int) -> None:
            for i in range(40):
                ledgers[n].append(Event("step.finished", f"r{n}", {"i": i}))

        threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert ledgers[0].ledger_head().count == 80
        assert ledgers[0].verify() == []
        assert sorted(int(str(r[0])) for r in sql(url, "SELECT lseq FROM tminus_events")) == list(range(1, 81))
    finally:
        for ledger in ledgers:
            ledger.close()


def test_unlinking_the_events_after_a_gap_is_detected_with_a_key(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Passing the events after the gap off as written before the ledger-wide chain existed (no link)
    would end the chain before the gap: each event's hash covers its place in the chain."""
    monkeypatch.setenv("TMINUS_LEDGER_KEY", "s3cret-key")
    with open_ledger(url) as ledger:
        make_run(ledger, "r1")
        append(ledger, "r1", *ROLLED_BACK)
        make_run(ledger, "r2")
        append(ledger, "r2", "run.started", "run.finished")
    truncate(url, "r1", keep=2)
    sql(url, "UPDATE tminus_events SET lseq = NULL, lhash = NULL WHERE run_id = 'r2'")
    with open_reader(url) as reader:
        problems = reader.verify()
    assert any("run r2: event 1 (run.started) hash mismatch" in p for p in problems), problems
