"""deadline.exceeded and deadline.answered: a deadline that passed, and what came of it."""

from __future__ import annotations

from tminus.projection.fact import Fact, number
from tminus.projection.model import DeadlineAlert
from tminus.projection.state import ViewState


def exceeded(view: ViewState, f: Fact) -> None:
    d = f.data
    view.alerts.append(DeadlineAlert(f.seq, f.at, str(d.get("deadline")), number(d.get("after")),
                                     d.get("action"), number(d.get("elapsed")), data=dict(d)))


def answered(view: ViewState, f: Fact) -> None:
    d = f.data
    alert = next((a for a in reversed(view.alerts) if a.id == d.get("deadline")), None)
    if alert is None:  # an answer without its alert (a partial ledger): keep what it says
        alert = DeadlineAlert(f.seq, f.at, str(d.get("deadline")), None, None)
        view.alerts.append(alert)
    alert.outcome, alert.by, alert.how = d.get("outcome"), d.get("by"), d.get("how")
    alert.data.update(d)
