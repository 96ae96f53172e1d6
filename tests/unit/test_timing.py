"""The cutover time and stage offsets: parsing, printing, and hostile values refused at their position."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import write_runbook

from tminus.engine.prerequisites import format_age
from tminus.errors import RunbookError
from tminus.runbook.loader import load_runbook
from tminus.runbook.timing import format_at, format_offset, parse_at, stage_offset


@pytest.mark.parametrize(("text", "utc"), [
    ("2026-12-05T22:00Z", "2026-12-05T22:00:00Z"),
    ("2026-12-05T23:00+01:00", "2026-12-05T22:00:00Z"),
    ("2026-12-05 17:00:00-05:00", "2026-12-05T22:00:00Z"),
])
def test_a_cutover_time_has_a_zone(text: str, utc: str) -> None:
    assert format_at(parse_at(text).timestamp()) == utc


@pytest.mark.parametrize(("value", "words"), [
    ("2026-12-05T22:00", "has no zone"),
    ("2026-12-05", "has no zone"),
    ("tomorrow", "is not an ISO 8601 time"),
    ("", "is not an ISO 8601 time"),
    ("2026-13-05T22:00Z", "is not an ISO 8601 time"),
    ("0001-01-01T00:00+14:00", "out of range"),
    ("9999-12-31T23:59-14:00", "out of range"),
    (1733436000, "expected a cutover time, got int"),
    (None, "expected a cutover time, got NoneType"),
])
def test_junk_is_not_a_cutover_time(value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words) as caught:
        parse_at(value)
    assert "2026-12-05T22:00Z" in getattr(caught.value, "hint", "")


@pytest.mark.parametrize(("text", "seconds", "printed"), [
    ("T-48h", 172800, "T-48h"), ("T-2d", 172800, "T-48h"), ("T-2h30m", 9000, "T-2h30m"),
    (" T-90s ", 90, "T-1m30s"), ("T-1h0m1s", 3601, "T-1h1s"),
])
def test_a_stage_is_a_duration_before_the_cutover(text: str, seconds: float, printed: str) -> None:
    assert stage_offset(text) == seconds
    assert format_offset(stage_offset(text)) == printed


@pytest.mark.parametrize(("value", "words"), [
    ("T+2h", "is not a stage"), ("48h", "is not a stage"), ("T-", "is not a stage"), ("t-2h", "is not a stage"),
    ("T-2x", "'2x' is not a duration"), ("T--2h", "'-2h' is not a duration"), ("T-0s", "the cutover itself"),
    ("T-367d", "more than 366 days"), ("T-1e400h", "not a duration"), (48, "got int"),
])
def test_junk_is_not_a_stage(value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        stage_offset(value)


def test_ages_read_to_the_unit_that_matters() -> None:
    assert [format_age(s) for s in (0, 40, 720, 19800, 3600, 187200, 777600)] == [
        "0s", "40s", "12m", "5h30m", "1h", "2d4h", "9d"]


def test_hostile_times_in_a_runbook_are_refused_at_their_position(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: hostile
        at: "2026-12-05T22:00"
        require_stages: true
        requires:
          - {runbook: other, environment: "{{ vars.nope }}", outcome: finished, within: forever}
          - {runbook: other}
        gates:
          - name: a
            stage: T+2h
            checks: [{run: "true"}]
          - name: b
            stage: [T-2h]
            checks: [{run: "true"}]
          - name: c
            stage: "T-0ms"
            checks: [{run: "true"}]
    """)
    with pytest.raises(RunbookError) as caught:
        load_runbook(tmp_path / "runbook.yaml")
    found = sorted((p.location.line, p.location.column, p.message) for p in caught.value.problems
                   if p.location is not None and p.location.line is not None and p.location.column is not None)
    assert [(line, column) for line, column, _ in found] == [(2, 1), (5, 54), (5, 73), (6, 5), (9, 5), (12, 5), (15, 5)]
    messages = " | ".join(m for _, _, m in found)
    for words in ("has no zone", "expected 'completed', 'rolled_back'", "'forever' is not a duration",
                  "missing required key 'environment'", "'T+2h' is not a stage", "the cutover itself"):
        assert words in messages, messages


def test_template_names_in_at_and_requires_are_checked(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: templated
        vars: {when: "2026-12-05T22:00Z", env: staging}
        at: "{{ vars.whenn }}"
        require_stages: true
        requires:
          - {runbook: other, environment: "{{ steps.x.y }}"}
        gates:
          - name: a
            checks: [{run: "true"}]
    """)
    with pytest.raises(RunbookError) as caught:
        load_runbook(tmp_path / "runbook.yaml")
    rendered = [p.render() for p in caught.value.problems]
    assert any(r.startswith(f"{tmp_path / 'runbook.yaml'}:3:1: undefined variable vars.whenn") and
               "did you mean 'when'?" in r for r in rendered), rendered
    assert any(":4:1: require_stages: true, but no gate has a stage" in r for r in rendered), rendered
    assert any(":6:22: steps.x: no step has the id 'x'" in r for r in rendered), rendered
