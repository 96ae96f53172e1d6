"""How a rehearsal cycle is judged from its figures (engine/rehearsal/cycles.py `judge`): which exit
it calls for and what it says. The cycles themselves run in tests/integration/test_rehearse.py."""

from __future__ import annotations

import pytest

from tminus.engine.exitcodes import Exit
from tminus.engine.rehearsal.cycles import judge


@pytest.mark.parametrize(("figures", "found", "code", "problem"), [
    ({"status": "rollback_failed", "rollback_ok": False}, [], Exit.ROLLBACK_FAILED,
     "the cycle's run ended rollback_failed, not rolled back"),
    ({"status": "rollback_failed", "rollback_ok": False}, ["the kill switch ended aborted: x"], Exit.ROLLBACK_FAILED,
     "the kill switch ended aborted: x"),
    ({"status": "completed"}, [], Exit.FAILED, "the cycle's run ended completed, not rolled back"),
    ({"status": None}, [], Exit.FAILED, "the cycle's run ended without an end, not rolled back"),
    ({"status": "rolled_back", "rollback_ok": True,
      "fingerprints": {"equal": False, "expected": True, "differences": ["table audit: 0 rows vs 1 rows"]}},
     [], Exit.COMPLETED, None),
])
def test_judging_a_cycle(figures: dict, found: list, code: Exit, problem: str | None) -> None:
    problems, got = judge(figures, found)
    assert got == code and (problems[:1] == [problem] if problem else problems == [])


def test_every_problem_is_kept_and_the_worst_exit_wins() -> None:
    figures = {"status": "rolled_back", "rollback_ok": True,
               "undo_failed": [{"step": "phases[0].undo[0]", "name": None, "error": "exit 1"}],
               "fingerprints": {"equal": False, "expected": False, "differences": [f"d{i}" for i in range(7)],
                                "errors": ["db2: unreachable"]}}
    problems, code = judge(figures, [])
    assert code == Exit.ROLLBACK_FAILED
    assert problems == ["undo step 'phases[0].undo[0]' failed: exit 1",
                        "state not restored: 7 difference(s): d0; d1; d2; d3; d4 ...",
                        "fingerprint: db2: unreachable"]


def test_a_blocked_cycle_calls_for_exit_10() -> None:
    assert judge({"status": "blocked"}, []) == (["blocked by its gates: nothing ran"], Exit.BLOCKED)
