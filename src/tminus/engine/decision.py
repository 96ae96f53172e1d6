"""The go/no-go decision after verify: automatic, or an operator's answer (a second person's when the
runbook asks for one). A go lets the run complete (or watch its monitor window); a no-go takes the
undo path. The criteria shown and recorded are the verify checks' verdicts.
"""

from __future__ import annotations

from typing import Any

from tminus import events as ev
from tminus.engine.lifecycle import Next, Section, SectionResult
from tminus.engine.run_state import RunState

DECISION_KEY = "decision"  # the step key of `decision` events and of the approval asked for


def decide(state: RunState, section: Section) -> SectionResult:
    decision = state.rb.decision
    steps = state.steps
    criteria = _criteria(state)
    if decision.mode == "auto":
        steps.emit(ev.DECISION, DECISION_KEY, mode="auto", verdict="go", criteria=criteria,
                   reason="every verify check passed")
        state.go_reason = "every verify check passed; decision: go"
        return SectionResult(reason=state.go_reason, data={"verdict": "go"})
    approvals = steps.approvals
    if approvals is None:
        return SectionResult(Next.NEEDS_OPERATOR, ok=False, reason="a manual decision needs an operator")
    prompt = decision.prompt or f"Go/no-go for '{state.rb.name}': keep the new state?"
    if decision.require_second_person:  # the one who started the run may not approve it
        approval = approvals.request(DECISION_KEY, prompt, _criteria_text(criteria), decision.timeout,
                                     second_person_of=getattr(approvals, "operator", None) or "")
    else:
        approval = approvals.request(DECISION_KEY, prompt, _criteria_text(criteria), decision.timeout)
    verdict = "go" if approval.approved else "no-go"
    steps.emit(
        ev.DECISION, DECISION_KEY, mode="manual", verdict=verdict, criteria=criteria,
        by=approval.by, how=approval.how, reason=approval.reason,
    )
    if approval.approved:
        state.go_reason = f"decision: go (by {approval.by}, {approval.how})"
        return SectionResult(reason=state.go_reason, data={"verdict": verdict})
    state.check_stop()
    why = f"decision: no-go by {approval.by} ({approval.how})"
    if approval.reason:
        why += f": {approval.reason}"
    return SectionResult(Next.ROLLBACK, ok=False, reason=why, data={"verdict": verdict})


def _criteria(state: RunState) -> list[dict[str, Any]]:
    """The verify checks' verdicts, as the decision records and shows them."""
    by_key = state.doc.step_by_key()
    return [
        {
            "check": by_key[k].title,
            "key": k,
            "verdict": "pass" if o.ok else "fail",
            "evidence": [v.get("message") for v in o.verdicts],
        }
        for k, o in state.done.items()
        if k.startswith("verify")
    ]


def _criteria_text(criteria: list[dict[str, Any]]) -> str:
    lines = [f"  [{c['verdict']}] {c['check']}" for c in criteria]
    return "Criteria:\n" + "\n".join(lines) if lines else "No verify checks."


__all__ = ["DECISION_KEY", "decide"]
