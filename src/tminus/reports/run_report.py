"""One run as a report: the record every output format renders (`tminus report`, `run --report`,
`gate --junit`, `run --json`'s per-step results).

Built from the ledger only, through the projection: the run's record, its events folded by
`project`, its approvals and the hash chain's verdict. The stored runbook text is read only to chart
a monitor rule's value out of its samples (reports/report_monitor.py). Times are seconds on the T+
axis: 0 is the first phase's start (the cutover), so gates sit before 0; when no phase started, 0 is
the run's start. Values come from the ledger, where secrets were masked before they were written,
so a report never holds a secret's value.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from tminus.projection import Execution, RunView, project
from tminus.projection.times import epoch
from tminus.reports.report_monitor import MonitorReport, monitor_report
from tminus.reports.sections import SectionRow, summarize
from tminus.reports.why import explain

OUTPUT_LIMIT = 4000  # characters of a step's output kept in a report (its end: where errors are)
OUTPUT_KEYS = ("stdout", "stderr", "body", "error", "output")


@dataclass
class Expectation:
    """One expectation of a step as judged: `status == 200` expected `== 200`, got 500."""

    assertion: str
    expected: str | None
    actual: Any
    passed: bool | None
    message: str
    location: str | None = None


@dataclass
class StepReport:
    key: str
    name: str | None
    kind: str | None
    section: str  # the section id: gate:NAME, phase:NAME, verify, undo:NAME, rollback, ...
    section_kind: str
    section_name: str | None
    status: str  # ok | failed | skipped | interrupted | running
    check: bool
    location: str | None
    start: float | None  # T+ seconds
    end: float | None
    duration: float | None  # seconds, every try
    attempts: int
    message: str
    expectations: list[Expectation] = field(default_factory=list)
    output: dict[str, str] = field(default_factory=dict)  # stdout / stderr / body, truncated
    truncated: bool = False  # some output was cut to OUTPUT_LIMIT
    stopped: str | None = None  # the stop mode that cut it short
    point_of_no_return: bool = False  # the step the plan names as the point of no return
    execution: int = 1  # the attempt number across the run (a retry after a resume is 2)

    @property
    def failures(self) -> list[Expectation]:
        return [x for x in self.expectations if x.passed is False]


@dataclass
class SectionReport:
    id: str
    kind: str  # gates | phase | verify | decision | baseline | monitor | rollback | undo | ...
    name: str | None
    status: str  # ok | failed | stopped | running | interrupted
    start: float | None  # T+ seconds
    end: float | None
    planned_start: float | None  # T+ seconds, from the runbook's budgets
    budget: float | None
    actual: float | None
    over_budget: float | None
    steps: list[StepReport] = field(default_factory=list)
    failed_step: str | None = None
    outcome: str | None = None
    stopped_by: str | None = None


@dataclass
class ApprovalReport:
    key: str | None
    prompt: str | None
    requested: float | None  # T+ seconds
    answered: float | None
    approved: bool | None  # None: never answered
    by: str | None
    how: str | None
    reason: str | None
    second_person: bool = False


@dataclass
class RollbackReport:
    reason: str
    state: str | None  # running | ok | failed
    start: float | None
    end: float | None
    plan: list[dict[str, Any]] = field(default_factory=list)  # {key, name, section, status}


@dataclass
class ChainVerdict:
    intact: bool | None  # None: not checked (e.g. a keyed ledger without its key)
    problems: list[str] = field(default_factory=list)
    head: str | None = None


@dataclass
class RunReport:
    run_id: str
    kind: str
    runbook: str
    runbook_path: str
    content_hash: str
    environment: str
    operator: str
    host: str | None
    release: str | None
    status: str
    exit_code: int | None
    reason: str | None
    summary: str  # how it ended, in one sentence (`tminus why`)
    causes: list[str]
    started_at: str | None  # ISO 8601
    finished_at: str | None
    t0: float | None  # epoch seconds of T+0
    duration: float | None
    sections: list[SectionReport]
    approvals: list[ApprovalReport]
    decision: dict[str, Any] | None
    rollback: RollbackReport | None
    monitor: MonitorReport | None
    chain: ChainVerdict
    deadlines: list[dict[str, Any]] = field(default_factory=list)
    point_of_no_return: str | None = None  # the step key
    notes: list[str] = field(default_factory=list)

    def steps(self) -> list[StepReport]:
        """Every step of every section, in the order they began."""
        return [s for section in self.sections for s in section.steps]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.steps():
            out[s.status] = out.get(s.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


def build_report(reader: Any, run_id: str, *, point_of_no_return: str | None = None,
                 verify_chain: bool = True) -> RunReport:
    """The report of run `run_id` (a full id) from a LedgerReader. `point_of_no_return`: the step key
    the plan names (the caller computes it: reports never plan)."""
    record = reader.get_run(run_id)
    events = reader.events(record.id)
    view = project(events)
    return report_of(record, view, chain=_chain(reader, record.id) if verify_chain else ChainVerdict(None),
                     approvals=reader.approvals(record.id), point_of_no_return=point_of_no_return)


def report_of(record: Any, view: RunView, *, chain: ChainVerdict | None = None, approvals: Any = (),
              point_of_no_return: str | None = None) -> RunReport:
    """The report from a run's record and projection (no ledger needed: `run --json` builds it from
    the events it just wrote)."""
    t0 = _t0(view, record)
    x = explain(record, view)
    rows = summarize(view)
    sections = _sections(view, rows, t0, point_of_no_return)
    started, finished = epoch(record.started_at), epoch(record.finished_at)
    return RunReport(
        run_id=record.id, kind=record.kind, runbook=record.runbook_name, runbook_path=record.runbook_path,
        content_hash=record.content_hash, environment=record.environment, operator=record.operator,
        host=record.host, release=view.release, status=record.status, exit_code=record.exit_code,
        reason=record.reason, summary=x.summary, causes=[c.text for c in x.causes],
        started_at=record.started_at, finished_at=record.finished_at, t0=t0,
        duration=(finished - started) if started is not None and finished is not None else None,
        sections=sections, approvals=_approvals(view, t0), decision=x.decision,
        rollback=_rollback(view, t0), monitor=monitor_report(record, view, t0),
        chain=chain or ChainVerdict(None), deadlines=list(x.deadlines), point_of_no_return=point_of_no_return,
        notes=[*x.notes, *_unanswered(approvals)],
    )


def _t0(view: RunView, record: Any) -> float | None:
    phases = [s.started_at for s in view.sections if s.kind == "phase" and s.started_at is not None]
    return min(phases) if phases else (view.t0 or epoch(record.started_at))


def _rel(at: float | None, t0: float | None) -> float | None:
    return None if at is None or t0 is None else round(at - t0, 3)


def _sections(view: RunView, rows: list[SectionRow], t0: float | None, ponr: str | None) -> list[SectionReport]:
    """The summary's rows with each pass's steps: an execution belongs to the last pass of its
    section that began before it."""
    out: list[SectionReport] = []
    for row, s in zip(rows, view.sections, strict=True):
        planned = None
        if row.planned_start is not None and s.kind == "phase":
            planned = row.planned_start
        out.append(SectionReport(
            id=s.id, kind=s.kind, name=s.name, status=row.status, start=_rel(s.started_at, t0),
            end=_rel(s.finished_at, t0), planned_start=planned, budget=row.budget, actual=row.actual,
            over_budget=row.over_budget, failed_step=row.failed_step, outcome=row.outcome,
            stopped_by=row.stopped_by))
    for e in view.executions:
        target = _owner(view, e, out)
        if target is None:
            target = SectionReport(id=e.section, kind=e.section_kind, name=e.section_name, status=e.status,
                                   start=_rel(e.started_at, t0), end=None, planned_start=None, budget=None,
                                   actual=None, over_budget=None)
            out.append(target)
        target.steps.append(step_report(e, t0, ponr))
    return out


def _owner(view: RunView, e: Execution, reports: list[SectionReport]) -> SectionReport | None:
    found = None
    for s, r in zip(view.sections, reports, strict=False):
        # a gate's checks run in the one `gates` section (their own id names the gate)
        same = s.id == e.section or (e.section_kind == "gate" and s.kind == "gates")
        if same and (s.started_seq is None or e.started_seq is None or s.started_seq <= e.started_seq):
            found = r
    if found is None:
        found = next((r for r in reports if r.id == e.section), None)
    return found


def step_report(e: Execution, t0: float | None, ponr: str | None = None) -> StepReport:
    output, truncated = _output(e.outputs or e.evidence)
    return StepReport(
        key=e.key, name=e.name, kind=e.kind, section=e.section, section_kind=e.section_kind,
        section_name=e.section_name, status=e.status, check=e.check, location=e.location,
        start=_rel(e.started_at, t0), end=_rel(e.finished_at, t0),
        duration=round(e.duration, 3) if e.ended else None, attempts=e.attempts, message=e.message,
        expectations=[_expectation(v) for v in e.verdicts], output=output, truncated=truncated,
        stopped=e.stopped, point_of_no_return=ponr is not None and e.key == ponr, execution=e.attempt)


def _expectation(v: dict[str, Any]) -> Expectation:
    passed = v.get("passed")
    return Expectation(assertion=str(v.get("assertion", "")), expected=v.get("expected"), actual=v.get("actual"),
                       passed=passed if isinstance(passed, bool) else None, message=str(v.get("message", "")),
                       location=v.get("location"))


def _output(values: dict[str, Any]) -> tuple[dict[str, str], bool]:
    out, cut = {}, False
    for k in OUTPUT_KEYS:
        v = values.get(k)
        if v is None or v == "":
            continue
        text = v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)
        if len(text) > OUTPUT_LIMIT:
            text, cut = "..." + text[-(OUTPUT_LIMIT - 3):], True
        out[k] = text
    return out, cut


def _approvals(view: RunView, t0: float | None) -> list[ApprovalReport]:
    out = []
    for a in view.approvals:
        ans = a.answer
        out.append(ApprovalReport(
            key=a.key, prompt=a.prompt, requested=_rel(a.at, t0),
            answered=_rel(ans.answered_at or ans.at, t0) if ans else None,
            approved=ans.approved if ans else None, by=ans.by if ans else None, how=ans.how if ans else None,
            reason=ans.reason if ans else None, second_person=a.second_person))
    return out


def _rollback(view: RunView, t0: float | None) -> RollbackReport | None:
    rb = view.rollback
    if not rb.started:
        return None
    done = rb.outcomes()
    plan = [{"key": p.key, "name": p.name, "section": p.section,
             "status": done[p.key].status if p.key in done else "not run"} for p in rb.plan]
    end = rb.end
    return RollbackReport(reason=rb.reason, state=rb.state, start=_rel(rb.passes[0].at, t0),
                          end=_rel(end.at if end else None, t0), plan=plan)


def _chain(reader: Any, run_id: str) -> ChainVerdict:
    from tminus.errors import LedgerError

    try:
        problems = reader.verify(run_id)
        head = str(reader.ledger_head())
    except LedgerError as exc:  # a keyed ledger read without its key: say so, do not guess
        return ChainVerdict(None, [str(exc)])
    return ChainVerdict(not problems, list(problems), head)


def _unanswered(approvals: Any) -> list[str]:
    """Answers recorded in the ledger that the run never took (a second answer, one for nothing)."""
    return [f"answer {a.id} not taken: {'go' if a.approved else 'no-go'} for {a.step_key} by {a.by}"
            for a in approvals if getattr(a, "request_seq", 1) is None]


__all__ = [
    "ApprovalReport",
    "ChainVerdict",
    "Expectation",
    "RollbackReport",
    "RunReport",
    "SectionReport",
    "StepReport",
    "build_report",
    "report_of",
    "step_report",
]
