"""The monitoring window end to end: a real `tminus run` probes a stand-in service on loopback whose
answers the test scripts, and the ledger shows each rule firing at exactly the probe its semantics
say. Exact probe positions come from scripted answers, so the assertions do not depend on timing; a
window that must see a whole script (several probes at 100ms) lasts seconds, not the script's 0.6 s,
so a busy machine (tests run in parallel) that delays probes cannot end it before the script is played."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers import run_json, spawn, tminus, wait_for, wait_for_approval_request, write_runbook
from tests.standin import standin

from tminus.ledger import open_ledger

HEAD = """
name: watched
vars: {{base: "{base}"}}
phases:
  - name: deploy
    steps:
      - name: switch to v2
        run: "echo v2 > version"
        undo:
          - name: switch back to v1
            run: "echo v1 > version"
"""


def runbook(tmp: Path, base: str, monitor: str, extra: str = "") -> None:
    write_runbook(tmp, HEAD.format(base=base) + extra + monitor)


def events(tmp: Path, run_id: str, type_: str | None = None) -> list[Any]:
    with open_ledger(f"sqlite:///{tmp / '.tminus' / 'ledger.db'}") as ledger:
        found = ledger.events(run_id)
    return [e for e in found if type_ is None or e.type == type_]


def transitions(tmp: Path, run_id: str) -> list[tuple[str, str, str, int]]:
    """(rule, from, to, index of the sample that caused it among the window samples)."""
    samples = [e.data["at"] for e in events(tmp, run_id, "monitor.sample") if e.data["stage"] == "window"]
    return [
        (e.data["rule"], e.data["from"], e.data["to"], samples.index(e.data["sample"]["at"]))
        for e in events(tmp, run_id, "monitor.transition")
    ]


def script(base: str, answers: list[Any]) -> None:
    httpx.post(f"{base}/script", json=answers, timeout=5).raise_for_status()


SATURATION = """
monitor:
  duration: 20s
  interval: 100ms
  probes:
    - name: health
      http: {{url: "{{{{ vars.base }}}}/health"}}
  rules:
    - name: pool saturated
      when: 'jsonpath "$.saturation" >= 0.90'
      consecutive: 3
      {policy}
