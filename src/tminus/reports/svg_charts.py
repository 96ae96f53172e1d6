"""The geometry of the HTML report's charts: the run's timeline (planned vs actual on a T+ axis) and
one small chart per monitor rule, as lists of plain shapes.

Shapes carry numbers, CSS classes and words; the template (templates/report.html.j2, autoescape on)
turns them into inline SVG, so every label a runbook or a probe wrote is escaped there, in one place.
Numbers are made safe here: a NaN, an infinity or a missing time never reaches a coordinate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tminus.durations import format_duration
from tminus.reports.report_monitor import RuleChart, StageReport
from tminus.reports.run_report import RunReport, SectionReport, StepReport

LABEL_CHARS = 40  # a label longer than this is cut in the chart (the full text is its tooltip)


@dataclass
class Shape:
    tag: str  # rect | line | text | circle | polyline | path (only these: the template spells them)
    cls: str
    attrs: dict[str, float | str] = field(default_factory=dict)
    text: str | None = None
    title: str | None = None  # a tooltip, and what a screen reader says


@dataclass
class Chart:
    id: str
    width: float
    height: float
    title: str
    shapes: list[Shape] = field(default_factory=list)

    def add(self, tag: str, cls: str, text: str | None = None, title: str | None = None,
            **attrs: float | str) -> None:
        self.shapes.append(Shape(tag, cls, {k.replace("_", "-"): _fmt(v) for k, v in attrs.items()}, text, title))


def num(x: Any) -> float | None:
    """A finite float, or None (NaN, infinities, text, None)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def tplus(seconds: float) -> str:
    """A T+ label: T+0, T+0.25s, T+5s, T+2m30s, T-0.03s."""
    sign = "-" if seconds < 0 else "+"
    s = abs(seconds)
    if s < 5e-4:
        return "T+0"
    if s < 60:
        return f"T{sign}{float(f'{s:.3g}'):g}s"
    if s < 3600 and s % 60 == 0:
        return f"T{sign}{int(s // 60)}m"
    if s % 3600 == 0:
        return f"T{sign}{int(s // 3600)}h"
    return f"T{sign}{format_duration(s)}"


