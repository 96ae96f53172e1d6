"""note, notify.sent and notify.failed: what the run noted on the way (a manifest, an unlock, a
refused self-approval...) and the webhooks it delivered or failed to."""

from __future__ import annotations

from tminus import events as ev
from tminus.projection.fact import Fact
from tminus.projection.model import Note, Notification
from tminus.projection.state import ViewState


def note(view: ViewState, f: Fact) -> None:
    d = f.data
    view.notes.append(Note(f.seq, f.at, f.step_key, d.get("action"), d.get("message"), d.get("by"),
                           d.get("reason"), d))


def notified(view: ViewState, f: Fact) -> None:
    d = f.data
    view.notifications.append(Notification(f.seq, f.at, f.type == ev.NOTIFY_SENT, d.get("channel"),
                                           d.get("url"), d.get("attempts"), d.get("status"), d.get("error"), d))