"""


def sat(*values: float | str) -> list[Any]:
    return [v if isinstance(v, str) else {"saturation": v} for v in values]


def test_consecutive_fires_on_the_third_breach_and_the_undo_path_runs(tmp_path: Path) -> None:
    with standin() as (_svc, base):
        runbook(tmp_path, base, SATURATION.format(policy=""))
        script(base, sat(0.5, 0.5, 0.95, 0.5, 0.93, 0.95, 0.97, 0.97))
        code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result
    assert (tmp_path / "version").read_text().strip() == "v1"  # the phase's undo ran
    assert transitions(tmp_path, result["run_id"]) == [
        ("pool saturated", "ok", "pending", 2),
        ("pool saturated", "pending", "ok", 3),  # one good probe resets the count
        ("pool saturated", "ok", "pending", 4),
        ("pool saturated", "pending", "firing", 6),  # the third breach in a row, not before
    ]
    window = [e for e in events(tmp_path, result["run_id"], "monitor.sample")]
    assert len(window) == 7  # the rollback stopped the probing at once
    fired = events(tmp_path, result["run_id"], "monitor.transition")[-1]
    assert [r["read"] for r in fired.data["recent"]] == ["0.93", "0.95", "0.97"]  # the three that fired it
    (started,) = events(tmp_path, result["run_id"], "rollback.started")
    assert "pool saturated" in started.data["reason"]
    assert "probe 3/3: 0.97 >= 0.90" in started.data["reason"]
    undone = [e.data["name"] for e in events(tmp_path, result["run_id"], "step.finished")
              if e.data["section"].startswith("undo:")]
    assert undone == ["switch back to v1"]


def test_a_window_without_breaches_completes(tmp_path: Path) -> None:
    monitor = SATURATION.replace("duration: 20s", "duration: 2s").format(policy="")
    with standin() as (svc, base):
        runbook(tmp_path, base, monitor)
        code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
        probes = svc.served
    assert code == 0, result
    assert "monitor window passed" in result["reason"]
    (finished,) = events(tmp_path, result["run_id"], "monitor.finished")
    assert finished.data["ok"] and finished.data["samples"] == probes >= 3  # 20 on a quiet machine
    assert (tmp_path / "version").read_text().strip() == "v2"


def test_for_fires_once_the_breach_has_held_and_a_good_probe_resets(tmp_path: Path) -> None:
    monitor = SATURATION.replace("consecutive: 3", "for: 500ms").format(policy="")
    with standin() as (_svc, base):
        runbook(tmp_path, base, monitor)
        script(base, sat(0.95, 0.95, 0.5, 0.95))  # the last answer repeats
        code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result
    moves = transitions(tmp_path, result["run_id"])
    assert [m[:3] for m in moves] == [
        ("pool saturated", "ok", "pending"),
        ("pool saturated", "pending", "ok"),
        ("pool saturated", "ok", "pending"),
        ("pool saturated", "pending", "firing"),
    ]
    at = [e.data["at"] for e in events(tmp_path, result["run_id"], "monitor.sample")]
    pending_since, fired = at[moves[2][3]], moves[3][3]
    assert at[fired] - pending_since >= 0.5  # held long enough ...
    assert at[fired - 1] - pending_since < 0.5  # ... and not one probe earlier


def test_no_data_held_never_fires_but_errors_count_as_breaches(tmp_path: Path) -> None:
    held = SATURATION.replace("duration: 20s", "duration: 3s").format(
        policy="on_no_data: hold\n      on_error: breach")
    with standin() as (_svc, base):
        runbook(tmp_path, base, held)
        script(base, sat(0.95, 0.95, "nodata", "nodata", "nodata", 0.5))
        code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
        assert code == 0, result  # missing values neither advanced nor reset the count
        assert transitions(tmp_path, result["run_id"]) == [
            ("pool saturated", "ok", "pending", 0),
            ("pool saturated", "pending", "ok", 5),
        ]
        script(base, sat(0.95, 0.95, "close"))  # the service stops answering: an error, not a pass
        code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result
    moves = transitions(tmp_path, result["run_id"])
    assert moves[-1][2:] == ("firing", 2)
    (fired,) = [e for e in events(tmp_path, result["run_id"], "monitor.transition") if e.data["to"] == "firing"]
    assert "probe error" in fired.data["reason"] and "counted as a breach" in fired.data["reason"]


def test_errors_ignored_when_the_rule_says_so(tmp_path: Path) -> None:
    ignored = SATURATION.replace("duration: 20s", "duration: 3s").format(policy="on_error: ignore")
    with standin() as (_svc, base):
        runbook(tmp_path, base, ignored)
        script(base, sat(0.95, 0.95, "close", 0.95, 0.5))
        code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 0, result  # the dropped connection (a failed probe) counted as good: the count started again
    assert transitions(tmp_path, result["run_id"])[:3] == [
        ("pool saturated", "ok", "pending", 0),
        ("pool saturated", "pending", "ok", 2),
        ("pool saturated", "ok", "pending", 3),
    ]
    error = [e for e in events(tmp_path, result["run_id"], "monitor.sample") if e.data["error"]]
    assert len(error) == 1 and error[0].data["values"] is None and "failed" in error[0].data["error"]


# --- a response is a sample; only a failure to observe is an error -------------------------------

STATUS = """
monitor:
  duration: {duration}
  interval: 100ms
  probes:
    - name: health
      http: {{url: "{url}"}}
  rules:
    - name: server errors
      when: status >= 500
      consecutive: 1
      on_error: ignore
