"""Guards during a phase, against a real TCP listener on loopback and a real `tminus run`: the bind
lost mid-phase stops the step and rolls back, a stable bind lets the phase complete with every sample
recorded, a probe that errors follows its rule's on_error, notify only tells, abort undoes nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tests.guard_helpers import events, guarded, listening
from tests.helpers import lines, run_json, spawn, tminus, wait_for, write_runbook
from tests.standin import standin


def _run_and_lose_the_bind(tmp_path: Path, text: str) -> tuple[int, dict, float]:
    """Run, and once the restart step runs and the guard has seen the bind, take the listener down.
    Returns the exit code, the JSON result and the seconds from the loss to the run's end."""
    with listening() as bind:
        write_runbook(tmp_path, text.replace("PORT", str(bind.port)))
        proc = spawn("run", "runbook.yaml", "--json", cwd=tmp_path)
        try:
            wait_for(lambda: (tmp_path / "started").exists())
            time.sleep(0.25)  # a few samples with the bind up
            lost = time.monotonic()
            bind.stop()
            out, err = proc.communicate(timeout=30)
            took = time.monotonic() - lost
        finally:
            (tmp_path / "release").touch()
            if proc.poll() is None:
                proc.kill()
    try:
        return proc.returncode, json.loads(out), took
    except ValueError as exc:
        raise AssertionError(f"not JSON (exit {proc.returncode}):\n{out}\n{err}") from exc


def test_a_lost_bind_stops_the_restart_and_rolls_the_phase_back(tmp_path: Path) -> None:
    code, result, took = _run_and_lose_the_bind(tmp_path, guarded(0).replace("port: 0", "port: PORT"))
    assert code == 11, result
    assert lines(tmp_path / "undone") == ["undone"]  # the phase's undo ran once
    assert took < 5, f"the guard took {took:.2f}s to stop the phase"  # 2 probes 100ms apart, plus the undo
    run_id = result["run_id"]
    finished = [e for e in events(tmp_path, run_id, "step.finished") if e.step_key == "phases[0].steps[0]"]
    assert finished[0].data["status"] == "failed" and finished[0].data["evidence"]["stopped"] == "rollback"
    firing = [e.data for e in events(tmp_path, run_id, "guard.transition") if e.data["to"] == "firing"]
    assert [(f["rule"], f["outcome"], f["section"]) for f in firing] == [("bind stable", "rollback", "phase:Restart")]
    assert [r["read"] for r in firing[0]["recent"]][-2:] == ["false", "false"]
    applied = events(tmp_path, run_id, "policy.applied")
    assert [(a.data["policy"], a.data["hook"], a.data["decision"]) for a in applied] == [("guard", "guard", "rollback")]
    samples = [e.data for e in events(tmp_path, run_id, "guard.sample")]
    assert samples[0]["values"]["open"] is True and samples[-1]["values"]["open"] is False
    assert all(s["section"] == "phase:Restart" and s["phase"] == "Restart" for s in samples)
    [end] = [e.data for e in events(tmp_path, run_id, "guard.finished")]
    assert end["outcome"] == "fired" and end["fired"] == ["bind stable"] and end["samples"] == len(samples)
    types = [e.type for e in events(tmp_path, run_id)]
    # recorded before it is acted on: the firing, the policy's decision, the stop, then the stopped step
    assert types.index("guard.transition") < types.index("policy.applied") < types.index("run.stop")
    assert types.index("run.stop") < types.index("rollback.started")
    why = tminus("why", run_id, cwd=tmp_path).stdout
    assert "guard 'bind stable' fired during phase 'Restart' (open == false for 2 consecutive probes)" in why
    assert "and asked for a rollback: it read" in why and "Step 'restart'" in why
    shown = tminus("show", run_id, cwd=tmp_path).stdout
    assert "◉ guard of phase 'Restart'" in shown and "◎ guard bind stable: pending → firing (rollback)" in shown
    assert "bind (guard): open=False" in shown
    assert "guard fired (bind stable: rollback), " in shown.split("Sections:")[1]


