"""Stages in time: the cutover time a run counts back from, and whether each stage's gates passed
in their window (read from the ledger's gate runs of that stage).

The rules (docs/concepts.md, "Stages in time"):
- The reference is the cutover time `at` (from `--at`, or the runbook's `at:`); without one, the
  start of the run that asks.
- A stage `T-48h` is a window [reference - 48h, reference): a stage run (`tminus gate --stage T-48h`)
  counts only if it started inside it. Among those, the latest decides: passed if it completed, failed if not.
- No stage run inside the window: stale when there is one outside it (too early, or at or after the
  cutover), missing when the ledger holds none for the runbook and environment.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tminus.engine.context import Options, build_templater
from tminus.errors import Problem, RunbookError, TemplateError
from tminus.ledger.interfaces import LedgerReader
from tminus.ledger.records import RunRecord
from tminus.runbook.document import RunbookDocument
from tminus.runbook.models import Gate, Runbook
from tminus.runbook.timing import AT_HINT, format_at, format_offset, parse_at, stage_offset
from tminus.runbook.types import HintedValueError

PASSED, FAILED, MISSING, STALE = "passed", "failed", "missing", "stale"
IN_WINDOW = 5000  # gate runs started in a stage's window (or after it) looked at: all of them, in practice
SCAN = 200  # and before it, newest first, to tell a stale stage from a missing one


def cutover_time(doc: RunbookDocument, opts: Options, override: str | None = None) -> float | None:
    """T+0 as an epoch: `override` (the `--at` text, ValueError when junk) or the runbook's `at:`
    rendered with the run's vars (RunbookError at its position when it renders to junk)."""
    if override is not None:
        return parse_at(override).timestamp()
    text = doc.runbook.at
    if text is None:
        return None
    rendered = text
    try:
        if "{{" in text:
            rendered = build_templater(doc, opts, {"environment": opts.environment}).render(text)
        return parse_at(rendered).timestamp()
    except HintedValueError as exc:
        message, hint = (f"{exc} (rendered from '{text}')" if rendered != text else str(exc)), exc.hint
    except TemplateError as exc:
        message, hint = f"the cutover time '{text}' cannot be rendered: {exc}", AT_HINT
    raise RunbookError([Problem(message, doc.source.locate(("at",)), hint, "at")])


def stages(rb: Runbook) -> list[tuple[float, list[Gate]]]:
    """Each distinct stage offset with its gates, earliest stage (largest offset) first."""
    grouped: dict[float, list[Gate]] = {}
    for gate in rb.gates:
        if gate.stage is not None:
            grouped.setdefault(stage_offset(gate.stage), []).append(gate)
    return sorted(grouped.items(), key=lambda item: -item[0])


def gates_for(rb: Runbook, stage: float | None) -> list[Gate]:
    """The gates a run executes: a stage run only that stage's; any other run the unstaged ones."""
    if stage is None:
        return [g for g in rb.gates if g.stage is None]
    return [g for g in rb.gates if g.stage is not None and stage_offset(g.stage) == stage]


@dataclass(frozen=True)
class StageStatus:
    stage: str  # T-48h
    offset: float
    status: str  # passed | failed | missing | stale
    message: str
    run_id: str | None = None  # the stage run it is about
    ran_at: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == PASSED

    def evidence(self) -> dict[str, Any]:
        return {"stage": self.stage, "offset": self.offset, "status": self.status, "message": self.message,
                "run_id": self.run_id, "ran_at": format_at(self.ran_at) if self.ran_at is not None else None}


def stage_status(reader: LedgerReader, *, runbook: str, environment: str, offset: float,
                 cutover: float | None, now: float | None = None) -> StageStatus:
    """Where the stage at `offset` stands for a run starting `now` towards `cutover` (see the module's rules)."""
    from tminus.projection import project  # here: a runbook without stages never loads the projection

    now = time.time() if now is None else now
    reference = cutover if cutover is not None else now
    stage = format_offset(offset)
    late: tuple[str, float] | None = None
    for record in _gate_runs(reader, runbook, environment, reference - offset):
        head = project(reader.events(record.id, limit=1)).started
        if head is None or head.data.get("stage_offset") != offset or head.at is None:
            continue
        view = project(reader.events(record.id))
        end = view.finished
        if end is None:
            continue  # still running, or stopped before its end: it passed nothing yet
        ran = head.at
        when = f"at {format_at(ran)} ({_relative(ran - reference, cutover)})"
        if ran >= reference:  # only with a cutover time: a record of this run's start cannot be later
            late = late or (record.id, ran)
            continue
        if ran >= reference - offset:
            if end.status == "completed":
                return StageStatus(stage, offset, PASSED, f"stage {stage} passed {when}, run {record.id}",
                                   record.id, ran)
            return StageStatus(stage, offset, FAILED, f"stage {stage} failed {when}, run {record.id}: {end.status}",
                               record.id, ran)
        opened = format_at(reference - offset)
        return StageStatus(stage, offset, STALE, f"stage {stage} stale: its latest run, {when}, started before its "
                           f"window opened at {opened}; run {record.id}", record.id, ran)
    if late is not None:
        return StageStatus(stage, offset, STALE, f"stage {stage} stale: its latest run, at {format_at(late[1])} "
                           f"({_relative(late[1] - reference, cutover)}), started at or after the cutover; "
                           f"run {late[0]}", late[0], late[1])
    return StageStatus(stage, offset, MISSING, f"stage {stage} missing: no `tminus gate --stage {stage}` run of "
                       f"{runbook} in {environment} in the ledger")


def _gate_runs(reader: LedgerReader, runbook: str, environment: str, opens: float) -> Iterator[RunRecord]:
    """Gate runs newest first: every one started in the window or after it, then (only when asked for)
    the newest before it. A second of margin: the run's record is made just before its first event."""
    yield from reader.list_runs(runbook=runbook, environment=environment, kind="gate", started_after=opens - 1,
                                limit=IN_WINDOW)
    yield from reader.list_runs(runbook=runbook, environment=environment, kind="gate", started_before=opens - 1,
                                limit=SCAN)


def stage_window_note(offset: float, cutover: float | None, now: float) -> str | None:
    """What a stage run starting `now` should know: it will not count (outside its window) or None."""
    if cutover is None:
        return None
    stage = format_offset(offset)
    if now >= cutover:
        return f"this {stage} run starts at or after the cutover ({format_at(cutover)}): it will not count"
    if now < cutover - offset:
        return (f"this {stage} run starts before its window opens at {format_at(cutover - offset)} "
                f"(cutover {format_at(cutover)}): it will not count for that cutover")
    return None


def _relative(seconds: float, cutover: float | None) -> str:
    """T-47h50m relative to the cutover, or `47h50m before this run` without one."""
    if cutover is not None:
        return format_offset(seconds, "-" if seconds < 0 else "+")
    return f"{format_offset(seconds)[2:]} before this run"


__all__ = ["FAILED", "MISSING", "PASSED", "STALE", "StageStatus", "cutover_time", "gates_for", "stage_status",
           "stage_window_note", "stages"]