def cut(text: str | None, limit: int = LABEL_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(v: float | str) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def nice_ticks(lo: float, hi: float, count: int = 8) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    span = hi - lo
    if not span > 0:
        return [lo]
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def time_ticks(lo: float, hi: float, count: int = 8) -> list[float]:
    """Ticks for a T+ axis: below a second as nice_ticks, above on clock steps (15s, 5m, 1h...)."""
    span = hi - lo
    if not span > 0 or span / count < 1:
        return nice_ticks(lo, hi, count)
    step = next((float(s) for s in _TIME_STEPS if s >= span / count), None)
    if step is None:
        return nice_ticks(lo, hi, count)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


class _Scale:
    def __init__(self, lo: float, hi: float, a: float, b: float) -> None:
        if not hi - lo >= 0.01:  # a zero-length run still gets an axis (10ms at least)
            hi = lo + max(0.01, abs(lo) * 0.1)
        self.lo, self.hi, self.a, self.b = lo, hi, a, b

    def __call__(self, v: float) -> float:
        """The coordinate of `v`, kept inside the plot (a zoomed chart cuts what lies beyond it)."""
        at = self.a + (v - self.lo) / (self.hi - self.lo) * (self.b - self.a)
        return min(max(at, min(self.a, self.b)), max(self.a, self.b))


# --- the timeline ------------------------------------------------------------------------------

W, LABELS, RIGHT, TOP, BOTTOM = 1000.0, 300.0, 70.0, 34.0, 30.0
SECTION_ROW, STEP_ROW = 24.0, 17.0


def _section_label(s: SectionReport) -> str:
    if s.kind == "phase":
        return f"phase {s.name}"
    if s.kind == "undo":
        return f"undo {s.name}"
    return s.kind if not s.name else f"{s.kind} {s.name}"


def _end(start: float | None, end: float | None, last: float) -> float | None:
    """Where a bar ends: its end, or (still running when the run ended) the end of the chart."""
    if start is None:
        return None
    return end if end is not None else max(start, last)


def _actual_times(report: RunReport) -> list[float]:
    times = [0.0]
    for s in report.sections:
        times += [t for t in (num(s.start), num(s.end)) if t is not None]
        for st in s.steps:
            times += [t for t in (num(st.start), num(st.end)) if t is not None]
    return times


def zoom_needed(report: RunReport) -> bool:
    """Whether what ran fills under a fifth of the full chart (budgets far longer than the run took):
    then a second chart shows only what ran, so its bars can be read."""
    actual = _actual_times(report)
    full = _all_times(report)
    span, whole = max(actual) - min(actual), max(full) - min(full)
    return whole > 0 and span < whole / 5


def timeline(report: RunReport, zoom: bool = False) -> Chart:
    """Rows of sections and their steps; planned bands behind actual bars; T+0, the point of no
    return and the rollback as vertical marks across every row. `zoom`: the axis covers only what
    ran (planned bands are cut at its edge)."""
    times = _actual_times(report) if zoom else _all_times(report)
    stages = report.monitor.stages if report.monitor else []
    lo, hi = min(times), max(times)
    pad = (hi - lo) * 0.02 or 0.5
    last = max(_actual_times(report))  # where a bar still running when the run ended stops
    x = _Scale(lo - pad if lo < 0 else lo, hi + pad, LABELS, W - RIGHT)
    return _draw(report, x, last, stages, "chart-timeline-zoom" if zoom else "chart-timeline",
                 "Timeline of what ran (zoomed)" if zoom else "Timeline: planned vs actual, T+ seconds")


def _all_times(report: RunReport) -> list[float]:
    times: list[float] = [0.0]
    for s in report.sections:
        times += [t for t in (num(s.start), num(s.end)) if t is not None]
        p, b = num(s.planned_start), num(s.budget)
        if p is not None:
            times += [p, p + (b or 0.0)]
        for st in s.steps:
            times += [t for t in (num(st.start), num(st.end)) if t is not None]
    stages = report.monitor.stages if report.monitor else []
    for g in stages:
        start, dur = num(g.start), num(g.duration)
        if start is not None:
            times += [start, start + (dur or 0.0)]
    rb = report.rollback
    if rb is not None:
        times += [t for t in (num(rb.start), num(rb.end)) if t is not None]
    return times


def _draw(report: RunReport, x: _Scale, last: float, stages: list[StageReport], id: str, title: str) -> Chart:
    rb = report.rollback
    rows: list[tuple[str, SectionReport | StepReport]] = []
    for s in report.sections:
        rows.append(("section", s))
        rows += [("step", st) for st in s.steps]
    height = TOP + sum(SECTION_ROW if k == "section" else STEP_ROW for k, _ in rows) + BOTTOM
    chart = Chart(id, W, max(height, TOP + BOTTOM + SECTION_ROW), title)
    plot_bottom = chart.height - BOTTOM

    # grid and axis
    for t in time_ticks(x.lo, x.hi):
        chart.add("line", "grid", x1=x(t), x2=x(t), y1=TOP - 4, y2=plot_bottom)
        chart.add("text", "tick", tplus(t), x=x(t), y=plot_bottom + 16, text_anchor="middle")
    chart.add("line", "axis", x1=LABELS, x2=W - RIGHT, y1=plot_bottom, y2=plot_bottom)

    if rb is not None and num(rb.start) is not None:
        a = num(rb.start) or 0.0
        b = _end(a, num(rb.end), last) or a
        chart.add("rect", "rollback-band", title=f"rollback {tplus(a)} to {tplus(b)}: {rb.reason}",
                  x=x(a), y=TOP - 4, width=max(x(b) - x(a), 2.0), height=plot_bottom - TOP + 4)
        chart.add("text", "band-label", "rollback", x=x(a) + 3, y=TOP - 8)
    chart.add("line", "t0", x1=x(0.0), x2=x(0.0), y1=TOP - 14, y2=plot_bottom)
    chart.add("text", "t0-label", "T+0", x=x(0.0), y=TOP - 18, text_anchor="middle")

    y = TOP
    for kind, item in rows:
        h = SECTION_ROW if kind == "section" else STEP_ROW
        if kind == "section":
            assert isinstance(item, SectionReport)
            _section_row(chart, x, y, h, item, stages, last)
        else:
            assert isinstance(item, StepReport)
            _step_row(chart, x, y, h, item, last, plot_bottom)
        y += h
    if report.point_of_no_return and not any(st.point_of_no_return and num(st.end) is not None
                                              for st in report.steps()):
        chart.add("text", "note", f"point of no return ({report.point_of_no_return}) not reached",
                  x=W - RIGHT, y=TOP - 18, text_anchor="end")
    return chart


def _section_row(chart: Chart, x: _Scale, y: float, h: float, s: SectionReport, stages: list[StageReport],
                 last: float) -> None:
    chart.add("rect", "row-band", x=0.0, y=y, width=W, height=h)
    label = _section_label(s)
    chart.add("text", "label section-label", cut(label), title=label, x=6.0, y=y + h / 2 + 4)
    p, b = num(s.planned_start), num(s.budget)
    if p is not None and b is not None and x(p + b) > x(p):
        words = f"{label}: planned {tplus(p)} to {tplus(p + b)} (budget {format_duration(b)})"
        chart.add("rect", "planned", title=words,
                  x=x(p), y=y + 3, width=max(x(p + b) - x(p), 1.5), height=h - 6)
    if s.kind == "monitor":
        for g in stages:
            gs, gd = num(g.start), num(g.duration)
            if gs is not None and gd is not None and x(gs + gd) > x(gs):
                chart.add("rect", "planned", title=f"monitor {g.stage}: planned {format_duration(gd)}",
                          x=x(gs), y=y + 3, width=max(x(gs + gd) - x(gs), 1.5), height=h - 6)
    start = num(s.start)
    end = _end(start, num(s.end), last)
    if start is None or end is None:
        chart.add("text", "not-run", "not run", x=LABELS + 4, y=y + h / 2 + 4)
        return
    took = f"{tplus(start)} to {tplus(end)} ({format_duration(max(end - start, 0.0))})"
    chart.shapes.append(Shape("rect", f"actual section-bar status-{_cls(s.status)}",
                              {"x": _fmt(x(start)), "y": _fmt(y + 7), "width": _fmt(max(x(end) - x(start), 2.0)),
                               "height": _fmt(h - 14), "data-section": s.id},
                              title=f"{label}: {s.status}, {took}"))
    over, budget = num(s.over_budget), num(s.budget)
    if over is not None and budget is not None and over > 0:
        a = start + budget
        chart.add("rect", "overrun", title=f"{label}: over budget by {format_duration(over)}",
                  x=x(a), y=y + 5, width=max(x(end) - x(a), 2.0), height=h - 10)
        chart.add("text", "overrun-label", f"+{format_duration(over)} over", x=x(end) + 4, y=y + h / 2 + 4)


def _step_row(chart: Chart, x: _Scale, y: float, h: float, st: StepReport, last: float, bottom: float) -> None:
    name = st.name or st.key
    chart.add("text", "label step-label", cut(name, LABEL_CHARS - 2), title=f"{name} ({st.key})",
              x=20.0, y=y + h / 2 + 4)
    start = num(st.start)
    end = _end(start, num(st.end), last)
    if start is None or end is None:
        chart.add("text", "not-run", st.status, x=LABELS + 4, y=y + h / 2 + 4)
        return
    chart.add("rect", f"actual step-bar status-{_cls(st.status)}",
              title=f"{name}: {st.status}, {tplus(start)} to {tplus(end)}",
              x=x(start), y=y + 4, width=max(x(end) - x(start), 2.0), height=h - 8)
    if st.status == "failed":
        chart.add("text", "fail-mark", "✕ failed", x=x(end) + 4, y=y + h / 2 + 4)
    if st.point_of_no_return:
        px = x(end)
        chart.add("line", "ponr", title=f"point of no return: after '{name}' ({tplus(end)})",
                  x1=px, x2=px, y1=TOP - 14, y2=bottom)
        chart.add("path", "ponr-mark", d=f"M{_fmt(px)} {_fmt(y + 2)} l5 {_fmt(h / 2 - 2)} l-5 {_fmt(h / 2 - 2)} "
                                         f"l-5 -{_fmt(h / 2 - 2)} z")
        chart.add("text", "ponr-label", "point of no return", x=px + 4, y=TOP - 18)


def _cls(status: str | None) -> str:
    """A status as a CSS class word: only letters and '-' (a status is ours, but never trusted)."""
    return "".join(c for c in (status or "unknown").lower() if c.isalpha() or c == "-") or "unknown"


# --- a monitor rule ------------------------------------------------------------------------------

MW, MH, ML, MR, MT, MB = 480.0, 190.0, 56.0, 14.0, 22.0, 34.0


def rule_chart(rule: RuleChart, stages: list[StageReport], index: int) -> Chart:
    """The rule's reading of each sample over T+, its threshold, the breach side shaded, the stages
    (baseline, window) as bands, and every move to firing marked."""
    chart = Chart(f"chart-rule-{index}", MW, MH, f"Monitor rule {rule.name}")
    pts = [(t, num(p.value), p) for p in rule.points if (t := num(p.t)) is not None]
    ts = [t for t, _, _ in pts] + [t for tr in rule.transitions if (t := num(tr.get("t"))) is not None]
    for g in stages:
        if (gs := num(g.start)) is not None:
            ts.append(gs)
    if not ts:
        ts = [0.0]
    step = min((num(g.interval) or 0.0) for g in stages) if stages else 0.0
    x = _Scale(min(ts), max(ts) + (step or (max(ts) - min(ts)) * 0.05 or 1.0), ML, MW - MR)
    values = [v for _, v, _ in pts if v is not None]
    threshold = num(rule.threshold)
    ys = values + ([threshold] if threshold is not None else [])
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    pad = (hi - lo) * 0.15 or (abs(hi) * 0.1 or 1.0)
    y = _Scale(lo - pad, hi + pad, MH - MB, MT)
    top, bottom = MT, MH - MB

    for g in stages:
        gs = num(g.start)
        if gs is None:
            continue
        ge = gs + (num(g.duration) or 0.0)
        a, b = max(x(gs), ML), min(x(ge), MW - MR)
        if b > a:
            words = f"{g.stage}: {g.samples} samples, {g.outcome or ''}"
            chart.add("rect", f"stage stage-{_cls(g.stage)}", title=words,
                      x=a, y=top, width=b - a, height=bottom - top)
            chart.add("text", "stage-label", g.stage, x=a + 3, y=top + 11)
    if threshold is not None:
        breach = (rule.breach_when or "").strip()
        ty = y(threshold)
        if breach.startswith(">"):
            chart.add("rect", "breach", x=ML, y=top, width=MW - MR - ML, height=max(ty - top, 0.0))
        elif breach.startswith("<"):
            chart.add("rect", "breach", x=ML, y=ty, width=MW - MR - ML, height=max(bottom - ty, 0.0))
        chart.add("line", "threshold", title=f"threshold {breach}", x1=ML, x2=MW - MR, y1=ty, y2=ty)
        chart.add("text", "threshold-label", f"threshold {cut(breach, 24)}", x=MW - MR - 2, y=ty - 4,
                  text_anchor="end")
    for t in nice_ticks(y.lo, y.hi, 4):
        chart.add("line", "grid", x1=ML, x2=MW - MR, y1=y(t), y2=y(t))
        chart.add("text", "tick", f"{t:.4g}", x=ML - 4, y=y(t) + 3, text_anchor="end")
    for t in time_ticks(x.lo, x.hi, 4):
        chart.add("text", "tick", tplus(t), x=x(t), y=bottom + 14, text_anchor="middle")
    chart.add("line", "axis", x1=ML, x2=MW - MR, y1=bottom, y2=bottom)
    chart.add("line", "axis", x1=ML, x2=ML, y1=top, y2=bottom)

    run: list[str] = []
    for t, v, _ in [*pts, (0.0, None, None)]:  # a None ends a run of connected points
        if v is None:
            if len(run) > 1:
                chart.add("polyline", "reading", points=" ".join(run))
            run = []
        else:
            run.append(f"{_fmt(x(t))},{_fmt(y(v))}")
    for t, v, p in pts:
        words = f"{tplus(t)} ({p.stage}): {cut(p.text, 200)}"
        if v is None:
            chart.add("path", "no-value", title=words + " (no value)",
                      d=f"M{_fmt(x(t) - 3)} {_fmt(bottom - 6)} l6 6 m0 -6 l-6 6")
        else:
            chart.add("circle", "sample", title=words, cx=x(t), cy=y(v), r=3.0)
    for tr in rule.transitions:
        t = num(tr.get("t"))
        if t is None:
            continue
        to = str(tr.get("to"))
        if to == "firing":
            chart.add("line", "firing", title=f"{tplus(t)}: firing: {cut(str(tr.get('reason') or ''), 200)}",
                      x1=x(t), x2=x(t), y1=top, y2=bottom)
            chart.add("path", "firing-mark", d=f"M{_fmt(x(t))} {_fmt(top + 2)} l-6 -10 h12 z")
            chart.add("text", "firing-label", "firing", x=x(t) - 4, y=top - 10, text_anchor="end")
        elif to in ("ok", "resolved") and tr.get("from") == "firing":
            chart.add("line", "resolved", title=f"{tplus(t)}: resolved", x1=x(t), x2=x(t), y1=top, y2=bottom)
    return chart


__all__ = ["Chart", "Shape", "cut", "nice_ticks", "num", "rule_chart", "time_ticks", "timeline", "tplus",
           "zoom_needed"]
