"""In CI: GitHub Actions annotations at the runbook's lines, a heartbeat when a long step or a
monitor baseline prints nothing, and no line broken when output is not a terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.helpers import tminus, write_runbook
from tests.servers.backend import backends


def gha(tmp: Path, **more: str) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp), **more}


def commands(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("::")]


BAD = """
version: 1
name: bad
nme: typo
phases:
  - name: p
    steps:
      - run: "true"
        timeout: forever
"""


def test_validate_annotates_every_problem_at_its_position(tmp_path: Path) -> None:
    write_runbook(tmp_path, BAD)
    out = tminus("validate", "runbook.yaml", cwd=tmp_path, env=gha(tmp_path))
    assert out.returncode == 78
    found = commands(out.stdout)
    assert found[0] == ("::error file=runbook.yaml,line=3,col=1,title=tminus validate%3A nme"
                        "::unknown key 'nme'%0Ahint: did you mean 'name'?")
    assert found[1] == ("::error file=runbook.yaml,line=8,col=9,title=tminus validate%3A phases[0].steps[0].timeout"
                        "::'forever' is not a duration; write it as 500ms, 30s, 5m, 2h or 1h30m")
    assert len(found) == 2
    assert "::" not in out.stderr  # the problems a person reads are unchanged, on stderr
    # --json: stdout stays one JSON document; the commands go to stderr (the runner reads both)
    as_json = tminus("validate", "--json", "runbook.yaml", cwd=tmp_path, env=gha(tmp_path))
    assert json.loads(as_json.stdout)["valid"] is False
    assert commands(as_json.stderr) == found
    # outside GitHub Actions: no workflow command at all
    plain = tminus("validate", "runbook.yaml", cwd=tmp_path)
    assert commands(plain.stdout + plain.stderr) == []


def test_validate_warnings_are_warning_annotations(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        version: 1
        name: warn
        vars: {x: "1"}
        phases:
          - name: p
            steps:
              - run: "echo {{ vars.x | raw }}"
    """)
    out = tminus("validate", "runbook.yaml", cwd=tmp_path, env=gha(tmp_path))
    assert out.returncode == 0
    found = commands(out.stdout)
    assert len(found) == 1 and found[0].startswith("::warning file=runbook.yaml,line=7,col=")


GATE = """
version: 1
name: gated
gates:
  - name: g
    checks:
      - name: fine
        run: "true"
      - name: "bad, check: one"
        run: "echo 'a%b,c:d'; exit 3"
"""


def test_a_failed_gate_check_is_an_error_at_its_line_with_every_character_escaped(tmp_path: Path) -> None:
    write_runbook(tmp_path, GATE)
    out = tminus("gate", "runbook.yaml", "--ledger", f"sqlite:///{tmp_path / 'l.db'}", cwd=tmp_path,
                 env=gha(tmp_path))
    assert out.returncode == 10
    found = commands(out.stdout)
    assert found[0] == ("::error file=runbook.yaml,line=8,col=9,"
                        "title=tminus%3A gate check 'bad%2C check%3A one' failed [gates[0].checks[1]]"
                        "::exit_code == 0: expected 0, got 3%0Astdout: a%25b,c:d")
    assert re.fullmatch(r"::notice file=runbook\.yaml,title=tminus run [0-9a-f-]+"
                        r"::BLOCKED \(exit 10\): a gate failed: nothing was changed", found[1]), found[1]
    assert len(found) == 2
    # --json: the run's JSON alone on stdout
    as_json = tminus("gate", "runbook.yaml", "--json", "--ledger", f"sqlite:///{tmp_path / 'l.db'}",
                     cwd=tmp_path, env=gha(tmp_path))
    assert json.loads(as_json.stdout)["exit_code"] == 10
    assert commands(as_json.stderr)[0] == found[0]


