"""What the gates section checks in the ledger before anything changes: the runbook's `requires:`
and `decision.require_rehearsal` (engine/prerequisites.py) and where each stage stands (engine/stages.py).

Each is recorded as a note with its evidence (the run ids that answered), and all of them in the
gates section's end (`requires`, `rehearsal`, `stages`); a requirement not met, a rehearsal required
here and not found, or a stage not passed when the runbook says `require_stages: true`, is a gate
failure: the run is blocked and nothing changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tminus import events as ev
from tminus.engine.prerequisites import RehearsalVerdict, Wanted, WantedRehearsal, find_rehearsal, find_run
from tminus.engine.stages import stage_status, stage_window_note, stages
from tminus.errors import TemplateError
from tminus.ledger.interfaces import LedgerReader
from tminus.runbook.document import RunbookDocument
from tminus.runbook.procedure import procedure_hash
from tminus.runbook.requirements import Requirement
from tminus.runbook.timing import format_at, format_offset

if TYPE_CHECKING:  # annotations only: run_state holds a Preconditions
    from tminus.engine.run_state import RunState


@dataclass
class Preconditions:
    """What the session hands the run so its gates can read the ledger and the clock."""

    reader: LedgerReader
    cutover: float | None = None  # T+0 as an epoch (`--at` or `at:`)
    stage: float | None = None  # a stage run (`tminus gate --stage`): its offset
    started: float = field(default_factory=time.time)
    # the runbook as loaded, before its templated durations were rendered with this run's vars: what a
    # rehearsal hashed (runbook/procedure.py); None: the run's own document
    doc: RunbookDocument | None = None


@dataclass
class Checked:
    failures: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # added to the gates section's end


def check(state: RunState, pre: Preconditions) -> Checked:
    """The requirements and the stages of a run (not of a stage run, which runs its own gates only)."""
    out = Checked()
    if pre.cutover is not None:
        out.data["at"] = format_at(pre.cutover)
    if pre.stage is not None:
        out.data["stage"] = format_offset(pre.stage)
        note = stage_window_note(pre.stage, pre.cutover, pre.started)
        if note is not None:  # recorded and run all the same: the checks' results are still worth having
            out.data["counts"] = False
            state.steps.emit(ev.NOTE, "stages", action="stage-window", message=note)
        return out
    rb = state.rb
    wanted = rb.requirements(state.environment)
    if wanted:
        out.data["requires"] = [_requirement(state, pre, where, req, out) for where, req in wanted]
    rehearsal = rb.decision.require_rehearsal
    if rehearsal is not None and rehearsal.applies_to(state.environment):
        out.data["rehearsal"] = _rehearsal(state, pre, out)
    if rb.gates and any(g.stage for g in rb.gates):
        out.data["stages"] = [_stage(state, pre, offset, out) for offset, _gates in stages(rb)]
    return out


def _requirement(state: RunState, pre: Preconditions, where: str, req: Requirement,
                 out: Checked) -> dict[str, Any]:
    try:
        environment = state.steps.templater.render(req.environment) if "{{" in req.environment else req.environment
    except TemplateError as exc:
        message = f"{where} {req.runbook}: its environment cannot be rendered: {exc}"
        out.failures.append(message)
        state.steps.emit(ev.NOTE, "requires", action="requirement", ok=False, message=message)
        return {"ok": False, "message": message}
    wanted = Wanted(req.runbook, environment, req.outcome, req.within,
                    state.doc.content_hash if req.same_hash else None)
    verdict = find_run(pre.reader, wanted, now=pre.started)
    word = "met" if verdict.ok else "not met"
    message = f"requires {wanted.describe()}: {word}: {verdict.message}"
    if not verdict.ok:
        out.failures.append(message)
    evidence = {**verdict.evidence(), "message": message}
    state.steps.emit(ev.NOTE, "requires", action="requirement", **evidence)
    return evidence


def wanted_rehearsal(doc: RunbookDocument, environment: str,
                     written: RunbookDocument | None = None) -> WantedRehearsal:
    """What `decision.require_rehearsal` (set) asks of a run of `doc` in `environment`: `doc` as the run
    has it (templated durations rendered), `written` as loaded, which the procedure hash is taken of."""
    req = doc.runbook.decision.require_rehearsal
    assert req is not None
    phases = tuple(p.name for p in doc.runbook.phases) if req.all_phases else ()
    return WantedRehearsal(doc.runbook.name, req.environment, environment,
                           procedure_hash(written or doc, environment), req.within, req.max_rto, phases)


def rehearsal_verdict(reader: LedgerReader, doc: RunbookDocument, environment: str, *, now: float,
                      written: RunbookDocument | None = None) -> RehearsalVerdict:
    """The gates' answer to `decision.require_rehearsal`; `tminus plan` asks it too."""
    return find_rehearsal(reader, wanted_rehearsal(doc, environment, written), now=now)


def _rehearsal(state: RunState, pre: Preconditions, out: Checked) -> dict[str, Any]:
    verdict = rehearsal_verdict(pre.reader, state.doc, state.environment, now=pre.started, written=pre.doc)
    word = "met" if verdict.ok else "not met"
    message = f"decision.require_rehearsal: {verdict.wanted.describe()}: {word}: {verdict.message}"
    if not verdict.ok:
        out.failures.append(message)
    evidence = {**verdict.evidence(), "message": message}
    state.steps.emit(ev.NOTE, "decision.require_rehearsal", action="rehearsal-required", **evidence)
    return evidence


def _stage(state: RunState, pre: Preconditions, offset: float, out: Checked) -> dict[str, Any]:
    rb = state.rb
    status = stage_status(pre.reader, runbook=rb.name, environment=state.environment, offset=offset,
                          cutover=pre.cutover, now=pre.started)
    if not status.ok and rb.require_stages:
        out.failures.append(status.message)
    state.steps.emit(ev.NOTE, "stages", action="stage", required=rb.require_stages, **status.evidence())
    return status.evidence()


__all__ = ["Checked", "Preconditions", "check", "rehearsal_verdict", "wanted_rehearsal"]