"""


def samples(tmp: Path, run_id: str) -> list[dict[str, Any]]:
    return [e.data for e in events(tmp, run_id, "monitor.sample") if e.data["stage"] == "window"]


def test_a_500_answer_is_a_sample_that_a_status_rule_fires_on(tmp_path: Path) -> None:
    with standin() as (_svc, base):
        runbook(tmp_path, base, STATUS.format(duration="5s", url="{{ vars.base }}/health"))
        script(base, [{"saturation": 0.5}, {"saturation": 0.5}, "error", {"saturation": 0.5}])
        code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result  # on_error: ignore does not hide a 500: it is an answer, not an error
    run_id = result["run_id"]
    assert transitions(tmp_path, run_id) == [("server errors", "ok", "firing", 2)]
    seen = samples(tmp_path, run_id)
    assert [(s["values"]["status"], s["error"]) for s in seen] == [(200, None), (200, None), (500, None)]
    assert seen[2]["values"]["json"] == {"error": "internal"}  # the answer is kept for the rules and replay
    (fired,) = [e for e in events(tmp_path, run_id, "monitor.transition") if e.data["to"] == "firing"]
    assert "500 >= 500" in fired.data["reason"]
    replayed = run_json("replay", run_id, cwd=tmp_path)[1]
    assert replayed["differs"] is False  # replay re-judges the recorded 500 the same way


def test_on_error_ignore_still_applies_to_a_refused_connection(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runbook(tmp_path, "unused", STATUS.format(duration="2s", url=f"http://127.0.0.1:{port}/health"))
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 0, result  # every probe failed to observe, and the rule ignores errors
    seen = samples(tmp_path, result["run_id"])
    assert len(seen) >= 3 and all(s["values"] is None and s["error"] for s in seen), seen
    assert transitions(tmp_path, result["run_id"]) == []
    runbook(tmp_path, "unused", STATUS.format(duration="500ms", url=f"http://127.0.0.1:{port}/health")
            .replace("on_error: ignore", "on_error: breach"))
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result  # the same errors, counted as breaches, fire the rule


RUN_PROBES = """
monitor:
  duration: 20s
  interval: 100ms
  probes:
    - name: job
      run: "echo busy; exit 1"
    - name: missing
      run: "tminus-no-such-command-anywhere"
  rules:
    - name: job failing
      probe: job
      when: exit_code == 1
      consecutive: 2
    - name: missing ignored
      probe: missing
      when: exit_code != 0
      consecutive: 1
      on_error: ignore
"""


def test_a_run_probe_exiting_1_is_a_sample_with_its_exit_code(tmp_path: Path) -> None:
    runbook(tmp_path, "unused", RUN_PROBES)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result
    run_id = result["run_id"]
    job = [s for s in samples(tmp_path, run_id) if s["probe"] == "job"]
    assert job and all(s["error"] is None and s["values"]["exit_code"] == 1 for s in job), job
    assert job[0]["values"]["stdout"].strip() == "busy"
    missing = [s for s in samples(tmp_path, run_id) if s["probe"] == "missing"]
    assert missing and all(s["values"] is None and "command not found" in s["error"] for s in missing), missing
    fired = [(m[0], m[2]) for m in transitions(tmp_path, run_id) if m[2] == "firing"]
    assert fired == [("job failing", "firing")]  # the missing command is an error, ignored by its rule


RETRIES_HEAD = """
name: retries
vars: {{base: "{base}"}}
phases:
  - name: deploy
    steps:
      - name: the new version retries more
        http: {{url: "{{{{ vars.base }}}}/set", method: POST, json: {{retries: 30}}}}
        undo:
          - http: {{url: "{{{{ vars.base }}}}/set", method: POST, json: {{retries: 10}}}}
"""

RATIO = """
monitor:
  duration: 3s
  interval: 100ms
  baseline: 1s  # room for 3 samples of 100ms on a loaded machine (500ms once gave 1)
  probes:
    - name: health
      http: {{url: "{{{{ vars.base }}}}/health"}}
  rules:
    - name: retry pressure
      ratio: {{query: 'jsonpath "$.retries"', above: 2.0}}
"""


def test_the_ratio_baseline_uses_only_samples_from_before_the_cutover(tmp_path: Path) -> None:
    with standin() as (svc, base):
        svc.state["retries"] = 10
        write_runbook(tmp_path, RETRIES_HEAD.format(base=base) + RATIO.format())
        code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
        restored = svc.state["retries"]
    assert code == 11, result
    samples = events(tmp_path, result["run_id"], "monitor.sample")
    (cut,) = [e.data["cutover_at"] for e in events(tmp_path, result["run_id"], "section.started")
              if "cutover_at" in e.data]
    baseline = [e for e in samples if e.data["stage"] == "baseline"]
    window = [e for e in samples if e.data["stage"] == "window"]
    assert len(baseline) >= 3 and all(e.data["at"] < cut for e in baseline)
    assert all(e.data["values"]["json"]["retries"] == 10 for e in baseline)
    assert all(e.data["at"] > cut for e in window)
    assert window[0].data["values"]["json"]["retries"] == 30
    assert restored == 10  # the undo ran
    assert transitions(tmp_path, result["run_id"]) == [("retry pressure", "ok", "firing", 0)]
    (fired,) = events(tmp_path, result["run_id"], "monitor.transition")
    assert "baseline 10.0" in fired.data["reason"] and "ratio 3.00 > 2.0" in fired.data["reason"]


PAUSE = """
monitor:
  duration: 3s
  interval: 100ms
  probes:
    - name: health
      http: {{url: "{{{{ vars.base }}}}/health"}}
  rules:
    - name: pool saturated
      when: 'jsonpath "$.saturation" >= 0.90'
      consecutive: 3
      on_no_data: ignore
      max_no_data: 2
