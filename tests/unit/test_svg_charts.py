"""The HTML report's chart geometry (reports/svg_charts.py) on reports built by hand: axes, T+ labels,
the planned/actual rows, a rule's threshold and breach side, and values that are no numbers."""

from __future__ import annotations

import itertools
import math

import pytest

from tminus.reports.report_monitor import MonitorReport, Point, RuleChart, StageReport
from tminus.reports.run_report import ChainVerdict, RollbackReport, RunReport, SectionReport, StepReport
from tminus.reports.svg_charts import Chart, cut, num, rule_chart, time_ticks, timeline, tplus, zoom_needed


def _step(key: str, start: float | None, end: float | None, status: str = "ok", ponr: bool = False) -> StepReport:
    return StepReport(key=key, name=key, kind="run", section="phase:p", section_kind="phase", section_name="p",
                      status=status, check=False, location=None, start=start, end=end, duration=None, attempts=1,
                      message="", point_of_no_return=ponr)


def _section(id: str, kind: str, start: float | None, end: float | None, steps: list[StepReport] | None = None,
             planned: float | None = None, budget: float | None = None) -> SectionReport:
    actual = None if start is None or end is None else end - start
    over = actual - budget if actual is not None and budget is not None and actual > budget else None
    return SectionReport(id=id, kind=kind, name=id.partition(":")[2] or None, status="ok", start=start, end=end,
                         planned_start=planned, budget=budget, actual=actual, over_budget=over, steps=steps or [])


def _report(sections: list[SectionReport], **kw: object) -> RunReport:
    base: dict[str, object] = dict(
        run_id="r", kind="run", runbook="rb", runbook_path="rb.yaml", content_hash="h", environment="e",
        operator="o", host=None, release=None, status="completed", exit_code=0, reason=None, summary="s", causes=[],
        started_at=None, finished_at=None, t0=0.0, duration=None, sections=sections, approvals=[], decision=None,
        rollback=None, monitor=None, chain=ChainVerdict(True))
    base.update(kw)
    return RunReport(**base)  # type: ignore[arg-type]


def _shapes(chart: Chart, tag: str, cls: str) -> list[dict[str, str]]:
    return [s.attrs for s in chart.shapes if s.tag == tag and cls in s.cls.split()]


def _finite(chart: Chart) -> None:
    for s in chart.shapes:
        for k, v in s.attrs.items():
            if k in ("x", "y", "width", "height", "x1", "x2", "y1", "y2", "cx", "cy", "r"):
                assert math.isfinite(float(v)), (s.tag, s.cls, k, v)


@pytest.mark.parametrize(("seconds", "label"), [
    (0.0, "T+0"), (1e-5, "T+0"), (0.25, "T+0.25s"), (-0.03, "T-0.03s"), (5.0, "T+5s"), (12.345, "T+12.3s"),
    (120.0, "T+2m"), (150.0, "T+2m30s"), (3600.0, "T+1h"), (5400.0, "T+1h30m"), (-90.0, "T-1m30s"),
])
def test_tplus_labels(seconds: float, label: str) -> None:
    assert tplus(seconds) == label


@pytest.mark.parametrize(("lo", "hi", "step"), [(0.0, 0.2, 0.05), (-0.03, 6.1, 1.0), (0.0, 600.0, 120.0),
                                                (-30.0, 3700.0, 600.0), (0.0, 172800.0, 21600.0)])
def test_time_ticks_fall_on_round_clock_steps(lo: float, hi: float, step: float) -> None:
    ticks = time_ticks(lo, hi)
    assert all(lo - 1e-9 <= t <= hi + 1e-9 for t in ticks) and 3 <= len(ticks) <= 10
    assert all(math.isclose(b - a, step) for a, b in itertools.pairwise(ticks))
    assert len({tplus(t) for t in ticks}) == len(ticks), "no two ticks read the same"


def test_num_and_cut() -> None:
    assert [num(v) for v in (1, 2.5, math.nan, math.inf, -math.inf, True, "3", None)] == \
        [1.0, 2.5, None, None, None, None, None, None]
    assert cut("a  b\n c") == "a b c"
    long = cut("x" * 100, 10)
    assert len(long) == 10 and long.endswith("…")


