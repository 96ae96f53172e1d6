"""A run's report as markdown (being written on its own branch: replaced whole by it)."""

from __future__ import annotations

from tminus.reports.run_report import RunReport


def render_markdown(report: RunReport) -> str:
    raise NotImplementedError("the markdown report is being written")