"""


def test_an_inconclusive_rule_pauses_and_an_approval_from_another_process_keeps_watching(tmp_path: Path) -> None:
    with standin() as (_svc, base):
        runbook(tmp_path, base, PAUSE.format())
        script(base, sat(0.5, "nodata", "nodata", 0.5))
        proc = spawn("run", "runbook.yaml", "--json", cwd=tmp_path)
        run_id = wait_for_approval_request(tmp_path, "monitor")
        answer = tminus("approve", run_id, "--step", "monitor", "--operator", "oncall", cwd=tmp_path)
        assert answer.returncode == 0, answer.stderr
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert (tmp_path / "version").read_text().strip() == "v2"  # paused, not rolled back
    moves = transitions(tmp_path, run_id)
    assert moves[:2] == [("pool saturated", "ok", "inconclusive", 2), ("pool saturated", "inconclusive", "ok", 3)]
    (action,) = events(tmp_path, run_id, "monitor.action")
    assert action.data["outcome"] == "continue" and action.data["by"] == "oncall"


def test_an_unanswerable_pause_ends_the_run_needing_an_operator(tmp_path: Path) -> None:
    with standin() as (_svc, base):
        runbook(tmp_path, base, PAUSE.format())
        script(base, ["nodata"])
        code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
        assert code == 15, result
        assert result["status"] == "needs_operator"
        assert "inconclusive" in result["reason"]
        assert (tmp_path / "version").read_text().strip() == "v2"  # nothing was rolled back
        # Resumed, the still-inconclusive rule asks again; --yes keeps watching, and the rest passes.
        code, resumed = run_json("resume", result["run_id"], "--yes", cwd=tmp_path)
    assert code == 0, resumed
    actions = [e.data["outcome"] for e in events(tmp_path, result["run_id"], "monitor.action")]
    assert actions == ["no answer", "continue"]


def test_an_abort_rule_stops_without_undoing(tmp_path: Path) -> None:
    monitor = SATURATION.format(policy="action: abort")
    with standin() as (_svc, base):
        runbook(tmp_path, base, monitor)
        script(base, sat(0.95))
        code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 13, result
    assert (tmp_path / "version").read_text().strip() == "v2"
    assert events(tmp_path, result["run_id"], "rollback.started") == []


def test_notifications_reach_the_webhook_after_it_fails_once(tmp_path: Path) -> None:
    pytest.importorskip("tminus.notify")
    channels = 'channels:\n  ops: {url: "{{ vars.base }}/hook", retry: {attempts: 3, interval: 100ms}}\n'
    monitor = SATURATION.format(policy="notify: [ops]")
    with standin() as (svc, base):
        svc.hook_failures = 1
        runbook(tmp_path, base, monitor, extra=channels)
        script(base, sat(0.95))
        code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
        hooks = list(svc.hooks)
    assert code == 11, result
    assert [h["failed"] for h in hooks] == [True, False]  # retried after the failure
    text = hooks[-1]["body"]["text"]
    assert "firing" in text and "pool saturated" in text and "0.95 >= 0.90" in text
    (sent,) = events(tmp_path, result["run_id"], "notify.sent")
    assert len(sent.data["attempts"]) == 2 and sent.data["channel"] == "ops"
    assert "/hook" not in str(sent.data["url"])  # a webhook path is a credential: never recorded


DECISION = """
decision:
  mode: manual
  {extra}
