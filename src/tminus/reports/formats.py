"""The formats a run's report is written in, and the format a file's name asks for.

Each renderer is a function of a RunReport (reports/run_report.py) returning text, in a module of
its own, imported only when its format is asked for."""

from __future__ import annotations

import json
from pathlib import Path

from tminus.reports.run_report import RunReport

FORMATS = ("md", "html", "junit", "json")
EXTENSIONS = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".xml": "junit", ".json": "json"}


def format_for(path: str) -> str:
    """The format a file's extension names; ValueError naming the extensions known."""
    found = EXTENSIONS.get(Path(path).suffix.lower())
    if found is None:
        known = ", ".join(sorted(EXTENSIONS))
        raise ValueError(f"cannot tell the report's format from '{path}': its extension is not one of {known}")
    return found


def render(report: RunReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "md":
        from tminus.reports.render_markdown import render_markdown

        return render_markdown(report)
    if fmt == "html":
        from tminus.reports.render_html import render_html

        return render_html(report)
    if fmt == "junit":
        from tminus.reports.render_junit import render_junit

        return render_junit(report)
    raise ValueError(f"unknown report format '{fmt}' (one of {', '.join(FORMATS)})")


__all__ = ["EXTENSIONS", "FORMATS", "format_for", "render"]