def test_a_stable_bind_lets_the_phase_complete_and_every_sample_is_recorded(tmp_path: Path) -> None:
    with listening() as bind:
        write_runbook(tmp_path, guarded(bind.port, step="sleep 1", settle="settle: 300ms"))
        code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 0, result
    run_id = result["run_id"]
    samples = [e for e in events(tmp_path, run_id, "guard.sample")]
    assert len(samples) >= 8  # 1s of steps and 300ms of settle, every 100ms
    assert all(s.data["values"]["open"] is True and s.step_key == "phases[0].guard.probes[0]" for s in samples)
    types = [(e.type, e.data.get("section")) for e in events(tmp_path, run_id)]
    started = types.index(("guard.started", "phase:Restart"))
    step = next(i for i, (t, _) in enumerate(types) if t == "step.started")
    ended = types.index(("guard.finished", "phase:Restart"))
    # settle comes after the phase's section finished (its steps are done) and before the next section
    assert started < step < types.index(("section.finished", "phase:Restart")) < ended
    assert ended < types.index(("section.started", "decision"))
    last_step_end = max(e.at for e in events(tmp_path, run_id, "step.finished"))
    assert max(s.data["at"] for s in samples) > _epoch(last_step_end) + 0.15  # it settled after the step
    [end] = [e.data for e in events(tmp_path, run_id, "guard.finished")]
    assert end["outcome"] == "passed" and end["fired"] == [] and "settled 0.3s" in end["reason"]
    assert not (tmp_path / "undone").exists()


