"""approval.requested, approval.given and decision: operators' answers, and the go/no-go, whose
section is read from its approval and its decision (it has no section.* events of its own)."""

from __future__ import annotations

from tminus.projection.fact import Fact, number
from tminus.projection.folds.sections import close_section, open_section
from tminus.projection.model import RUNNING, Answer, Approval, Decision
from tminus.projection.state import ViewState
from tminus.projection.times import epoch

DECISION_SECTION = "decision"  # the go/no-go: its section id and the key its approval is asked under


def approval_requested(view: ViewState, f: Fact) -> None:
    d = f.data
    a = Approval(f.step_key, f.seq, f.at, d.get("prompt"), d.get("instructions"), number(d.get("timeout")),
                 bool(d.get("second_person")), d.get("operator"), data=d)
    view.approvals.append(a)
    view._waiting[f.step_key] = a
    if f.step_key == DECISION_SECTION:
        open_section(view, f, DECISION_SECTION, implicit=True)


def approval_given(view: ViewState, f: Fact) -> None:
    d = f.data
    a = view._waiting.pop(f.step_key, None) or next(
        (x for x in reversed(view.approvals) if x.key == f.step_key and x.answer is None), None)
    if a is None:  # the answer without its request
        a = Approval(f.step_key, None, None)
        view.approvals.append(a)
    a.answer = Answer(f.seq, f.at, bool(d.get("approved")), d.get("by"), d.get("how"), d.get("reason"),
                      epoch(d.get("at")), d.get("approval_id"), d)


def decision(view: ViewState, f: Fact) -> None:
    d = f.data
    view.decisions.append(Decision(f.seq, f.at, d.get("mode"), d.get("verdict"), d.get("by"), d.get("how"),
                                   d.get("reason"), list(d.get("criteria") or []), d))
    s = view.section(DECISION_SECTION)
    if s is None or s.status != RUNNING:
        s = open_section(view, f, DECISION_SECTION, implicit=True)
    if s.implicit:
        close_section(view, f, DECISION_SECTION, d.get("verdict") == "go")