def test_the_timeline_draws_planned_bands_actual_bars_ponr_and_rollback() -> None:
    steps = [_step("a", 0.0, 1.0), _step("b", 1.0, 4.0, ponr=True), _step("c", 4.0, None, status="running")]
    report = _report([
        _section("gates", "gates", -2.0, -0.5, [_step("g", -1.8, -0.6)]),
        _section("phase:p", "phase", 0.0, 5.0, steps, planned=0.0, budget=3.0),
        _section("phase:q", "phase", None, None, planned=3.0, budget=10.0),
        _section("rollback", "rollback", 6.0, 8.0),
    ], rollback=RollbackReport(reason="why", state="ok", start=6.0, end=8.0))
    chart = timeline(report)
    _finite(chart)
    bars = _shapes(chart, "rect", "section-bar")
    assert [b["data-section"] for b in bars] == ["gates", "phase:p", "rollback"], "a phase that never ran has none"
    assert len(_shapes(chart, "rect", "planned")) == 2, "both phases have their planned band"
    over = _shapes(chart, "rect", "overrun")
    assert len(over) == 1 and [s.text for s in chart.shapes if s.cls == "overrun-label"] == ["+2.0s over"]
    t0 = float(_shapes(chart, "line", "t0")[0]["x1"])
    gates = next(b for b in bars if b["data-section"] == "gates")
    assert float(gates["x"]) + float(gates["width"]) < t0, "gates end before T+0"
    ponr = _shapes(chart, "line", "ponr")
    b_end = next(s for s in chart.shapes if s.tag == "rect" and s.title and s.title.startswith("b:"))
    assert len(ponr) == 1 and math.isclose(float(ponr[0]["x1"]),
                                           float(b_end.attrs["x"]) + float(b_end.attrs["width"]), abs_tol=0.02)
    band = _shapes(chart, "rect", "rollback-band")
    assert len(band) == 1 and float(band[0]["x"]) > t0
    running = _shapes(chart, "rect", "status-running")
    assert running and float(running[0]["width"]) > 2, "a step still running reaches the run's last time"
    assert zoom_needed(report) is False


def test_a_run_far_inside_its_budgets_gets_a_zoomed_chart() -> None:
    report = _report([_section("phase:p", "phase", 0.0, 0.1, [_step("a", 0.0, 0.1)], planned=0.0, budget=600.0)])
    assert zoom_needed(report)
    zoomed = timeline(report, zoom=True)
    _finite(zoomed)
    assert zoomed.id == "chart-timeline-zoom"
    planned = _shapes(zoomed, "rect", "planned")[0]
    assert float(planned["x"]) + float(planned["width"]) <= zoomed.width, "the band is cut at the chart's edge"


@pytest.mark.parametrize("sections", [[], [_section("gates", "gates", 0.0, 0.0, [_step("g", 0.0, 0.0)])]])
def test_an_empty_or_zero_length_run_still_has_an_axis(sections: list[SectionReport]) -> None:
    chart = timeline(_report(sections))
    _finite(chart)
    assert _shapes(chart, "line", "t0") and [s for s in chart.shapes if s.cls == "tick"]


def _rule(threshold: float | None, breach: str | None, values: list[float | None],
          transitions: list[dict[str, object]] | None = None) -> RuleChart:
    return RuleChart("r", "p", "rollback", "text", threshold, breach,
                     [Point(float(i), v, "read", "window") for i, v in enumerate(values)], transitions or [])


def test_a_rule_chart_has_threshold_breach_side_samples_and_firing() -> None:
    stages = [StageReport("baseline", -5.0, 5.0, 1.0, 5, "ok", None),
              StageReport("window", 0.0, 10.0, 1.0, 4, None, None)]
    rule = _rule(0.9, ">= 0.9", [0.5, 0.95, None, 0.97],
                 [{"t": 1.0, "from": "ok", "to": "pending"}, {"t": 3.0, "from": "pending", "to": "firing"}])
    chart = rule_chart(rule, stages, 0)
    _finite(chart)
    line = _shapes(chart, "line", "threshold")[0]
    breach = _shapes(chart, "rect", "breach")[0]
    assert math.isclose(float(breach["y"]) + float(breach["height"]), float(line["y1"]), abs_tol=0.02), \
        "'>=' shades above the line"
    samples = _shapes(chart, "circle", "sample")
    assert len(samples) == 3 and len(_shapes(chart, "path", "no-value")) == 1
    above = [float(c["cy"]) < float(line["y1"]) for c in samples]
    assert above == [False, True, True]
    assert len(_shapes(chart, "line", "firing")) == 1 and _shapes(chart, "path", "firing-mark")
    assert {s.cls for s in chart.shapes if s.tag == "rect" and s.cls.startswith("stage")} == \
        {"stage stage-baseline", "stage stage-window"}
    below = rule_chart(_rule(10.0, "< 10", [20.0, 5.0]), [], 1)
    b = _shapes(below, "rect", "breach")[0]
    assert math.isclose(float(b["y"]), float(_shapes(below, "line", "threshold")[0]["y1"]), abs_tol=0.02)


@pytest.mark.parametrize("values", [[], [None, None], [math.nan, math.inf], [3.0], [1.0, 1.0, 1.0]])
def test_a_rule_chart_without_numbers_or_threshold_still_draws(values: list[float | None]) -> None:
    chart = rule_chart(_rule(None, None, values, [{"t": None, "to": "firing"}]), [], 0)
    _finite(chart)
    assert not _shapes(chart, "line", "threshold") and not _shapes(chart, "line", "firing")
    assert len(_shapes(chart, "circle", "sample")) == sum(1 for v in values if num(v) is not None)


def test_a_monitor_report_is_what_the_charts_read() -> None:
    # the fields the charts read exist on the model (a rename there breaks here, not in a browser)
    m = MonitorReport(stages=[], rules=[_rule(1.0, "> 1", [2.0])], actions=[], outcome=None, reason=None)
    assert rule_chart(m.rules[0], m.stages, 0).shapes
