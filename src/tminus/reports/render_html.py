"""A run's report as html (being written on its own branch: replaced whole by it)."""

from __future__ import annotations

from tminus.reports.run_report import RunReport


def render_html(report: RunReport) -> str:
    raise NotImplementedError("the html report is being written")
