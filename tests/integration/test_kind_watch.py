"""`watch`: canary analysis between two steps, against a real HTTP backend whose answers a test flips
mid-watch; the real `tminus` command records and rolls back."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import spawn, tminus, wait_for, write_runbook
from tests.servers.backend import Backend

RUNBOOK = """
    name: canary
    phases:
      - name: canary
        steps:
          - run: "echo 10 > weights.txt"
            undo: [{run: "echo 0 > weights.txt"}]
          - name: canary analysis
            watch:
              duration: DURATION
              interval: 100ms
              probes:
                - name: green
                  http: "http://ADDR/"
              rules:
                - name: green errors
                  probe: green
                  when: status >= 500
                  consecutive: 2
          - run: "echo 50 > weights.txt"
"""


@pytest.fixture
def green() -> Iterator[Backend]:
    b = Backend("green").start()
    try:
        yield b
    finally:
        b.stop()


def book(tmp: Path, green: Backend, duration: str) -> None:
    write_runbook(tmp, RUNBOOK.replace("ADDR", green.address).replace("DURATION", duration))


def events(tmp: Path, run_id: str) -> list[dict]:
    shown = tminus("show", run_id, "--json", cwd=tmp)
    assert shown.returncode == 0, shown.stderr
    return list(json.loads(shown.stdout)["events"])


def test_quiet_for_the_whole_duration_passes_and_the_phase_goes_on(tmp_path: Path, green: Backend) -> None:
    book(tmp_path, green, "1500ms")
    done = tminus("run", "runbook.yaml", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "weights.txt").read_text().strip() == "50"
    assert green.served >= 5  # probed every 100ms for 1.5s (fewer under load, never none)
    run_id = json.loads(done.stdout)["run_id"]
    evs = events(tmp_path, run_id)
    samples = [e for e in evs if e["type"] == "watch.sample"]
    assert len(samples) == green.served and all(e["step_key"] == "phases[0].steps[1]" for e in samples)
    assert all(e["data"]["values"]["status"] == 200 for e in samples)
    finished = next(e for e in evs if e["type"] == "step.finished" and e["step_key"] == "phases[0].steps[1]")
    assert finished["data"]["status"] == "ok"
    assert finished["data"]["evidence"]["rules"] == {"green errors": "ok"}
    assert finished["data"]["evidence"]["watched_s"] >= 1.5


def test_a_rule_firing_mid_watch_fails_the_step_and_the_phase_is_undone(tmp_path: Path, green: Backend) -> None:
    book(tmp_path, green, "60s")
    running = spawn("run", "runbook.yaml", "--json", cwd=tmp_path)
    try:
        wait_for(lambda: green.served >= 3, 60)  # the watch is probing a healthy canary
        green.status = 500  # the canary breaks
        stdout, stderr = running.communicate(timeout=60)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate(timeout=30)
    assert running.returncode == 11, stderr
    result = json.loads(stdout)
    assert "rule 'green errors' (" in result["reason"] and "fired after" in result["reason"]
    assert (tmp_path / "weights.txt").read_text().strip() == "0"  # the first step's undo ran; 50 never did
    evs = events(tmp_path, result["run_id"])
    fired = [e for e in evs if e["type"] == "watch.transition" and e["data"]["to"] == "firing"]
    assert len(fired) == 1 and fired[0]["data"]["outcome"] == "failed"
    assert [r["read"] for r in fired[0]["data"]["recent"]][-2:] == ["500", "500"]
    finished = next(e for e in evs if e["type"] == "step.finished" and e["step_key"] == "phases[0].steps[1]")
    assert finished["data"]["status"] == "failed"
    assert finished["data"]["evidence"]["rules"] == {"green errors": "firing"}
    assert finished["data"]["evidence"]["fired"][0]["rule"] == "green errors"
    why = tminus("why", result["run_id"], cwd=tmp_path)
    assert "green errors" in why.stdout, why.stdout
    # the ledger's projection has the samples and transitions of the step
    from tminus.ledger import open_reader
    from tminus.projection import project

    with open_reader(f"sqlite:///{tmp_path / '.tminus' / 'ledger.db'}") as reader:
        samples, moves = project(reader.events(result["run_id"])).watched("phases[0].steps[1]")
    assert samples and samples[-1].values["status"] == 500
    assert [(t.from_, t.to) for t in moves][-1] == ("pending", "firing")


def test_a_probe_that_cannot_see_is_inconclusive_and_fails_closed(tmp_path: Path) -> None:
    with socket.socket() as s:  # a loopback port nothing listens on: every probe is refused
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    text = RUNBOOK.replace("consecutive: 2", "consecutive: 2\n                  on_error: hold\n"
                           "                  max_no_data: 3")
    write_runbook(tmp_path, text.replace("ADDR", dead).replace("DURATION", "60s"))
    done = tminus("run", "runbook.yaml", "--json", cwd=tmp_path)
    assert done.returncode == 11, done.stderr
    result = json.loads(done.stdout)
    assert "'green errors'" in result["reason"] and "is inconclusive" in result["reason"]
    assert "max_no_data 3" in result["reason"]
    assert (tmp_path / "weights.txt").read_text().strip() == "0"


def test_an_interrupt_stops_the_watch_at_once(tmp_path: Path, green: Backend) -> None:
    book(tmp_path, green, "10m")
    running = spawn("run", "runbook.yaml", "--json", cwd=tmp_path)
    try:
        wait_for(lambda: green.served >= 2, 60)
        running.send_signal(signal.SIGINT)
        stdout, stderr = running.communicate(timeout=30)  # not ten minutes
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate(timeout=30)
    assert running.returncode == 130, stderr
    result = json.loads(stdout)
    assert result["status"] == "interrupted"
    assert (tmp_path / "weights.txt").read_text().strip() == "10"  # nothing undone: resumable
    served = green.served
    evs = events(tmp_path, result["run_id"])
    assert any(e["type"] == "watch.sample" for e in evs)
    assert green.served == served  # nothing probes after the run stopped


def test_kill_9_mid_watch_then_resume_watches_again_whole(tmp_path: Path, green: Backend) -> None:
    book(tmp_path, green, "3s")
    running = spawn("run", "runbook.yaml", "--json", cwd=tmp_path)
    try:
        wait_for(lambda: green.served >= 3, 60)
        running.send_signal(signal.SIGKILL)  # tminus dies mid-watch: nothing records the watch's end
        running.communicate(timeout=30)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate(timeout=30)
    history = json.loads(tminus("history", "--json", cwd=tmp_path).stdout)
    run_id = history[0]["id"]
    before = green.served
    resumed = tminus("resume", run_id, "--no-input", "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr  # a watch is a check: run again, not asked about
    assert (tmp_path / "weights.txt").read_text().strip() == "50"
    evs = events(tmp_path, run_id)
    finished = [e for e in evs if e["type"] == "step.finished" and e["step_key"] == "phases[0].steps[1]"]
    assert len(finished) == 1 and finished[0]["data"]["evidence"]["watched_s"] >= 3  # the whole duration again
    assert green.served > before
    assert tminus("ledger", "verify", cwd=tmp_path).returncode == 0
