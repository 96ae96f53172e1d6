"""run.started, run.resumed and run.finished: the processes that ran the run. When one is gone (a
resume, an end), what it still had running was interrupted and its open requests are closed."""

from __future__ import annotations

from tminus.projection.fact import Fact
from tminus.projection.folds.sections import close_implicit
from tminus.projection.model import INTERRUPTED, RUNNING, RunMark
from tminus.projection.state import ViewState


def run_started(view: ViewState, f: Fact) -> None:
    if view.started is None:
        view.started = _mark(f)


def run_resumed(view: ViewState, f: Fact) -> None:
    _cut_short(view)
    view._acting, view._unlinked = None, []  # a new process: a new stop channel
    view.resumes.append(_mark(f))


def run_finished(view: ViewState, f: Fact) -> None:
    _cut_short(view)
    close_implicit(view)
    for a in view._waiting.values():
        a.closed = True
    view._waiting.clear()
    view.finishes.append(_mark(f))


def _cut_short(view: ViewState) -> None:
    """The process that ran these steps is gone: what still runs was interrupted."""
    stop = view._acting
    for e in view._in_flight.values():
        if e.status == RUNNING:
            e.status = INTERRUPTED
            if stop is not None and stop.mode == "interrupt" and (e.started_seq or 0) < stop.seq:
                e.stopped, e.stop = stop.mode, stop  # cut short by the interrupt, not by a crash


def _mark(f: Fact) -> RunMark:
    d = f.data
    code = d.get("exit_code")
    return RunMark(f.seq, f.at, d.get("operator"), d.get("host"), d.get("reason"), d.get("action"),
                   dict(d.get("interrupted") or {}), dict(d.get("overrides") or {}), d.get("status"),
                   code if isinstance(code, int) else None, d)
