"""`tminus plan`: the T+ timeline, every step rendered (secrets masked), undo coverage and the
point of no return. Pure: nothing is executed, values known only at run time stay placeholders;
`rehearsal_status` reads the ledger it is handed (decision.require_rehearsal met or not, as the gates
would judge it), and the command hands it one only if a ledger exists."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tminus.durations import format_clock, format_tplus
from tminus.engine.context import Options, build_templater, effective_vars, render_durations
from tminus.engine.preconditions import rehearsal_verdict, wanted_rehearsal
from tminus.engine.prerequisites import Wanted
from tminus.engine.stages import gates_for, stages
from tminus.errors import TemplateError
from tminus.kinds import registry
from tminus.ledger.interfaces import LedgerReader
from tminus.runbook.deadlines import deadlines_of
from tminus.runbook.document import RunbookDocument
from tminus.runbook.models import Gate, Phase, Step
from tminus.runbook.monitor import AlertRule
from tminus.runbook.requirements import Requirement
from tminus.runbook.timing import format_at, format_offset
from tminus.templating.templater import Templater


@dataclass
class PlannedStep:
    key: str
    title: str
    kind: str
    summary: str
    check: bool
    location: str
    reversible: bool = True
    effect: str = "none"  # none | additive | reversible | irreversible: the step's own, or its kind's
    why: str = ""  # why it stands where it does relative to the point of no return, in words
    undo: list[str] = field(default_factory=list)
    when: str | None = None
    timeout: float | None = None
    retry: int | None = None
    expect: list[str] = field(default_factory=list)


@dataclass
class PlannedPhase:
    name: str
    budget: float | None
    starts_at: float | None  # seconds from T+0; None when an earlier phase has no budget
    tplus: str
    steps: list[PlannedStep]
    undo: list[PlannedStep]
    guard: dict[str, Any] | None = None  # probes and rules watched while the steps run


@dataclass
class Plan:
    runbook: str
    environment: str
    vars: dict[str, Any]
    manifest: dict[str, Any]
    gates: list[dict[str, Any]]
    phases: list[PlannedPhase]
    verify: list[PlannedStep]
    decision: dict[str, Any]
    rollback: list[PlannedStep]
    total_budget: float | None
    end_tplus: str | None
    point_of_no_return: dict[str, Any] | None
    monitor: dict[str, Any] | None = None
    after_go: list[PlannedPhase] = field(default_factory=list)  # after the decision, before the window
    finalize: list[PlannedPhase] = field(default_factory=list)  # after the window
    # Each `restore` step: the writes it would discard (everything after its backup) and the advice.
    data_loss: list[dict[str, Any]] = field(default_factory=list)
    # Each deadline: id, what, after (seconds), action, notify, start and end marks.
    deadlines: list[dict[str, Any]] = field(default_factory=list)
    # Before T+0: the cutover time, the stages on the T- axis (earliest first), the required runs.
    at: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)
    require_stages: bool = False
    requires: list[dict[str, Any]] = field(default_factory=list)
    # decision.require_rehearsal: what it asks, whether it applies here, and (`rehearsal_status`, when
    # the ledger can be read) whether the ledger meets it.
    rehearsal: dict[str, Any] | None = None
    # `tminus kill-switch`: its target (seconds) and steps, run on their own at any time.
    kill_switch: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_plan(doc: RunbookDocument, opts: Options) -> Plan:
    doc = render_durations(doc, opts)  # durations written as templates: as the run will have them
    rb = doc.runbook
    facts = {"id": "⟨run.id⟩", "environment": opts.environment, "operator": opts.operator,
             "runbook": rb.name, "host": "⟨run.host⟩"}
    t = build_templater(doc, opts, facts, plan_mode=True)

    def planned(step: Step, phase_undo: bool = False) -> PlannedStep:
        return PlannedStep(
            key=step.key,
            title=step.title,
            kind=step.kind,
            summary=describe(step, t),
            check=step.is_check,
            location=str(doc.locate(step)),
            reversible=not step.needs_undo or bool(step.undo) or phase_undo,
            effect=str(step.effect),
            why=why(step, phase_undo),
            undo=[describe(u, t) for u in step.undo or []],
            when=step.when,
            timeout=step.timeout,
            retry=step.retry.attempts if step.retry else None,
            expect=[_render(t, e) for e in step.expect or []],
        )

    def gate(g: Gate) -> dict[str, Any]:
        return {"name": g.name, "description": g.description, "stage": g.stage,
                "checks": [planned(c) for c in g.checks]}

    # T+h:mm reads best for real cutovers; budgets under a minute need seconds to be distinct
    lengths = [p.budget or 0 for p in (*rb.phases, *rb.live_phases)]
    lengths += [rb.monitor.duration] if rb.monitor is not None and rb.finalize else []
    tplus = format_tplus if all(x % 60 == 0 for x in lengths) else format_clock
    timeline = _Timeline(tplus)
    phases = [timeline.phase(p, planned) for p in rb.phases]
    total, end = timeline.clock, timeline.label()
    after_go = [timeline.phase(p, planned) for p in rb.after_go]
    if rb.monitor is not None:
        timeline.wait(rb.monitor.duration)
    finalize = [timeline.phase(p, planned) for p in rb.finalize]
    sections = [("phases", phases), ("after_go", after_go), ("finalize", finalize)]
    ponr = _point_of_no_return(sections)
    env = rb.environments.get(opts.environment)
    data_loss = _data_loss(doc, phases)
    return Plan(
        runbook=rb.name,
        environment=opts.environment,
        vars=t.masker.mask_obj(effective_vars(doc, opts.environment, opts.overrides)),
        manifest={
            "required": list(env.env.required) if env else [],
            "forbidden": sorted(env.env.forbidden) if env else [],
        },
        gates=[gate(g) for g in gates_for(rb, None)],
        at=format_at(opts.at) if opts.at is not None else None,
        stages=[{"stage": format_offset(offset), "offset": offset,
                 "opens": format_at(opts.at - offset) if opts.at is not None else None,
                 "gates": [gate(g) for g in staged]} for offset, staged in stages(rb)],
        require_stages=rb.require_stages,
        requires=[_requirement(r, t) for _where, r in rb.requirements(opts.environment)],
        rehearsal=_rehearsal(doc, opts.environment),
        phases=phases,
        verify=[planned(s) for s in rb.verify],
        decision={"mode": rb.decision.mode, "timeout": rb.decision.timeout,
                  "second_person": rb.decision.require_second_person},
        rollback=[planned(s) for s in rb.rollback.steps],
        kill_switch=None if rb.kill_switch is None else {
            "target": rb.kill_switch.target, "steps": [planned(s) for s in rb.kill_switch.steps]},
        total_budget=total,
        end_tplus=end,
        point_of_no_return=ponr,
        after_go=after_go,
        finalize=finalize,
        data_loss=data_loss,
        deadlines=[d.to_dict() for d in deadlines_of(rb)],
        monitor=None if rb.monitor is None else {
            "duration": rb.monitor.duration,
            "interval": rb.monitor.interval,
            "baseline": rb.monitor.baseline,
            "notify": rb.monitor.notify,
            "probes": [planned(s) for s in rb.monitor.probes],
            "rules": _rules(rb.monitor.rules),
        },
    )


def _rules(rules: list[AlertRule]) -> list[dict[str, Any]]:
    return [{"name": r.name, "probe": r.probe or "", "rule": r.describe(), "action": r.action,
             "on_no_data": r.on_no_data, "on_error": r.on_error, "notify": r.notify} for r in rules]


def _requirement(req: Requirement, t: Templater) -> dict[str, Any]:
    wanted = Wanted(req.runbook, _render(t, req.environment), req.outcome, req.within,
                    "⟨this runbook's hash⟩" if req.same_hash else None)
    return {"runbook": req.runbook, "environment": wanted.environment, "outcome": req.outcome,
            "within": req.within, "same_hash": req.same_hash, "describe": wanted.describe()}


def _rehearsal(doc: RunbookDocument, environment: str) -> dict[str, Any] | None:
    req = doc.runbook.decision.require_rehearsal
    if req is None:
        return None
    applies = req.applies_to(environment)
    return {"environment": req.environment, "within": req.within, "max_rto": req.max_rto,
            "all_phases": req.all_phases, "enforced_in": req.enforced_in, "applies": applies,
            "describe": wanted_rehearsal(doc, environment).describe() if applies else None,
            "met": None, "message": None, "rehearsal_id": None}


def rehearsal_status(doc: RunbookDocument, opts: Options, reader: LedgerReader | None,
                     missing: str = "") -> dict[str, Any]:
    """Whether the ledger meets the requirement now, as the gates would judge a run of `doc` (as loaded)
    with `opts`; without a reader, `missing` says why it was not checked."""
    if reader is None:
        return {"met": None, "message": f"not checked: {missing or 'no ledger'}"}
    verdict = rehearsal_verdict(reader, render_durations(doc, opts), opts.environment, now=time.time(), written=doc)
    return {"met": verdict.ok, "message": verdict.message,
            "rehearsal_id": verdict.satisfied_by.run_id if verdict.satisfied_by else None}


class _Timeline:
    """T+ of each phase: budgets add up; a phase after one without a budget starts at T+?."""

    def __init__(self, tplus: Callable[[float], str]) -> None:
        self.tplus = tplus
        self.clock: float | None = 0.0

    def label(self) -> str | None:
        return self.tplus(self.clock) if self.clock is not None else None

    def wait(self, seconds: float | None) -> None:
        self.clock = None if self.clock is None or seconds is None else self.clock + seconds

    def phase(self, phase: Phase, planned: Callable[..., PlannedStep]) -> PlannedPhase:
        out = PlannedPhase(name=phase.name, budget=phase.budget, starts_at=self.clock, tplus=self.label() or "T+?",
                           steps=[planned(s, phase_undo=bool(phase.undo)) for s in phase.steps],
                           undo=[planned(u) for u in phase.undo],
                           guard=None if phase.guard is None else {
                               "interval": phase.guard.interval, "settle": phase.guard.settle,
                               "notify": phase.guard.notify, "probes": [planned(s) for s in phase.guard.probes],
                               "rules": _rules(phase.guard.rules)})
        self.wait(phase.budget)
        return out


_WHERE = {"phases": "phase", "after_go": "after_go phase", "finalize": "finalize phase"}


def _point_of_no_return(sections: list[tuple[str, list[PlannedPhase]]]) -> dict[str, Any] | None:
    """The first step a rollback cannot reverse, in the order steps run (phases, after_go, finalize)."""
    for where, phases in sections:
        for phase in phases:
            for s in phase.steps:
                if s.reversible:
                    continue
                conditional = f" It runs only when `{s.when}` holds: skipped, it counts for nothing." if s.when else ""
                return {
                    "phase": phase.name, "section": where, "step": s.title, "key": s.key, "location": s.location,
                    "tplus": phase.tplus, "why": s.why, "conditional": bool(s.when),
                    "meaning": (
                        f"'{s.title}' has no undo: once it has run, a rollback cannot reverse it. "
                        f"The undo steps of the phases up to {_WHERE[where]} '{phase.name}' and the rollback "
                        f"steps still run, but the effects of this step remain.{conditional}"
                    ),
                }
    return None


def why(step: Step, phase_undo: bool = False) -> str:
    """Why a step stands where it does relative to the point of no return: its effect class and
    where the class comes from (its `effect:`, its kind), and what reverses it."""
    effect, declared, kind = str(step.effect), step.declared_effect is not None, step.kind
    if effect == "none":
        text = ("none: declared read-only (effect: none)" if declared else
                "none: an operator's confirmation changes nothing by itself" if kind == "manual" else
                f"none: a check ({kind} changes nothing)")
    elif effect == "additive":
        text = "additive: declared (effect: additive), nothing to undo" if declared else \
            f"additive: a {kind} step adds and changes nothing, nothing to undo"
    elif step.undo:
        text = "reversed by its undo"
    elif phase_undo:
        text = "reversed by its phase's undo"
    elif effect == "reversible":
        text = f"reversible: a {kind} step derives its own undo (automatic revert)"
    else:
        text = "irreversible: declared, no undo" if declared else "irreversible: run without undo"
    if step.when:
        text += f"; conditional (when: {step.when}): counts only if it runs"
    return text


_STEP_REF = re.compile(r"steps\.([A-Za-z_][A-Za-z0-9_]*)\.")


def _data_loss(doc: RunbookDocument, phases: list[PlannedPhase]) -> list[dict[str, Any]]:
    """For each restore: from when on writes are discarded (the phase of the backup it restores,
    found by the `steps.ID.` its file refers to) and whether the runbook rules out writes."""
    rb = doc.runbook
    where: dict[str, tuple[str, str]] = {}  # step id -> (phase name, T+ of the phase's start)
    for phase, planned_phase in zip(rb.phases, phases, strict=True):
        for step in phase.steps:
            if step.id:
                where[step.id] = (phase.name, planned_phase.tplus)
    out: list[dict[str, Any]] = []
    for step in rb.all_steps():
        if step.restore is None:
            continue
        c = step.restore
        ref = next((m for m in _STEP_REF.findall(c.file) if m in where), None)
        after = f"{where[ref][1]} (backup step '{ref}', phase '{where[ref][0]}')" if ref else f"the backup {c.file}"
        guarded = "maintenance" if c.maintenance else "accepted" if c.accept_loss else None
        advice = (
            "the runbook declares maintenance: nobody can write, the restore proceeds" if c.maintenance
            else f"the runbook accepts the loss: {c.accept_loss}" if c.accept_loss
            else "if rows were written since, the restore stops for the operator; put the service in "
                 "maintenance mode (no writes) from the backup to the end of the run and declare "
                 "`maintenance: true` on the restore")
        out.append({"key": step.key, "title": step.title, "location": str(doc.locate(step)), "after": after,
                    "guarded": guarded, "message": f"restoring discards writes after {after}; {advice}"})
    return out


def _render(t: Templater, text: str) -> str:
    try:
        return t.render(text)
    except TemplateError as exc:
        return f"{text}  ⟨cannot render: {exc}⟩"


def describe(step: Step, t: Templater) -> str:
    """One line saying what the step will do, rendered in plan mode; each kind says it (its
    descriptor's `describe`)."""
    try:
        config: Any = t.render_config(step.config)
    except TemplateError as exc:
        return f"{step.kind}: ⟨cannot render: {exc}⟩"
    return registry.get(step.kind).summary(config, step, lambda nested: describe(nested, t))
