"""monitor.started, .sample, .transition, .action and .finished: the baseline and the watch window,
the samples they read, the rules' transitions and what their actions did."""

from __future__ import annotations

from tminus.projection.fact import Fact, number
from tminus.projection.folds.sections import close_section, open_section
from tminus.projection.model import MonitorAction, MonitorEnd, MonitorSample, MonitorStage, MonitorTransition
from tminus.projection.state import ViewState


def monitor_started(view: ViewState, f: Fact) -> None:
    d = f.data
    m = view.monitor
    stage = str(d.get("stage") or "window")
    cut = number(d.get("cutover_at"))
    m.stages.append(MonitorStage(f.seq, f.at, stage, number(d.get("duration")), number(d.get("interval")),
                                 list(d.get("probes") or []), list(d.get("rules") or []), cut, data=d))
    if cut is not None and not any(s.stage == "window" and s.cutover_at is not None for s in m.stages[:-1]):
        m.cutover_at = cut  # the first window's; before it, the last baseline's
    if stage == "window":
        started = f.at or 0.0
        m.window_segments.append([started, started])
        if view.cutover_at is None and cut is not None:
            view.cutover_at = cut  # a watch-only run has no phases
    open_section(view, f, _section_id(stage), implicit=True, kind="monitor", name=stage)


def monitor_sample(view: ViewState, f: Fact) -> None:
    d = f.data
    at = d.get("at")
    at = float(at) if isinstance(at, int | float) else f.at
    if at is None:
        return
    stage = str(d.get("stage") or "window")
    view.monitor.samples.append(MonitorSample(f.seq, at, str(d.get("probe")), stage, d.get("values"),
                                              d.get("error"), f.step_key, d))
    if stage == "window" and view.monitor.window_segments:
        view.monitor.window_segments[-1][1] = at


def monitor_transition(view: ViewState, f: Fact) -> None:
    d = f.data
    timed = isinstance(d.get("at"), int | float)
    view.monitor.transitions.append(MonitorTransition(
        f.seq, float(d["at"]) if timed else f.at, d.get("rule"), d.get("to"), d.get("from"), d.get("reason"),
        d.get("probe"), d.get("action"), d.get("stage"), d.get("sample"), list(d.get("recent") or []), timed, d))


def monitor_action(view: ViewState, f: Fact) -> None:
    d = f.data
    view.monitor.actions.append(MonitorAction(f.seq, f.at, d.get("rule"), d.get("action"), d.get("outcome"),
                                              d.get("reason"), d.get("by"), d.get("how"), d))
    if d.get("outcome") == "continue" and f.at is not None:
        view.monitor.pause_answers[str(d.get("rule"))] = f.at


def monitor_finished(view: ViewState, f: Fact) -> None:
    d = f.data
    m = view.monitor
    stage = str(d.get("stage") or "window")
    end = MonitorEnd(f.seq, f.at, bool(d.get("ok")), d.get("outcome"), d.get("reason"),
                     d.get("samples"), list(d.get("fired") or []), d)
    open_stage = next((s for s in reversed(m.stages) if s.stage == stage and s.end is None), None)
    if open_stage is not None:
        open_stage.end = end
    else:  # an end without its start: keep it on a stage of its own
        m.stages.append(MonitorStage(f.seq, None, stage, None, None, end=end, announced=False))
    if stage == "baseline" and end.ok:
        m.baseline_done = True
    close_section(view, f, _section_id(stage), end.ok)


def _section_id(stage: str) -> str:
    """The window is the `monitor` section; a baseline is a section named after its stage."""
    return "monitor" if stage == "window" else stage
