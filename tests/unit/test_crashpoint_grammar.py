"""The test-only crash point's grammar: inert unless asked (ledger/crashpoint.py)."""

from __future__ import annotations

from tminus.ledger.crashpoint import parse


def test_inert_without_the_variables() -> None:
    assert parse(None, None) is None
    assert parse("", "") is None


def test_an_index_a_type_and_its_occurrence_and_the_group() -> None:
    at = parse("7", None)
    assert at is not None and (at.index, at.type_, at.group) == (7, None, False)
    typed = parse("group:step.effect:3", None)
    assert typed is not None and (typed.index, typed.type_, typed.occurrence, typed.group) == (
        None, "step.effect", 3, True)
    first = parse("rollback.started", None)
    assert first is not None and (first.type_, first.occurrence) == ("rollback.started", 1)


def test_counting_only_never_fires(tmp_path) -> None:
    point = parse(None, str(tmp_path / "appends"))
    assert point is not None
    for type_ in ("run.started", "step.started", "run.finished"):
        point.committed(type_)  # would SIGKILL this test if it fired
    assert (tmp_path / "appends").read_text().splitlines() == ["1 run.started", "2 step.started", "3 run.finished"]