"""


def _manual(tmp: Path, base: str, extra: str = "") -> None:
    write_runbook(tmp, HEAD.format(base=base) + DECISION.format(extra=extra))


def test_go_and_no_go_come_from_another_process(tmp_path: Path) -> None:
    with standin() as (_svc, base):
        _manual(tmp_path, base)
        proc = spawn("run", "runbook.yaml", "--json", cwd=tmp_path)
        run_id = wait_for_approval_request(tmp_path, "decision")
        refused = tminus("approve", run_id, "--no-go", "--reason", "error budget burnt", "--operator", "lead",
                         cwd=tmp_path)
        assert refused.returncode == 0, refused.stderr
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 11, out + err
    (decision,) = events(tmp_path, run_id, "decision")
    assert decision.data["verdict"] == "no-go" and decision.data["by"] == "lead"
    assert decision.data["reason"] == "error budget burnt"
    assert (tmp_path / "version").read_text().strip() == "v1"


def test_the_second_person_rule_refuses_a_self_approval(tmp_path: Path) -> None:
    with standin() as (_svc, base):
        _manual(tmp_path, base, "require_second_person: true")
        proc = spawn("run", "runbook.yaml", "--json", "--yes", cwd=tmp_path, env={"TMINUS_OPERATOR": "alice"})
        run_id = wait_for_approval_request(tmp_path, "decision")  # --yes does not answer it
        self_ok = tminus("approve", run_id, "--operator", "alice", cwd=tmp_path)
        assert self_ok.returncode == 1 and "second person" in self_ok.stderr
        # Even written straight into the ledger, a self-approval is ignored by the run.
        with open_ledger(f"sqlite:///{tmp_path / '.tminus' / 'ledger.db'}") as ledger:
            ledger.record_approval(run_id, "decision", approved=True, by="alice", host="h")
        wait_for(lambda: any(e.data.get("action") == "self-approval-refused" for e in events(tmp_path, run_id, "note")))
        assert proc.poll() is None  # still waiting
        # The same OS user under another name is the same person (tests/integration/test_ledger_identity.py
        # has a real second OS user answer); another identity's answer, as `tminus approve` records it:
        posing = tminus("approve", run_id, "--operator", "bob", cwd=tmp_path)
        assert posing.returncode == 1 and "second person" in posing.stderr, posing.stderr
        with open_ledger(f"sqlite:///{tmp_path / '.tminus' / 'ledger.db'}") as ledger:
            ledger.record_approval(run_id, "decision", approved=True, by="bob", host="h2", identity="bob@h2")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    (decision,) = events(tmp_path, run_id, "decision")
    assert decision.data["verdict"] == "go" and decision.data["by"] == "bob"


def test_a_decision_timeout_turns_silence_into_no_go(tmp_path: Path) -> None:
    with standin() as (_svc, base):
        _manual(tmp_path, base, "timeout: 500ms")
        code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result
    (decision,) = events(tmp_path, result["run_id"], "decision")
    assert decision.data["verdict"] == "no-go" and decision.data["how"] == "timeout"
    assert "silence counts as no" in result["reason"] or "timeout" in result["reason"]


def test_tminus_monitor_watches_alone_and_runs_the_rollback_steps(tmp_path: Path) -> None:
    with standin() as (_svc, base):
        runbook(tmp_path, base, SATURATION.format(policy=""),
                extra='rollback:\n  - name: page the team\n    run: "echo rolled > rollback.txt"\n')
        script(base, sat(0.95))
        code, result = run_json("monitor", "runbook.yaml", "--duration", "5s", cwd=tmp_path)
    assert code == 11, result
    assert (tmp_path / "rollback.txt").exists()
    assert not (tmp_path / "version").exists()  # the phases never ran
    with open_ledger(f"sqlite:///{tmp_path / '.tminus' / 'ledger.db'}") as ledger:
        assert ledger.get_run(result["run_id"]).kind == "monitor"


def test_why_and_replay_read_a_real_monitored_run(tmp_path: Path) -> None:
    with standin() as (_svc, base):
        runbook(tmp_path, base, SATURATION.format(policy=""))
        script(base, sat(0.5, 0.92, 0.93, 0.95))
        code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result
    run_id = result["run_id"]
    why = tminus("why", run_id, cwd=tmp_path)
    assert why.returncode == 0, why.stderr
    assert "pool saturated" in why.stdout and "probe 3/3: 0.95 >= 0.90" in why.stdout
    assert "switch back to v1" in why.stdout  # what was undone
    same = run_json("replay", run_id, cwd=tmp_path)[1]
    assert same["differs"] is False
    code, changed = run_json("replay", run_id, "--set", "pool saturated.threshold=0.94", cwd=tmp_path)
    assert code == 0, changed
    assert changed["differs"] is True  # 0.92 and 0.93 no longer breach: no third breach in a row
    bad = tminus("replay", run_id, "--set", "no such rule.threshold=1", cwd=tmp_path)
    assert bad.returncode == 2 and "pool saturated" in bad.stderr


def test_a_run_killed_in_the_monitor_window_resumes_without_asking_again(tmp_path: Path) -> None:
    import signal

    monitor = SATURATION.replace("duration: 20s", "duration: 1500ms").replace("interval: 100ms", "interval: 200ms")
    with standin() as (_svc, base):
        runbook(tmp_path, base, RATIO_BASELINE.format() + monitor.format(policy="").replace("monitor:\n", "", 1))
        # killed in the window, after the go (the second monitor.started: the baseline's is the
        # first), by the test-only crash point: a poll from here could come too late on a slow machine
        proc = spawn("run", "runbook.yaml", cwd=tmp_path, env={"TMINUS_TEST_CRASH_AT": "monitor.started:2"})
        assert proc.wait(timeout=120) == -signal.SIGKILL
        run_id = wait_for_run(tmp_path)
        assert [e.data["stage"] for e in events(tmp_path, run_id, "monitor.started")] == ["baseline", "window"]
        code, result = run_json("resume", run_id, "--no-input", cwd=tmp_path)
    assert code == 0, result
    kinds = [e.type for e in events(tmp_path, run_id)]
    assert kinds.count("decision") == 1  # the go decision was not asked again
    assert kinds.count("step.started") == 1  # the phase did not run twice
    windows = [e for e in events(tmp_path, run_id, "monitor.started") if e.data["stage"] == "window"]
    assert len(windows) >= 1 and windows[-1].data["cutover_at"] is not None


def wait_for_run(tmp: Path) -> str:
    found: list[str] = []

    def started() -> bool:
        rows = run_json("history", cwd=tmp)[1]
        found.extend(r["id"] for r in rows)
        return bool(rows)

    wait_for(started)
    return found[0]


RATIO_BASELINE = """
monitor:
  baseline: 400ms
