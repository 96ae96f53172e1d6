"""A run's report as one self-contained HTML file: inline CSS and inline SVG, no script, nothing
fetched, readable printed.

The page is the Jinja2 template templates/report.html.j2 (package data) rendered with autoescape on,
so every word a runbook, an operator or a probe wrote is escaped; the charts' geometry comes from
svg_charts.py. What the RunReport does not hold ready-made for the page (the status counts' words,
the rollback's undone/not-undone split) is derived here.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from tminus.durations import format_duration
from tminus.reports.run_report import OUTPUT_LIMIT, RunReport
from tminus.reports.svg_charts import num, rule_chart, timeline, tplus, zoom_needed

TEMPLATES = Path(__file__).parent / "templates"

# status -> the headline, its tone (a border style as well as a colour, for grayscale) and its sign
_OUTCOME = {
    "completed": ("Completed", "good", "✓"), "not_finalized": ("Completed, not finalized", "warn", "!"),
    "blocked": ("Blocked", "warn", "⊘"), "rolled_back": ("Rolled back", "warn", "↺"),
    "rollback_failed": ("Rollback failed", "bad", "✕"), "aborted": ("Aborted", "bad", "✕"),
    "interrupted": ("Interrupted", "warn", "‖"), "needs_operator": ("Needs an operator", "warn", "?"),
    "running": ("Still running (or its process died)", "warn", "…"),
}


@cache
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["tplus"] = _tplus
    env.filters["duration"] = _duration
    env.filters["value"] = _value
    env.filters["tail"] = _tail
    return env


def _tplus(seconds: Any) -> str:
    t = num(seconds)
    return "-" if t is None else tplus(t)


def _duration(seconds: Any) -> str:
    t = num(seconds)
    return "-" if t is None else format_duration(max(t, 0.0))


def _value(v: Any) -> str:
    """An expectation's actual value as the operator reads it: text as is, the rest as JSON."""
    if v is None:
        return "(none)"
    if isinstance(v, str):
        return v
    try:
        return json.dumps(v, ensure_ascii=False, default=str, allow_nan=True)
    except ValueError:
        return str(v)


def _tail(text: Any, limit: int = OUTPUT_LIMIT) -> str:
    """The end of a long text (where errors are), whoever built the report."""
    text = str(text)
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def render_html(report: RunReport) -> str:
    outcome, tone, sign = _OUTCOME.get(report.status, (report.status.replace("_", " ").capitalize(), "warn", "!"))
    stages = report.monitor.stages if report.monitor else []
    rules = [rule_chart(r, stages, i) for i, r in enumerate(report.monitor.rules)] if report.monitor else []
    plan = report.rollback.plan if report.rollback else []
    return _environment().get_template("report.html.j2").render(
        r=report, outcome=outcome, tone=tone, sign=sign, timeline=timeline(report), rule_charts=rules,
        zoomed=timeline(report, zoom=True) if zoom_needed(report) else None,
        counts=sorted(report.counts().items()), undone=[p for p in plan if p.get("status") == "ok"],
        not_undone=[p for p in plan if p.get("status") != "ok"],
        phases=[s for s in report.sections if s.kind == "phase"])


__all__ = ["render_html"]