def _epoch(at: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(at).timestamp()


@pytest.mark.parametrize(("on_error", "exit_code"), [("ignore", 0), ("breach", 11)])
def test_a_probe_that_errors_follows_the_rules_on_error(tmp_path: Path, on_error: str, exit_code: int) -> None:
    """An HTTP probe against a closed port fails to observe (an error, not a value)."""
    with listening() as bind:
        port = bind.port
    rule = f"when: status >= 500\n          consecutive: 2\n          on_error: {on_error}"
    write_runbook(tmp_path, guarded(port, step="sleep 0.6", rule=rule,
                                    probe=f'http: {{url: "http://127.0.0.1:{port}/health"}}'))
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == exit_code, result
    samples = [e.data for e in events(tmp_path, result["run_id"], "guard.sample")]
    assert samples and all(s["error"] and s["values"] is None for s in samples)
    assert (tmp_path / "undone").exists() == (exit_code == 11)


def test_a_notify_rule_only_tells_and_the_phase_completes(tmp_path: Path) -> None:
    with standin() as (hooks, base), listening() as bind:
        channels = f'channels: {{ops: {{url: "{base}/hook"}}}}'
        rule = "when: open == false\n          consecutive: 2\n          action: notify\n          notify: [ops]"
        write_runbook(tmp_path, guarded(bind.port, rule=rule, extra=channels))
        proc = spawn("run", "runbook.yaml", "--json", cwd=tmp_path)
        wait_for(lambda: (tmp_path / "started").exists())
        bind.stop()
        wait_for(lambda: bool(hooks.hooks), timeout=10)
        (tmp_path / "release").touch()
        out, _err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    result = json.loads(out)
    text = hooks.hooks[0]["body"]["text"]
    assert text.startswith("firing (notify): guard 'bind stable'") and "during phase 'Restart'" in text
    firing = [e.data for e in events(tmp_path, result["run_id"], "guard.transition") if e.data["to"] == "firing"]
    assert [f["outcome"] for f in firing] == ["notified"]
    assert not events(tmp_path, result["run_id"], "policy.applied")
    assert not events(tmp_path, result["run_id"], "run.stop")
    [end] = [e.data for e in events(tmp_path, result["run_id"], "guard.finished")]
    assert end["outcome"] == "notified" and end["ok"] is True
    assert not (tmp_path / "undone").exists()


def test_an_abort_rule_stops_the_step_and_undoes_nothing(tmp_path: Path) -> None:
    rule = "when: open == false\n          consecutive: 2\n          action: abort"
    code, result, _took = _run_and_lose_the_bind(tmp_path, guarded(0, rule=rule).replace("port: 0", "port: PORT"))
    assert code == 13, result
    assert not (tmp_path / "undone").exists()
    assert "guard 'bind stable'" in result["reason"]


def test_a_service_already_down_stops_the_phase_before_its_first_step(tmp_path: Path) -> None:
    with listening() as bind:
        port = bind.port
    write_runbook(tmp_path, guarded(port, rule="when: open == false\n          consecutive: 1"))
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result
    assert not (tmp_path / "started").exists()  # the first round of probes came before the step
    assert not [e for e in events(tmp_path, result["run_id"], "step.started") if e.step_key.startswith("phases[0].st")]


def test_a_guard_watches_only_its_phase(tmp_path: Path) -> None:
    """The bind is down before and after the guarded phase: only the phase's own window counts."""
    with listening() as bind:
        text = guarded(bind.port, step="sleep 0.3")
        text += "  - name: after\n    steps: [{run: 'touch after-ran; sleep 0.5'}]\n"
        write_runbook(tmp_path, text)
        proc = spawn("run", "runbook.yaml", "--json", cwd=tmp_path)
        wait_for(lambda: (tmp_path / "after-ran").exists())
        bind.stop()
        out, _err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    result = json.loads(out)
    samples = events(tmp_path, result["run_id"], "guard.sample")
    assert samples and all(s.data["values"]["open"] is True for s in samples)


def test_the_plan_shows_the_guard_under_its_phase(tmp_path: Path) -> None:
    write_runbook(tmp_path, guarded(8080, settle="settle: 2s"))
    out = tminus("plan", "runbook.yaml", cwd=tmp_path).stdout
    restart, guard = out.index("Restart"), out.index("guard: a probe every 100ms while the steps run, and 2.0s")
    assert restart < guard < out.index("probe • bind: tcp 127.0.0.1:8080 is open") < out.index("• restart")
    assert "rule bind stable: open == false for 2 consecutive probes → rollback" in out
    code, plan = run_json("plan", "runbook.yaml", cwd=tmp_path)
    assert code == 0 and plan["phases"][0]["guard"]["rules"][0]["action"] == "rollback"


def test_guard_samples_and_firings_are_masked(tmp_path: Path) -> None:
    """A probe that prints a secret: the ledger and `show` hold only `***`."""
    secret = "s3cr3t-guard-token"
    probe = 'run: "echo token=$GUARD_TOKEN; exit 1"'
    rule = "when: exit_code != 0\n          consecutive: 1\n          action: notify"
    write_runbook(tmp_path, guarded(0, step="sleep 0.3", rule=rule, probe=probe, extra="secrets: [GUARD_TOKEN]"))
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path, env={"GUARD_TOKEN": secret})
    assert code == 0, result
    recorded = [e.data for e in events(tmp_path, result["run_id"]) if e.type.startswith("guard.")]
    assert any("token=***" in json.dumps(d) for d in recorded)
    assert secret not in json.dumps(recorded)
    shown = tminus("show", result["run_id"], cwd=tmp_path).stdout
    assert "◎ guard bind stable: ok → firing (notified)" in shown and secret not in shown


def test_a_bind_lost_while_the_guard_settles_rolls_the_finished_phase_back(tmp_path: Path) -> None:
    with listening() as bind:
        write_runbook(tmp_path, guarded(bind.port, step="touch started", settle="settle: 10s"))
        proc = spawn("run", "runbook.yaml", "--json", cwd=tmp_path)
        wait_for(lambda: (tmp_path / "started").exists())
        time.sleep(0.4)  # the step has finished: the guard is settling
        settling = time.monotonic()
        bind.stop()
        out, _err = proc.communicate(timeout=30)
    assert time.monotonic() - settling < 8  # the firing cut the 10s settle short
    assert proc.returncode == 11, out
    run_id = json.loads(out)["run_id"]
    assert lines(tmp_path / "undone") == ["undone"]
    [applied] = events(tmp_path, run_id, "policy.applied")
    finished = [e for e in events(tmp_path, run_id, "section.finished") if e.data["section"] == "phase:Restart"]
    assert finished[0].data["ok"] is True and finished[0].seq < applied.seq  # its steps had all passed
