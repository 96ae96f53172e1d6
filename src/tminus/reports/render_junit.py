"""A run's report as junit (being written on its own branch: replaced whole by it)."""

from __future__ import annotations

from tminus.reports.run_report import RunReport


def render_junit(report: RunReport) -> str:
    raise NotImplementedError("the junit report is being written")
