"""GitHub Actions annotations (workflow commands), when `GITHUB_ACTIONS=true`.
(Not `annotations.py`: every module here has `from __future__ import annotations`, so the package
attribute of that name is the __future__ feature.)

`::error file=F,line=L,col=C,title=T::message`: GitHub shows it on the runbook's line in the job's
summary and in a pull request's diff. Properties escape `%`, CR, LF, `:` and `,`; the message
escapes `%`, CR and LF (as @actions/core's `escapeProperty`/`escapeData`): an unescaped newline
would end the command and let the rest of a step's output be read as another one.

A run's annotations come from an event subscriber beside the display: the engine knows nothing of
GitHub. Commands go to stdout, where @actions/core writes them; with `--json` (stdout is data) to
stderr, which the runner scans for workflow commands too.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from typing import Any, TextIO

from tminus import events as ev
from tminus.events import Event


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """GitHub sets GITHUB_ACTIONS=true in every step of a workflow."""
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS", "").strip().lower() == "true"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def split_location(location: str | None) -> tuple[str | None, int | None, int | None]:
    """'path/rb.yaml:12:5' -> ('path/rb.yaml', 12, 5); a path may hold colons itself."""
    if not location:
        return None, None, None
    parts = location.rsplit(":", 2)
    numbers: list[int] = []
    while len(parts) > 1 and parts[-1].isdigit():
        numbers.insert(0, int(parts.pop()))
    file = ":".join(parts)
    line = numbers[0] if numbers else None
    col = numbers[1] if len(numbers) > 1 else None
    return file or None, line, col


def command(kind: str, message: str, *, file: str | None = None, line: int | None = None,
            col: int | None = None, title: str | None = None) -> str:
    """One workflow command line: kind is error, warning or notice."""
    props = [f"{name}={escape_property(str(value))}" for name, value in
             (("file", file), ("line", line), ("col", col), ("title", title)) if value not in (None, "")]
    return f"::{kind}{' ' + ','.join(props) if props else ''}::{escape_data(message)}"


def workspace_path(path: str, environ: Mapping[str, str] | None = None) -> str:
    """GitHub places an annotation by the file's path in the repository: relative to
    GITHUB_WORKSPACE when the file is inside it, else as written."""
    workspace = (os.environ if environ is None else environ).get("GITHUB_WORKSPACE")
    if not workspace:
        return path
    full, root = os.path.realpath(path), os.path.realpath(workspace)
    return os.path.relpath(full, root) if full == root or full.startswith(root + os.sep) else path


def at(kind: str, message: str, location: str | None, title: str | None = None) -> str:
    file, line, col = split_location(location)
    return command(kind, message, file=workspace_path(file) if file else None, line=line, col=col, title=title)


def stream(as_json: bool) -> TextIO:
    return sys.stderr if as_json else sys.stdout


ACTING = ("firing", "inconclusive")  # a rule's states that take its action


def _rule_locations(doc: Any) -> dict[tuple[str, str], str]:
    """(phase name or '' for the monitor, rule name) -> 'file:line:col' of the rule."""
    rb, found = doc.runbook, {}
    if rb.monitor is not None:
        for i, rule in enumerate(rb.monitor.rules):
            found[("", rule.name)] = str(doc.source.locate(("monitor", "rules", i)))
    for p, phase in enumerate(rb.phases):
        for i, rule in enumerate(phase.guard.rules if phase.guard is not None else []):
            found[(phase.name, rule.name)] = str(doc.source.locate(("phases", p, "guard", "rules", i)))
    return found


class RunAnnotations:
    """Subscriber: an `::error` at the runbook line of each failed step or gate check and of each
    monitor or guard rule that fires, and a `::notice` with how the run ended."""

    def __init__(self, doc: Any, out: TextIO) -> None:
        self.runbook = str(doc.path)
        self.out = out
        # step key -> 'file:line:col': the runbook's own steps, and what each step.started says
        # (derived undo steps, e.g. a migrate's `undo[auto]`, are located at their step)
        self.where: dict[str, str] = {key: str(doc.locate(step)) for key, step in doc.step_by_key().items()}
        self.rules = _rule_locations(doc)
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        d = event.data
        if event.type == ev.STEP_STARTED and event.step_key and d.get("location"):
            self.where[event.step_key] = str(d["location"])
        elif event.type == ev.STEP_FINISHED and d.get("status") == "failed":
            key = event.step_key or ""
            location = self.where.get(key) or self.where.get(key.split(".undo[")[0]) or self.runbook
            what = "gate check" if str(d.get("section", "")).startswith("gate") else "step"
            title = f"tminus: {what} '{d.get('name')}' failed" + (f" [{event.step_key}]" if event.step_key else "")
            message = str(d.get("message") or "failed")
            message = message.removeprefix(f"{location}: ")  # the annotation stands at that place
            self.emit(at("error", message, location, title))
        elif event.type in (ev.MONITOR_TRANSITION, ev.GUARD_TRANSITION) and d.get("to") in ACTING:
            guard = event.type == ev.GUARD_TRANSITION
            rule = str(d.get("rule", ""))
            where = self.rules.get((str(d.get("phase", "")) if guard else "", rule)) or self.runbook
            what = f"guard rule '{rule}' of phase '{d.get('phase')}'" if guard else f"monitor rule '{rule}'"
            message = f"{d.get('rule_text') or rule}: {d.get('reason') or d.get('to')}"
            self.emit(at("error", message, where, f"tminus: {what} {d.get('to')} (action {d.get('action')})"))
        elif event.type == ev.RUN_FINISHED:
            status = str(d.get("status", "")).upper().replace("_", " ")
            reason = f": {d['reason']}" if d.get("reason") else ""
            self.emit(command("notice", f"{status} (exit {d.get('exit_code')}){reason}",
                              file=workspace_path(self.runbook), title=f"tminus run {event.run_id}"))

    def emit(self, line: str) -> None:
        with self.lock:
            print(line, file=self.out, flush=True)
