"""Validation of the monitor section and channels: each mistake named with its line and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tminus.errors import RunbookError
from tminus.runbook.loader import load_runbook

GOOD = """\
name: watched
channels:
  ops: {url: "http://127.0.0.1:9/hook"}
monitor:
  duration: 1m
  interval: 5s
  notify: [ops]
  probes:
    - name: health
      http: {url: "http://127.0.0.1:9/health"}
    - name: errors
      prometheus: {url: "http://127.0.0.1:9090", query: "sum(rate(errors[1m]))"}
  rules:
    - name: pool saturated
      probe: health
      when: 'jsonpath "$.saturation" >= 0.90'
      consecutive: 3
    - name: error rate
      probe: errors
      when: "value > 0.05"
      for: 2m
      action: pause
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "runbook.yaml"
    path.write_text(text)
    with pytest.raises(RunbookError) as err:
        load_runbook(path)
    return [f"{p.location.line}: {p.message} | {p.hint}" for p in err.value.problems]


def test_a_complete_monitor_section_loads(tmp_path: Path) -> None:
    path = tmp_path / "runbook.yaml"
    path.write_text(GOOD)
    doc = load_runbook(path)
    assert doc.runbook.monitor is not None
    assert [p.key for p in doc.runbook.monitor.probes] == ["monitor.probes[0]", "monitor.probes[1]"]


def test_a_rule_naming_an_unknown_probe_gets_a_suggestion(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("probe: health", "probe: helth"))
    assert found == ["15: rule 'pool saturated' reads probe 'helth', which is not defined | did you mean 'health'?"]


def test_a_rule_must_name_its_probe_when_there_are_several(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("      probe: health\n", ""))
    assert len(found) == 1 and "must name its probe: there are 2" in found[0]


def test_unknown_channels_and_side_effect_probes_are_refused(tmp_path: Path) -> None:
    text = GOOD.replace("notify: [ops]", "notify: [opps]").replace(
        "      http: {url: \"http://127.0.0.1:9/health\"}", "      run: \"true\"\n      undo: [{run: \"true\"}]")
    found = problems(tmp_path, text)
    assert any("unknown channel 'opps'" in f and "did you mean 'ops'" in f for f in found)
    assert any("a probe cannot have undo" in f for f in found)


def test_a_rule_needs_exactly_one_mode(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("      consecutive: 3\n", ""))
    assert len(found) == 1 and "exactly one of for, consecutive, increase, ratio, error_rate" in found[0]


def test_a_notify_step_must_name_a_defined_channel(tmp_path: Path) -> None:
    text = GOOD + "phases:\n  - name: announce\n    steps:\n      - notify: {channel: pager, message: hi}\n"
    found = problems(tmp_path, text)
    assert found and "unknown channel 'pager'" in found[0]


def test_an_interval_longer_than_the_window_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("interval: 5s", "interval: 2m"))
    assert found and "no probe would run" in found[0]


def test_the_plan_shows_the_monitor_window_and_each_rule(tmp_path: Path) -> None:
    from tminus.engine.context import Options
    from tminus.engine.plan import build_plan

    path = tmp_path / "runbook.yaml"
    path.write_text(GOOD.replace("decision:", "x:") + "decision: {mode: manual, require_second_person: true}\n")
    plan = build_plan(load_runbook(path), Options(environment="default", environ={}))
    assert plan.decision["second_person"] is True
    assert plan.monitor is not None and plan.monitor["duration"] == 60 and plan.monitor["interval"] == 5
    assert [p.title for p in plan.monitor["probes"]] == ["health", "errors"]
    assert plan.monitor["rules"][0]["rule"] == 'jsonpath "$.saturation" >= 0.90 for 3 consecutive probes'
    assert plan.monitor["rules"][1]["rule"] == "value > 0.05 for 120s" and plan.monitor["rules"][1]["action"] == "pause"


def test_a_ratio_rule_needs_a_baseline(tmp_path: Path) -> None:
    ratio = "    - name: retries\n      probe: health\n      ratio: {query: 'jsonpath \"$.retries\"', above: 2}\n"
    found = problems(tmp_path, GOOD + ratio)
    assert len(found) == 1 and "compares with a baseline, but the monitor takes none" in found[0]
    path = tmp_path / "ok.yaml"
    path.write_text(GOOD.replace("  interval: 5s\n", "  interval: 5s\n  baseline: 2m\n") + ratio)
    assert load_runbook(path).runbook.monitor is not None


def test_a_probes_own_expect_is_refused_not_silently_ignored(tmp_path: Path) -> None:
    text = GOOD.replace("      http: {url: \"http://127.0.0.1:9/health\"}",
                        "      http: {url: \"http://127.0.0.1:9/health\"}\n      expect: [status == 200]")
    found = problems(tmp_path, text)
    assert len(found) == 1, found
    assert found[0].startswith("11: a probe's expect is not used: the monitor's rules judge its samples")
    assert "when: 'not (status == 200)'" in found[0] and "probe: health" in found[0]
