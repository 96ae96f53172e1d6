"""A run's report as the commands write it: which format a flag or a file name asks for, the point of
no return of the runbook recorded with the run, the report built and rendered, and the file written
atomically. Shared by `tminus report` (cli/report.py) and `run/resume/rollback --report`,
`gate --junit` and the `steps` of `--json` (cli/running.py's `drive`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from tminus.cli.common import fail, recorded_overrides
from tminus.engine.exitcodes import Exit

STEP_FIELDS = ("key", "name", "kind", "section", "status", "duration", "attempts", "message")


def choose_format(fmt: str | None, path: str | None, option: str = "-o") -> str:
    """--format wins; else the extension of the file asked for; else Markdown. An extension that
    names no format is a usage error (exit 2) said before anything runs."""
    from tminus.reports.formats import format_for

    if fmt is not None:
        return fmt
    if path is None:
        return "md"
    try:
        return format_for(path)
    except ValueError as exc:
        fail(f"{option}: {exc}", Exit.USAGE, hint="name the file .md, .html, .xml (JUnit) or .json"
             + (", or give --format" if option == "-o" else ""))


def point_of_no_return(record: Any, overrides: dict[str, Any] | None = None) -> str | None:
    """The step key `tminus plan` names as the point of no return, planned from the runbook text
    recorded with the run (never the file as it is now); None when that text cannot be planned."""
    from tminus.engine.context import Options
    from tminus.engine.plan import build_plan
    from tminus.runbook.loader import load_runbook

    try:
        doc = load_runbook(record.runbook_path, text=record.runbook_text)
        opts = Options(environment=record.environment, overrides=dict(overrides or {}), operator=record.operator)
        ponr = build_plan(doc, opts).point_of_no_return
    except Exception:  # an old, unreadable or unplannable text: the report says nothing of it
        return None
    return str(ponr["key"]) if ponr else None


def build(reader: Any, record: Any) -> Any:
    """The RunReport of `record`, with its point of no return."""
    from tminus.reports.run_report import build_report

    ponr = point_of_no_return(record, recorded_overrides(reader, record.id))
    return build_report(reader, record.id, point_of_no_return=ponr)


def render_text(report: Any, fmt: str) -> str:
    from tminus.reports.formats import render

    return render(report, fmt)


def write_atomically(path: str, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and a rename: a reader
    sees the old file or the new one, never half of one."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, _mode(target))
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode(target: Path) -> int:
    """The permissions the file keeps (or a new file's under the umask), not mkstemp's 0600."""
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def step_results(report: Any) -> list[dict[str, Any]]:
    """`--json`'s per-step results: each step of the report as `tminus report --format json` has
    it, cut to what a pipeline reads, with its failed expectations (expected vs actual)."""
    out = []
    for step in report.to_dict()["sections"]:
        for s in step["steps"]:
            row = {k: s[k] for k in STEP_FIELDS}
            row["failures"] = [{k: x[k] for k in ("assertion", "expected", "actual", "message", "location")}
                               for x in s["expectations"] if x["passed"] is False]
            out.append(row)
    return out


__all__ = ["build", "choose_format", "point_of_no_return", "render_text", "step_results", "write_atomically"]