"""


def test_secret_values_never_reach_the_ledger_the_webhook_or_why(tmp_path: Path) -> None:
    secret = "tok-5ec2et-value"
    channels = 'channels:\n  ops: {url: "{{ vars.base }}/hook"}\nsecrets: [PROBE_TOKEN]\n'
    monitor = SATURATION.format(policy="notify: [ops]").replace(
        "when: 'jsonpath \"$.saturation\" >= 0.90'", "when: 'jsonpath \"$.echo\" == \"leaked\"'")
    with standin() as (svc, base):
        runbook(tmp_path, base, monitor, extra=channels)
        script(base, [{"echo": secret}, {"echo": f"{secret} again"}, {"echo": "leaked", "token": secret}])
        proc = tminus("run", "runbook.yaml", "--json", cwd=tmp_path, env={"PROBE_TOKEN": secret})
        hooks = list(svc.hooks)
    assert proc.returncode == 11, proc.stdout + proc.stderr
    assert secret not in proc.stdout + proc.stderr
    ledger = (tmp_path / ".tminus" / "ledger.db").read_bytes()
    wal = tmp_path / ".tminus" / "ledger.db-wal"
    assert secret.encode() not in ledger + (wal.read_bytes() if wal.exists() else b"")
    run_id = json.loads(proc.stdout)["run_id"]
    samples = events(tmp_path, run_id, "monitor.sample")
    assert samples[0].data["values"]["json"]["echo"] == "***"
    assert hooks and all(secret not in str(h["body"]) for h in hooks)
    why = tminus("why", run_id, cwd=tmp_path)
    assert why.returncode == 0 and secret not in why.stdout


def test_a_resumed_window_keeps_the_rules_state_and_watches_only_what_is_left(tmp_path: Path) -> None:
    import signal

    monitor = SATURATION.replace("duration: 20s", "duration: 6s").replace("interval: 100ms", "interval: 1s")
    with standin() as (_svc, base):
        runbook(tmp_path, base, monitor.format(policy=""))
        script(base, sat(0.95, 0.95, 0.95, 0.5))
        # killed right after the second sample (the test-only crash point, not a poll that could
        # come late): two breaches of three recorded, the rule is pending
        proc = spawn("run", "runbook.yaml", cwd=tmp_path, env={"TMINUS_TEST_CRASH_AT": "monitor.sample:2"})
        assert proc.wait(timeout=120) == -signal.SIGKILL
        run_id = wait_for_run(tmp_path)
        code, result = run_json("resume", run_id, cwd=tmp_path)
    assert code == 11, result  # the first breach after the resume is the third in a row
    samples = events(tmp_path, run_id, "monitor.sample")
    assert len(samples) == 3
    moves = [(e.data["from"], e.data["to"]) for e in events(tmp_path, run_id, "monitor.transition")]
    assert moves == [("ok", "pending"), ("pending", "firing")]
    windows = [e.data["duration"] for e in events(tmp_path, run_id, "monitor.started")]
    assert windows[0] == 6 and 3 < windows[1] < 6  # the resumed watch is what was left of the window
