"""`tminus why`: one test per way a run ends, from events built as the engine records them.

The run record is the ledger's own RunRecord; events have the EventRecord shape (type, step_key,
data, at). T0 is 12:00:00 UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tminus.ledger.records import RunRecord
from tminus.reports.records import tplus
from tminus.reports.why import explain

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()
RID = "20261123-120000-abcd"
SAT = 'jsonpath "$.database_pool.state.saturation" >= 0.90'
MONITORED = f"""
name: pool-upgrade
phases:
  - name: cutover
    steps:
      - name: switch pool
        run: "true"
        undo:
          - run: "true"
monitor:
  duration: 10m
  interval: 1m
  probes:
    - name: health
      http: http://127.0.0.1:9/health
  rules:
    - name: pool saturated
      when: '{SAT}'
      consecutive: 3
"""


@dataclass(frozen=True)
class Ev:
    type: str
    step_key: str | None
    data: dict[str, Any]
    at: str


def ev(type_: str, t: float, step_key: str | None = None, /, **data: Any) -> Ev:
    return Ev(type_, step_key, data, datetime.fromtimestamp(T0 + t, UTC).isoformat(timespec="milliseconds"))


def record(status: str, exit_code: int | None, reason: str = "", *, kind: str = "run",
           text: str = "name: deploy\n") -> RunRecord:
    return RunRecord(
        id=RID, runbook_name="deploy", runbook_path="/rb/deploy.yaml", content_hash="0" * 64, runbook_text=text,
        environment="prod", operator="alice", host="h1", pid=42, kind=kind, parent_run_id=None, status=status,
        exit_code=exit_code, reason=reason, started_at=datetime.fromtimestamp(T0, UTC).isoformat(),
        finished_at=None, event_count=0, head_hash="",
    )


def step(t: float, key: str, name: str, section: str, status: str = "ok", *, kind: str = "run",
         exit_code: int = 0, verdicts: list[dict[str, Any]] | None = None, message: str = "",
         stderr: str = "") -> list[Ev]:
    return [
        ev("step.started", t - 1, key, name=name, kind=kind, section=section, check=False, idempotent=False),
        ev("step.finished", t, key, name=name, kind=kind, section=section, status=status, attempts=1,
           message=message, verdicts=verdicts or [], evidence={"exit_code": exit_code, "stderr": stderr}),
    ]


def failed_verdict(location: str, got: int) -> dict[str, Any]:
    return {"assertion": "exit_code == 0", "passed": False, "actual": got, "location": location,
            "message": f"exit_code == 0: expected 0, got {got}"}


def started() -> list[Ev]:
    return [ev("run.started", 0, operator="alice", host="h1", runbook="deploy"),
            ev("section.started", 1, section="gates", gates=["ready"])]


def gates_ok() -> list[Ev]:
    return [*step(2, "gates[0].checks[0]", "disk has room", "gate:ready"),
            ev("section.finished", 3, section="gates", ok=True, failures=[])]


def phase_ok(t: float = 10) -> list[Ev]:
    return [ev("section.started", t, section="phase:deploy", phase="deploy", budget=60.0),
            *step(t + 5, "phases[0].steps[0]", "write marker", "phase:deploy"),
            ev("section.finished", t + 6, section="phase:deploy", ok=True, actual=42.0, budget=60.0)]


def undo_ok(t: float, reason: str) -> list[Ev]:
    return [ev("rollback.started", t, section="rollback", reason=reason,
               steps=[{"key": "phases[0].steps[0].undo[0]", "name": "remove marker"}]),
            *step(t + 2, "phases[0].steps[0].undo[0]", "remove marker", "undo:deploy"),
            ev("section.started", t + 3, section="verify-after-rollback"),
            *step(t + 4, "verify[0]", "old version serves", "verify-after-rollback"),
            ev("section.finished", t + 5, section="verify-after-rollback", ok=True, failures=[]),
            ev("rollback.finished", t + 6, section="rollback", ok=True, undone=["phases[0].steps[0].undo[0]"])]


def text_of(x: Any) -> str:
    return "\n".join(x.lines())


def test_tplus_reads_like_a_clock() -> None:
    assert [tplus(s) for s in (0, 45, 245, 3723, -5)] == ["T+0s", "T+45s", "T+4m05s", "T+1h02m03s", "T-5s"]


def test_blocked_names_every_failing_gate_check_with_its_location() -> None:
    events = [
        *started(),
        ev("note", 1.5, "environment", action="manifest",
           message="environment variable API_KEY is required in 'prod' but is not set"),
        *step(2, "gates[0].checks[0]", "disk has room", "gate:ready"),
        *step(3, "gates[0].checks[1]", "no open incident", "gate:ready", "failed", exit_code=3,
              verdicts=[failed_verdict("rb.yaml:9:9", 3)], stderr="incident INC-7 open\n"),
        ev("section.finished", 4, section="gates", ok=False, failures=["..."]),
        ev("run.finished", 5, status="blocked", exit_code=10, reason="a gate failed: nothing was changed"),
    ]
    x = explain(record("blocked", 10), events)
    assert [c.kind for c in x.causes] == ["manifest", "gate"]
    assert x.causes[0].text == ("The environment manifest is not met: environment variable API_KEY is required "
                                "in 'prod' but is not set.")
    assert x.causes[1].text == "At 12:00:03 (T+3s) step 'no open incident' (gate 'ready') failed with exit code 3."
    assert x.causes[1].details == ["rb.yaml:9:9: exit_code == 0: expected 0, got 3", "stderr: incident INC-7 open"]
    assert x.summary == f"Run {RID} was blocked at the gates: 2 checks failed, so nothing was changed."
    assert x.progress == ["1 of 2 gate checks passed."]
    assert text_of(x).splitlines()[1].startswith("BLOCKED (exit 10). ")


def test_rolled_back_by_a_failed_step_says_what_failed_and_what_was_undone() -> None:
    reason = "step 'migrate' in phase 'deploy' failed"
    events = [
        *started(), *gates_ok(),
        ev("section.started", 10, section="phase:deploy", phase="deploy", budget=60.0),
        *step(15, "phases[0].steps[0]", "write marker", "phase:deploy"),
        *step(20, "phases[0].steps[1]", "migrate", "phase:deploy", "failed", exit_code=3,
              verdicts=[failed_verdict("rb.yaml:16:9", 3)], message="rb.yaml:16:9: ...\nstderr: boom",
              stderr="applying 0007\nERROR: lock timeout\n"),
        ev("section.finished", 20, section="phase:deploy", ok=False, failed_step="phases[0].steps[1]"),
        *undo_ok(21, reason),
        ev("run.finished", 28, status="rolled_back", exit_code=11, reason=reason),
    ]
    x = explain(record("rolled_back", 11, reason), events)
    (cause,) = x.causes
    assert cause.kind == "step" and cause.data["step"] == "phases[0].steps[1]"
    assert cause.text == "At 12:00:20 (T+20s) step 'migrate' (phase 'deploy') failed with exit code 3."
    assert cause.details == ["rb.yaml:16:9: exit_code == 0: expected 0, got 3",
                             "stderr: applying 0007 | ERROR: lock timeout"]
    assert [(u["name"], u["status"]) for u in x.undone] == [("remove marker", "ok")]
    assert x.undone[0]["text"] == "At 12:00:23 (T+23s) 'remove marker' (undo of phase 'deploy'): ok."
    assert x.aftermath == ["Verify after the rollback passed (1 check): the service is confirmed back."]
    assert x.summary == (f"Run {RID} rolled back because step 'migrate' (phase 'deploy') failed with exit code 3; "
                         "1 undo/rollback step ran and verify after the rollback confirms the service is back.")
    assert x.to_dict()["causes"][0]["tplus"] == "T+20s"


def monitor_rollback_events() -> list[Ev]:
    values = [0.5, 0.91, 0.93, 0.95]
    samples = [ev("monitor.sample", 60 * (i + 1), "monitor.probes[0]", probe="health", stage="window",
                  at=T0 + 60 * (i + 1), values={"json": {"database_pool": {"state": {"saturation": v}}}},
                  error=None, duration_ms=4.0) for i, v in enumerate(values)]
    return [
        *started(), *gates_ok(), *phase_ok(),
        ev("decision", 20, "decision", mode="auto", verdict="go", criteria=[], reason="every verify check passed"),
        ev("monitor.started", 30, stage="window", duration=600, interval=60, probes=["health"], cutover_at=T0 + 10,
           rules=[{"name": "pool saturated", "probe": "health", "action": "rollback", "text": SAT}]),
        *samples,
        ev("monitor.transition", 120, rule="pool saturated", probe="health", at=T0 + 120, reason="probe 1/3",
           action="rollback", **{"from": "ok", "to": "pending"}),
        ev("monitor.transition", 240, rule="pool saturated", probe="health", at=T0 + 240,
           reason="probe 3/3: 0.95 >= 0.90", action="rollback", **{"from": "pending", "to": "firing"}),
        ev("monitor.action", 240, rule="pool saturated", action="rollback", reason="probe 3/3: 0.95 >= 0.90",
           outcome="done"),
        ev("monitor.finished", 240, stage="window", ok=False, outcome="rollback", reason="pool saturated fired",
           samples=4),
        *undo_ok(241, "monitor rule 'pool saturated' fired"),
        ev("run.finished", 250, status="rolled_back", exit_code=11, reason="monitor rule fired"),
    ]


def test_rolled_back_by_a_monitor_rule_quotes_the_rule_and_what_it_read() -> None:
    x = explain(record("rolled_back", 11, text=MONITORED), monitor_rollback_events())
    (cause,) = x.causes
    assert cause.kind == "monitor"
    assert cause.text == (f"At 12:04:00 (T+4m00s) monitor rule 'pool saturated' fired ({SAT}): "
                          "probe 3/3: 0.95 >= 0.90; its action is rollback.")
    # read through the rule's own query, from the runbook text stored with the run
    assert cause.details == ["The last samples it read: 12:01:00 0.5, 12:02:00 0.91, 12:03:00 0.93, 12:04:00 0.95."]
    assert x.summary.startswith(f"Run {RID} rolled back because monitor rule 'pool saturated' fired; 1 undo")
    assert x.monitor is not None and x.monitor["outcome"] == "rollback" and x.monitor["samples"] == 4
    assert "At 12:04:00 (T+4m00s) rule 'pool saturated' went pending -> firing: probe 3/3: 0.95 >= 0.90." in \
        x.monitor["lines"]
    # the decision before it was go: it is part of the record, not the cause
    assert x.decision is not None and x.decision["verdict"] == "go"


def test_monitor_values_fall_back_to_raw_json_when_the_stored_runbook_does_not_load() -> None:
    x = explain(record("rolled_back", 11, text="not: [a runbook"), monitor_rollback_events())
    assert '"saturation": 0.95' in x.causes[0].details[0]


def no_go_events(how: str, by: str, reason: str) -> list[Ev]:
    criteria = [{"check": "new version serves", "key": "verify[0]", "verdict": "pass", "evidence": ["ok"]}]
    return [
        *started(), *gates_ok(), *phase_ok(),
        ev("approval.requested", 20, "decision", prompt="Go/no-go?", timeout=1800),
        ev("approval.given", 25, "decision", approved=False, by=by, how=how, reason=reason),
        ev("decision", 25, "decision", mode="manual", verdict="no-go", criteria=criteria, by=by, how=how,
           reason=reason),
        *undo_ok(26, f"decision: no-go by {by}"),
        ev("run.finished", 35, status="rolled_back", exit_code=11, reason="no-go"),
    ]


def test_a_no_go_decision_says_who_how_and_why() -> None:
    x = explain(record("rolled_back", 11), no_go_events("approve-command", "bob", "p99 latency doubled"))
    (cause,) = x.causes
    assert cause.kind == "decision"
    assert cause.text == "At 12:00:25 (T+25s) bob decided no-go via approve-command: p99 latency doubled."
    assert cause.details == ["[pass] new version serves"]
    assert "because the go/no-go decision was no-go (by bob)" in x.summary


def test_a_decision_timeout_is_silence_counted_as_no() -> None:
    x = explain(record("rolled_back", 11),
                no_go_events("timeout", "nobody", "no answer within 1800s: silence counts as no"))
    assert x.causes[0].text == ("At 12:00:25 (T+25s) the go/no-go decision timed out: no answer within 1800s: "
                                "silence counts as no.")
    assert "nobody answered the go/no-go in time" in x.summary


def test_rollback_failed_says_where_it_stopped_and_how_to_continue() -> None:
    state = ("rollback stopped at 'remove marker' (phases[0].steps[0].undo[0]): permission denied\n"
             "undone so far: nothing\nnot yet undone: restore config\n"
             f"fix the cause, then `tminus resume {RID}` continues the rollback")
    events = [
        *started(), *gates_ok(), *phase_ok(),
        ev("section.started", 17, section="verify"),
        *step(18, "verify[0]", "new version serves", "verify", "failed", exit_code=1,
              verdicts=[failed_verdict("rb.yaml:30:5", 1)]),
        ev("section.finished", 18, section="verify", ok=False, failures=["verify 'new version serves': ..."]),
        ev("rollback.started", 19, section="rollback", reason="verify failed",
           steps=[{"key": "phases[0].steps[0].undo[0]", "name": "remove marker"},
                  {"key": "rollback[0]", "name": "restore config"}]),
        *step(21, "phases[0].steps[0].undo[0]", "remove marker", "undo:deploy", "failed", exit_code=1,
              message="rb.yaml:14:13: exit_code == 0: expected 0, got 1"),
        ev("rollback.finished", 22, section="rollback", ok=False, state=state),
        ev("run.finished", 23, status="rollback_failed", exit_code=12, reason="verify failed\n" + state),
    ]
    x = explain(record("rollback_failed", 12, "verify failed\n" + state), events)
    (cause,) = x.causes
    assert cause.kind == "verify"
    assert cause.text == "At 12:00:18 (T+18s) 1 verify check failed after the phases completed."
    assert cause.details[:2] == ["At 12:00:18 (T+18s) step 'new version serves' (verify) failed with exit code 1.",
                                 "rb.yaml:30:5: exit_code == 0: expected 0, got 1"]
    assert [(u["name"], u["status"]) for u in x.undone] == [("remove marker", "failed"), ("restore config", "not run")]
    assert x.undone[1]["text"] == "'restore config' did not run: it is NOT undone."
    assert x.summary == (f"Run {RID} could not roll back: 1 verify check failed, and the rollback stopped at "
                         "'remove marker'.")
    assert "not yet undone: restore config" in x.aftermath
    assert x.next_steps == [f"Fix the cause, then `tminus resume {RID}` continues the rollback "
                            "(what was undone is not undone again)."]


def test_completed_tells_the_whole_record_with_the_decision() -> None:
    criteria = [{"check": "new version serves", "key": "verify[0]", "verdict": "pass", "evidence": ["ok"]}]
    events = [
        *started(), *gates_ok(), *phase_ok(),
        ev("section.started", 17, section="verify"),
        *step(18, "verify[0]", "new version serves", "verify"),
        ev("section.finished", 18, section="verify", ok=True, failures=[]),
        ev("approval.requested", 19, "decision", prompt="Go/no-go?"),
        ev("approval.given", 80, "decision", approved=True, by="bob", how="approve-command", reason="dashboards ok",
           at=datetime.fromtimestamp(T0 + 80, UTC).isoformat()),
        ev("decision", 80, "decision", mode="manual", verdict="go", criteria=criteria, by="bob",
           how="approve-command", reason="dashboards ok"),
        ev("monitor.started", 81, stage="window", duration=600, interval=60, probes=["health"], rules=[],
           cutover_at=T0 + 10),
        ev("monitor.transition", 200, rule="pool saturated", at=T0 + 200, reason="probe 1/3: 0.91 >= 0.90",
           **{"from": "ok", "to": "pending"}),
        ev("monitor.transition", 260, rule="pool saturated", at=T0 + 260, reason="good sample: 0.5, not >= 0.90",
           **{"from": "pending", "to": "ok"}),
        ev("monitor.finished", 681, stage="window", ok=True, outcome="passed", reason="", samples=10),
        ev("run.finished", 682, status="completed", exit_code=0, reason="decision: go"),
    ]
    x = explain(record("completed", 0), events)
    assert x.causes == []
    assert x.progress == ["All 1 gate check of 1 gate passed.",
                          "Phase 'deploy' took 42.0s, within its 1m00s budget.", "1 verify check passed."]
    assert x.decision is not None
    assert x.decision["lines"] == [
        "At 12:01:20 (T+1m20s) bob answered go via approve-command (asked at 12:00:19 (T+19s)): dashboards ok.",
        "[pass] new version serves",
    ]
    assert x.monitor is not None and x.monitor["lines"][0] == (
        "At 12:01:21 (T+1m21s) the monitor window began (10m00s, a probe every 1m00s) and passed after 10 samples.")
    assert x.summary == (f"Run {RID} completed: 1 gate check, 1 phase and 1 verify check passed; the decision was "
                         "go (bob via approve-command); the monitor window passed (10 samples).")
    assert "What went right:" in text_of(x) and "Decision:" in text_of(x)


def test_interrupted_names_the_running_step_and_the_resume_choices() -> None:
    events = [
        *started(), *gates_ok(),
        ev("section.started", 10, section="phase:deploy", phase="deploy", budget=60.0),
        ev("step.started", 11, "phases[0].steps[0]", name="restart workers", kind="run", section="phase:deploy",
           check=False, idempotent=False),
        ev("run.finished", 15, status="interrupted", exit_code=130, reason="interrupted by a signal"),
    ]
    x = explain(record("interrupted", 130), events)
    assert x.causes[0].text == ("Step 'restart workers' (phase 'deploy', phases[0].steps[0]) started at "
                                "12:00:11 (T+11s) and never finished.")
    assert x.summary == (f"Run {RID} was interrupted at 12:00:15 (T+15s) while step 'restart workers' was running; "
                         "nothing is lost and it can be resumed.")
    assert x.next_steps == [f"`tminus resume {RID}`: 'restart workers' may have half-acted, so choose --retry "
                            "(run it again), --skip --reason '...' (it completed) or --rollback."]


def test_needs_operator_says_what_it_waits_for_and_the_command() -> None:
    events = [
        *started(), *gates_ok(), *phase_ok(),
        ev("approval.requested", 20, "decision", prompt="Keep v2 in prod?",
           approve_with=f"tminus approve {RID} --step decision"),
        ev("run.finished", 21, status="needs_operator", exit_code=15, reason="a manual decision needs an operator"),
    ]
    x = explain(record("needs_operator", 15), events)
    assert x.causes[0].text == 'Since 12:00:20 (T+20s) it waits for an answer to "Keep v2 in prod?" (decision).'
    assert x.summary == (f"Run {RID} stopped because it waits for an answer to decision; nothing was undone and it "
                         "can be resumed.")
    assert f"`tminus approve {RID} --step decision`" in x.next_steps[0]
    assert text_of(x).splitlines()[1].startswith("NEEDS AN OPERATOR (exit 15).")


def test_aborted_lists_what_is_still_in_place() -> None:
    events = [
        *started(), *gates_ok(),
        ev("section.started", 10, section="phase:deploy", phase="deploy"),
        *step(12, "phases[0].steps[0]", "write marker", "phase:deploy"),
        *step(14, "phases[0].steps[1]", "flip flag", "phase:deploy", "failed", exit_code=2),
        ev("section.finished", 14, section="phase:deploy", ok=False, failed_step="phases[0].steps[1]"),
        ev("run.finished", 15, status="aborted", exit_code=13, reason="... (on_failure: abort: nothing undone)"),
    ]
    x = explain(record("aborted", 13), events)
    assert x.causes[0].text == "At 12:00:14 (T+14s) step 'flip flag' (phase 'deploy') failed with exit code 2."
    assert x.aftermath == ["Still in place (not undone): 'write marker' (phase 'deploy')."]
    assert x.summary == f"Run {RID} was aborted because step 'flip flag' (phase 'deploy') failed with exit code 2; " \
                        "nothing was undone."


# --- stop requests ----------------------------------------------------------------------------------


def stop_ev(t: float, mode: str, by: str, reason: str, *, accepted: bool = True, note: str = "") -> Ev:
    extra = {"note": note} if note else {}
    return ev("run.stop", t, None, mode=mode, by=by, reason=reason, accepted=accepted, **extra,
              requested_at=datetime.fromtimestamp(T0 + t, UTC).isoformat())


def test_a_signal_is_the_cause_of_an_interrupted_run_not_its_reason() -> None:
    events = [
        *started(), *gates_ok(),
        ev("section.started", 10, section="phase:deploy", phase="deploy"),
        ev("step.started", 11, "phases[0].steps[0]", name="migrate", kind="run", section="phase:deploy"),
        stop_ev(20, "interrupt", "signal SIGINT", "interrupted by a signal; `tminus resume` continues"),
        ev("section.finished", 21, section="phase:deploy", ok=False, status="stopped", stopped="interrupt"),
        ev("run.finished", 21, status="interrupted", exit_code=130, reason="interrupted by a signal"),
    ]
    x = explain(record("interrupted", 130, "interrupted by a signal"), events)
    assert x.causes[0].text == ("At 12:00:20 (T+20s) the run received SIGINT: interrupted by a signal; "
                                "`tminus resume` continues.")
    assert x.causes[0].details == ["Step 'migrate' (phase 'deploy', phases[0].steps[0]) was running: it was cut "
                                   "short; `tminus resume` decides what to do with it."]
    assert x.summary == (f"Run {RID} was interrupted at 12:00:21 (T+21s) while step 'migrate' was running "
                         "because it received SIGINT; nothing is lost and it can be resumed.")


def test_a_kill_switch_with_a_stopped_verify_is_the_stop_not_a_verify_failure() -> None:
    events = [
        *started(), *gates_ok(), *phase_ok(),
        ev("section.started", 20, section="verify"),
        ev("step.started", 21, "verify[0]", name="health", kind="http", section="verify"),
        stop_ev(22, "kill_switch", "ops", "pager says stop"),
        stop_ev(23, "abort", "bob", "me too", accepted=False, note="a stop was already requested"),
        ev("step.finished", 23, "verify[0]", name="health", kind="http", section="verify", status="failed",
           message="stopped: kill switch by ops: pager says stop", evidence={"stopped": "kill_switch"}),
        ev("section.finished", 24, section="verify", ok=False, status="stopped", stopped="kill_switch"),
        *undo_ok(25, "kill switch by ops: pager says stop"),
        ev("run.finished", 32, status="rolled_back", exit_code=11, reason="kill switch by ops: pager says stop"),
    ]
    x = explain(record("rolled_back", 11, "kill switch by ops: pager says stop"), events)
    (cause,) = x.causes
    assert cause.kind == "stop"
    assert cause.text == "At 12:00:22 (T+22s) ops asked for the kill switch: pager says stop."
    assert cause.details == ["Step 'health' (verify, verify[0]) was running: it was stopped (recorded as failed) "
                             "and counts as touched: its undo is part of the rollback."]
    assert x.summary.startswith(f"Run {RID} rolled back because ops asked for the kill switch (pager says stop);")
    assert x.notes == ["At 12:00:23 (T+23s) bob asked for an abort: not acted on (a stop was already requested)."]


def test_a_stopped_check_inside_a_failed_verify_is_named_as_stopped_not_failed() -> None:
    events = [
        *started(), *gates_ok(), *phase_ok(),
        ev("section.started", 20, section="verify"),
        *step(21, "verify[0]", "health", "verify", "failed", exit_code=1, message="exit_code == 0: got 1"),
        ev("step.started", 22, "verify[1]", name="slow check", kind="run", section="verify"),
        stop_ev(23, "rollback", "guard", "budget spent"),
        ev("step.finished", 24, "verify[1]", name="slow check", kind="run", section="verify", status="failed",
           message="stopped: rollback requested by guard: budget spent\nkilled", evidence={"stopped": "rollback"}),
        ev("section.finished", 25, section="verify", ok=False, failures=["health", "slow check"]),  # no "stopped"
        *undo_ok(26, "verify failed"),
    ]
    x = explain(record("rolled_back", 11, "verify failed"), events)
    (cause,) = x.causes
    assert cause.kind == "verify"
    stopped = [d for d in cause.details if "slow check" in d]
    assert stopped == ["At 12:00:24 (T+24s) step 'slow check' (verify) was stopped by a rollback (guard)."]
    assert "killed" in cause.details and not any(d.startswith("stopped: ") for d in cause.details)
