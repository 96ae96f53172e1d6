"""Validation of a phase's guard: the monitor's probe and rule checks at the guard's own positions,
and what a guard cannot do (pause, a baseline ratio), each with its line and a fix; a rule that needs
more time than the phase's budget is a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from tminus.errors import RunbookError
from tminus.runbook.loader import load_runbook
from tminus.runbook.validate import semantic_warnings

GOOD = """\
name: guarded
channels:
  ops: {url: "http://127.0.0.1:9/hook"}
phases:
  - name: Restart
    budget: 30s
    guard:
      interval: 1s
      settle: 2s
      notify: [ops]
      probes:
        - name: bind
          tcp: {port: 8080}
        - name: health
          http: {url: "http://127.0.0.1:8080/health"}
      rules:
        - name: bind stable
          probe: bind
          when: open == false
          consecutive: 2
        - name: healthy
          probe: health
          when: status >= 500
          for: 5s
          action: notify
    steps:
      - name: restart
        run: "true"
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "runbook.yaml"
    path.write_text(text)
    with pytest.raises(RunbookError) as err:
        load_runbook(path)
    return [f"{p.location.line}:{p.location.column}: {p.message} | {p.hint}" for p in err.value.problems]


def test_a_guard_loads_and_its_probes_have_keys_of_their_phase(tmp_path: Path) -> None:
    path = tmp_path / "runbook.yaml"
    path.write_text(GOOD)
    doc = load_runbook(path)
    guard = doc.runbook.phases[0].guard
    assert guard is not None and guard.interval == 1.0 and guard.settle == 2.0
    assert [p.key for p in guard.probes] == ["phases[0].guard.probes[0]", "phases[0].guard.probes[1]"]
    assert semantic_warnings(doc.runbook, doc.source) == []


def test_a_rule_naming_an_unknown_probe_is_refused_at_its_position(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("probe: bind", "probe: bnd"))
    assert found == ["18:11: rule 'bind stable' reads probe 'bnd', which is not defined | did you mean 'bind'?"]


def test_a_rule_must_name_its_probe_when_the_guard_has_several(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("          probe: bind\n", ""))
    assert len(found) == 1 and "rule 'bind stable' must name its probe: there are 2" in found[0]
    assert found[0].startswith("17:")


def test_a_guard_cannot_pause(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("action: notify", "action: pause"))
    assert len(found) == 1 and found[0].startswith("25:11: rule 'healthy': a guard cannot pause")
    assert "use action: rollback" in found[0]


def test_a_guard_takes_no_baseline_so_ratio_rules_are_refused(tmp_path: Path) -> None:
    ratio = "ratio: {query: 'status', above: 2}"
    found = problems(tmp_path, GOOD.replace("when: status >= 500\n          for: 5s", ratio))
    assert len(found) == 1 and "compares with a baseline, but a guard takes none" in found[0]


def test_probe_and_guard_mistakes_are_all_reported(tmp_path: Path) -> None:
    text = (GOOD.replace("interval: 1s", "interval: 0s").replace("notify: [ops]", "notify: [opps]")
            .replace("          tcp: {port: 8080}", "          sql: {url: 'sqlite:///x.db', query: 'delete from t', "
                     "write: true}\n          expect: [rows == 0]"))
    found = problems(tmp_path, text)
    assert any(f.startswith("8:") and "guard interval must be more than 0" in f for f in found)
    assert any("unknown channel 'opps'" in f and "did you mean 'ops'" in f for f in found)
    assert any("a probe must be a check, not a 'sql' step" in f for f in found)
    assert any("a probe's expect is not used: the guard's rules judge its samples" in f for f in found)


def test_duplicate_probe_and_rule_names_are_refused(tmp_path: Path) -> None:
    text = GOOD.replace("name: healthy", "name: bind stable").replace("name: health\n", "name: bind\n")
    found = problems(tmp_path, text)
    assert any("duplicate probe name 'bind'" in f for f in found)
    assert any("duplicate rule name 'bind stable'" in f for f in found)


def test_a_guard_needs_probes_and_rules(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.split("      rules:")[0] + "      rules: []\n    steps: [{run: 'true'}]\n")
    assert len(found) == 1 and "rules" in found[0]


def test_a_guard_probe_template_sees_only_steps_before_its_phase(tmp_path: Path) -> None:
    text = GOOD.replace("tcp: {port: 8080}", "tcp: {port: '{{ steps.later.stdout }}'}").replace(
        '        run: "true"', '        id: later\n        run: "true"')
    found = problems(tmp_path, text)
    assert any("later" in f for f in found)


def test_a_rule_longer_than_the_phase_budget_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "runbook.yaml"
    path.write_text(GOOD.replace("for: 5s", "for: 45s"))
    doc = load_runbook(path)  # valid: the phase may run over its budget
    [warning] = semantic_warnings(doc.runbook, doc.source)
    assert warning.location is not None and warning.location.line == 24
    assert "needs 45s of samples, longer than the phase's budget (30s)" in warning.message