def test_a_failed_step_is_annotated_and_the_rollback_is_the_notice(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        version: 1
        name: rolls-back
        phases:
          - name: p
            steps:
              - name: change
                run: "touch marker"
                undo:
                  - run: "rm marker"
              - name: breaks
                run: "exit 4"
    """)
    out = tminus("run", "runbook.yaml", "--ledger", f"sqlite:///{tmp_path / 'l.db'}", cwd=tmp_path,
                 env=gha(tmp_path))
    assert out.returncode == 11, out.stderr
    found = commands(out.stdout)
    assert found[0].startswith("::error file=runbook.yaml,line=10,col=9,"
                               "title=tminus%3A step 'breaks' failed [phases[0].steps[1]]::")
    assert found[-1].startswith("::notice file=runbook.yaml,title=tminus run ")
    assert "::ROLLED BACK (exit 11): " in found[-1]
    assert not (tmp_path / "marker").exists()


def test_annotations_name_the_file_as_the_repository_does(tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    ops.mkdir()
    write_runbook(ops, GATE)
    out = tminus("gate", "runbook.yaml", "--ledger", f"sqlite:///{tmp_path / 'l.db'}", cwd=ops,
                 env=gha(tmp_path))  # run from ops/, the workspace is its parent
    assert commands(out.stdout)[0].startswith("::error file=ops/runbook.yaml,line=8,col=9,")


SLEEPY = """
version: 1
name: sleepy
vars: {s: "2.5"}
phases:
  - name: p
    steps:
      - name: sleeps
        run: "sleep {{ vars.s }}"
"""


def test_a_heartbeat_says_what_runs_when_nothing_else_is_printed(tmp_path: Path) -> None:
    write_runbook(tmp_path, SLEEPY)
    ledger = f"sqlite:///{tmp_path / 'l.db'}"
    out = tminus("run", "runbook.yaml", "--ledger", ledger, cwd=tmp_path, env={"TMINUS_HEARTBEAT": "1s"})
    assert out.returncode == 0, out.stderr
    beats = [line for line in out.stderr.splitlines() if "still running" in line]
    assert beats, out.stderr
    for beat in beats:
        assert re.search(r"T\+0:00:0\d … still running: phase:p, step 'sleeps' for [\d.]+s$", beat), beats
    off = tminus("run", "runbook.yaml", "--var", "s=1.6", "--ledger", ledger, cwd=tmp_path,
                 env={"TMINUS_HEARTBEAT": "0"})
    assert off.returncode == 0 and "still running" not in off.stderr
    junk = tminus("run", "runbook.yaml", "--ledger", ledger, cwd=tmp_path, env={"TMINUS_HEARTBEAT": "often"})
    assert junk.returncode == 2 and "TMINUS_HEARTBEAT='often'" in junk.stderr


def test_no_heartbeat_while_events_keep_coming(tmp_path: Path) -> None:
    # a line every ~0.3s for over 3s: silence never lasts the 2s the heartbeat waits for (with room
    # for a slow machine), though the run outlasts it
    steps = "".join(f"      - name: step {i}\n        run: \"sleep 0.3\"\n" for i in range(10))
    write_runbook(tmp_path, f"version: 1\nname: busy\nphases:\n  - name: p\n    steps:\n{steps}")
    out = tminus("run", "runbook.yaml", "--ledger", f"sqlite:///{tmp_path / 'l.db'}", cwd=tmp_path,
                 env={"TMINUS_HEARTBEAT": "2s"})
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("✓ step") == 10
    assert "still running" not in out.stderr


def test_a_monitor_baseline_heartbeat_counts_samples_and_time_left(tmp_path: Path) -> None:
    with backends("live") as b:
        write_runbook(tmp_path, f"""
            version: 1
            name: watched
            phases:
              - name: p
                steps:
                  - run: "true"
            monitor:
              baseline: 2500ms
              duration: 300ms
              interval: 200ms
              probes:
                - name: health
                  http: "http://{b['live'].address}/healthz"
              rules:
                - name: down
                  probe: health
                  when: status >= 500
                  consecutive: 2
        """)
        out = tminus("run", "runbook.yaml", "--ledger", f"sqlite:///{tmp_path / 'l.db'}", cwd=tmp_path,
                     env={"TMINUS_HEARTBEAT": "1s"})
    assert out.returncode == 0, out.stderr
    beats = [line for line in out.stderr.splitlines() if "still running: monitor baseline" in line]
    assert beats, out.stderr
    assert re.search(r"still running: monitor baseline, \d+ sample\(s\), [\d.]+m?s left", beats[0]), beats


def test_a_long_step_name_is_never_broken_when_output_is_not_a_terminal(tmp_path: Path) -> None:
    name = "Restart " + "the-very-long-service-name-" * 11 + "end"
    assert len(name) > 300
    write_runbook(tmp_path, f"""
        version: 1
        name: long
        phases:
          - name: p
            steps:
              - name: "{name}"
                run: "true"
                undo:
                  - run: "true"
    """)
    narrow = {"COLUMNS": "40"}
    plan = tminus("plan", "runbook.yaml", cwd=tmp_path, env=narrow)
    assert plan.returncode == 0
    assert any(name in line for line in plan.stdout.splitlines()), plan.stdout
    ledger = f"sqlite:///{tmp_path / 'l.db'}"
    run = tminus("run", "runbook.yaml", "--ledger", ledger, "--json", cwd=tmp_path, env=narrow)
    assert any(name in line for line in run.stderr.splitlines())
    show = tminus("show", json.loads(run.stdout)["run_id"], "--ledger", ledger, cwd=tmp_path, env=narrow)
    assert show.returncode == 0
    assert any(name in line for line in show.stdout.splitlines()), show.stdout


def test_a_firing_monitor_rule_is_an_error_at_the_rule(tmp_path: Path) -> None:
    with backends("live") as b:
        b["live"].healthy = False  # fine for the phases, breaching once the window opens
        write_runbook(tmp_path, f"""
            version: 1
            name: fires
            phases:
              - name: p
                steps:
                  - run: "touch marker"
                    undo:
                      - run: "rm marker"
            monitor:
              duration: 5s
              interval: 100ms
              probes:
                - name: health
                  http: "http://{b['live'].address}/healthz"
              rules:
                - name: down, really
                  probe: health
                  when: status >= 500
                  consecutive: 2
        """)
        out = tminus("run", "runbook.yaml", "--ledger", f"sqlite:///{tmp_path / 'l.db'}", cwd=tmp_path,
                     env=gha(tmp_path))
    assert out.returncode == 11, out.stderr
    found = commands(out.stdout)
    assert found[0].startswith("::error file=runbook.yaml,line=16,col=7,"
                               "title=tminus%3A monitor rule 'down%2C really' firing (action rollback)::"), found
    assert found[-1].split("::")[2].startswith("ROLLED BACK (exit 11)")


def test_an_invalid_runbook_given_to_run_is_annotated_on_stderr(tmp_path: Path) -> None:
    write_runbook(tmp_path, BAD)
    out = tminus("run", "runbook.yaml", "--json", cwd=tmp_path, env=gha(tmp_path))
    assert out.returncode == 78 and out.stdout == ""
    assert commands(out.stderr)[0] == ("::error file=runbook.yaml,line=3,col=1,title=tminus%3A nme"
                                       "::unknown key 'nme'")


def test_a_secret_in_a_failed_step_stays_masked_in_its_annotation(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        version: 1
        name: sec
        secrets: [MY_TOKEN]
        gates:
          - name: g
            checks:
              - name: leaks
                run: "echo {{ secrets.MY_TOKEN | shquote }}; exit 1"
    """)
    out = tminus("gate", "runbook.yaml", "--ledger", f"sqlite:///{tmp_path / 'l.db'}", cwd=tmp_path,
                 env=gha(tmp_path, MY_TOKEN="hunter2-canary"))
    assert out.returncode == 10
    assert commands(out.stdout)[0].endswith("::exit_code == 0: expected 0, got 1%0Astdout: ***")
    assert "hunter2-canary" not in out.stdout + out.stderr


def test_tminus_rollback_annotates_a_failed_undo_at_its_line(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        version: 1
        name: undo-fails
        phases:
          - name: p
            steps:
              - name: change
                run: "true"
                undo:
                  - name: undo that fails
                    run: "echo nope; exit 2"
    """)
    ledger = f"sqlite:///{tmp_path / 'l.db'}"
    run = tminus("run", "runbook.yaml", "--json", "--ledger", ledger, cwd=tmp_path)
    run_id = json.loads(run.stdout)["run_id"]
    # the run recorded the runbook's absolute path: the annotation names it in the workspace
    out = tminus("rollback", run_id, "--reason", "test", "--ledger", ledger, cwd=tmp_path, env=gha(tmp_path))
    assert out.returncode == 12, out.stderr
    found = commands(out.stdout)
    assert found[0] == ("::error file=runbook.yaml,line=9,col=13,title=tminus%3A step 'undo that fails' failed "
                        "[phases[0].steps[0].undo[0]]::exit_code == 0: expected 0, got 2%0Astdout: nope")
    assert found[1].startswith(f"::notice file=runbook.yaml,title=tminus run {run_id}::ROLLBACK FAILED (exit 12): ")
    assert len(found) == 2
