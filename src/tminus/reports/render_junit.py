"""A run's report as JUnit XML, the test report CI systems render (GitHub Actions reporters, GitLab,
Jenkins): `tminus report --format junit`, `tminus gate --junit FILE`.

The shape is the Jenkins/Ant `junit-10.xsd` (tests/fixtures/junit/): a `<testsuites>` root named after
the runbook, one `<testsuite>` per section (gates, each phase, verify, decision, monitor, rollback with
every undo step, verify-after-rollback, ...) and a last `run` suite whose one case fails when the run
did not end well, so a report is never green for a run that was not. Each step is a `<testcase>`: a
failed step a `<failure>` listing each failed expectation (expected vs actual) and the step's message,
a step cut short (interrupted, stopped by a rollback or abort, still running) an `<error>`, a skipped
one `<skipped>`; its truncated output goes in `<system-out>`/`<system-err>`. Each monitor rule is a
case: failed when it fired, with the readings around the firing.

Built with ElementTree so every name and output is escaped; characters XML 1.0 forbids (a step's
control characters, terminal colours) are removed first. Every time comes from the ledger, so the same
run renders the same bytes. The schema's root takes no `skipped` count: the suites carry it.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tminus.reports.report_monitor import RuleChart
from tminus.reports.run_report import ApprovalReport, RunReport, SectionReport, StepReport

# XML 1.0's Char production, negated; a terminal's escape sequences go whole, not just their ESC
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ERRORS = ("interrupted", "running", "stopped")  # cut short: not a verdict on the change
_OUT_KEYS = ("stdout", "body", "output")  # the rest (stderr, error) go to system-err
READINGS_AROUND = 3  # readings kept either side of a rule's firing


def clean(text: Any) -> str:
    """`text` as XML 1.0 can hold it: escape sequences and forbidden characters removed."""
    return _ILLEGAL.sub("", _ANSI.sub("", str(text)))


@dataclass
class Case:
    name: str
    classname: str
    time: float
    outcome: str = "passed"  # passed, or the element it gets: failure | error | skipped
    message: str = ""
    type: str = ""
    text: str = ""
    out: str = ""
    err: str = ""
    key: str = ""  # the step's key, to tell apart two steps of one name
    execution: int = 1


@dataclass
class Suite:
    id: str
    name: str
    time: float = 0.0
    start: float | None = None  # T+ seconds
    timestamp: str | None = None  # ISO 8601, when not from `start`
    props: dict[str, Any] = field(default_factory=dict)
    cases: list[Case] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for c in self.cases if c.outcome == outcome)


def render_junit(report: RunReport) -> str:
    suites = _suites(report)
    root = ET.Element("testsuites", _attrs(
        name=report.runbook, tests=sum(len(s.cases) for s in suites),
        failures=sum(s.count("failure") for s in suites), errors=sum(s.count("error") for s in suites),
        time=_secs(report.duration if report.duration is not None else sum(s.time for s in suites))))
    props = _run_props(report)
    for s in suites:
        el = ET.SubElement(root, "testsuite", _attrs(
            name=s.name, tests=len(s.cases), failures=s.count("failure"), errors=s.count("error"),
            skipped=s.count("skipped"), time=_secs(s.time), timestamp=s.timestamp or _stamp(report, s.start),
            hostname=report.host, id=s.id))
        pel = ET.SubElement(el, "properties")
        for k, v in {**props, **s.props}.items():
            if v is not None:
                ET.SubElement(pel, "property", {"name": k, "value": clean(v)})
        for c in s.cases:
            _case(el, c)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _case(parent: ET.Element, c: Case) -> None:
    el = ET.SubElement(parent, "testcase", _attrs(name=c.name, classname=c.classname, time=_secs(c.time)))
    if c.outcome != "passed":
        verdict = ET.SubElement(el, c.outcome, _attrs(message=c.message, type=c.type or None))
        verdict.text = clean(c.text) or None
    for tag, text in (("system-out", c.out), ("system-err", c.err)):
        if text:
            ET.SubElement(el, tag).text = clean(text)


def _attrs(**values: Any) -> dict[str, str]:
    return {k: clean(v) for k, v in values.items() if v is not None and v != ""}


def _secs(t: float | None) -> str:
    """The schema's SUREFIRE_TIME: a plain non-negative number, at most 3 decimals."""
    return f"{t:.3f}" if t is not None and math.isfinite(t) and t > 0 else "0.000"


def _stamp(report: RunReport, start: float | None) -> str | None:
    if report.t0 is None or start is None:
        return None
    return datetime.fromtimestamp(report.t0 + start, UTC).isoformat(timespec="milliseconds")


def _run_props(r: RunReport) -> dict[str, Any]:
    chain = {True: "intact", False: "broken", None: "not checked"}[r.chain.intact]
    if r.chain.problems:
        chain += ": " + "; ".join(r.chain.problems)
    return {"run_id": r.run_id, "run_kind": r.kind, "runbook": r.runbook, "runbook_path": r.runbook_path,
            "environment": r.environment, "operator": r.operator, "content_hash": r.content_hash,
            "release": r.release, "status": r.status, "exit_code": r.exit_code, "started_at": r.started_at,
            "finished_at": r.finished_at, "chain": chain, "chain_head": r.chain.head}


# --- sections to suites -------------------------------------------------------------------------------

def _suites(r: RunReport) -> list[Suite]:
    """One suite per section id, in the order they began; the rollback's sections (its undo passes and
    its own steps) are one `rollback` suite, the monitor's baseline and window one `monitor` suite;
    passes through the same section are merged."""
    by_id: dict[str, Suite] = {}
    for sec in r.sections:
        sid = {"rollback": "rollback", "undo": "rollback", "baseline": "monitor"}.get(sec.kind, sec.id)
        suite = by_id.get(sid)
        if suite is None:
            suite = by_id[sid] = Suite(sid, _suite_name(sid, sec), start=sec.start)
        # the rollback section spans its undo passes and verify: only its own steps' time is its
        suite.time += sum(s.duration or 0.0 for s in sec.steps) if sec.kind == "rollback" else _span(sec)
        if sid == sec.id:
            suite.props.update(_section_props(sec))
        if sec.kind == "decision":
            suite.cases.extend(_decision(r))
        suite.cases.extend(_step(r.runbook, sid, s, r.approvals) for s in sec.steps)
    if r.rollback is not None and "rollback" in by_id:
        by_id["rollback"].cases.extend(_not_run(r))
    if r.monitor is not None and r.monitor.rules:
        monitor = by_id.setdefault("monitor", Suite("monitor", "monitor"))
        monitor.cases[:0] = [_rule(r.runbook, rule) for rule in r.monitor.rules]
    suites = [s for s in by_id.values() if s.cases or s.id == "gates"]
    _unique_names(suites)
    return [*suites, _outcome(r)]


def _suite_name(sid: str, sec: SectionReport) -> str:
    return sid if sid == "rollback" or not sec.name else f"{sec.kind}: {sec.name}"


def _span(sec: SectionReport) -> float:
    if sec.start is None or sec.end is None:
        return sum(s.duration or 0.0 for s in sec.steps)
    return max(sec.end - sec.start, 0.0)


def _section_props(sec: SectionReport) -> dict[str, Any]:
    return {"section": sec.id, "section_status": sec.status, "planned_start": sec.planned_start,
            "budget": sec.budget, "actual": sec.actual, "over_budget": sec.over_budget,
            "stopped_by": sec.stopped_by, "section_outcome": sec.outcome}


def _classname(runbook: str, sid: str, step: StepReport) -> str:
    """`<runbook>.gates.<gate>`, `<runbook>.phase.<phase>`, `<runbook>.rollback.undo.<phase>`."""
    if step.section_kind == "gate":
        return f"{runbook}.gates.{step.section_name}"
    parts = [runbook, *(["rollback"] if sid == "rollback" and step.section != "rollback" else [])]
    parts.append(step.section.replace(":", ".", 1))
    return ".".join(parts)


def _step(runbook: str, sid: str, s: StepReport, approvals: list[ApprovalReport]) -> Case:
    case = Case(name=s.name or s.key, classname=_classname(runbook, sid, s), time=s.duration or 0.0,
                key=s.key, execution=s.execution)
    case.out = "\n".join(x for x in (*_answers(approvals, s.key), _output(s, _OUT_KEYS)) if x)
    case.err = _output(s, tuple(k for k in s.output if k not in _OUT_KEYS))
    if s.status in _ERRORS or (s.status == "failed" and s.stopped):
        how = f"stopped by {s.stopped}" if s.stopped else s.status
        case.outcome, case.type = "error", s.stopped or s.status
        case.message = f"{case.name} was cut short ({how})" + (f": {_first(s.message)}" if s.message else "")
        case.text = _describe(s, [f"cut short: {how}"])
    elif s.status == "failed":
        failed = s.failures
        case.outcome, case.type = "failure", "expectation" if failed else "step"
        case.message = _first(failed[0].message if failed else s.message) or f"{case.name} failed"
        case.text = _describe(s, [_expected(x) for x in failed])
    elif s.status == "skipped":
        case.outcome, case.message = "skipped", _first(s.message) or "skipped"
    return case


def _expected(x: Any) -> str:
    where = f" ({x.location})" if x.location else ""
    return f"{x.assertion}{where}: expected {x.expected}; actual {x.actual!r}"


def _describe(s: StepReport, lines: list[str]) -> str:
    head = f"step {s.key} ({s.kind or 'step'})" + (f" at {s.location}" if s.location else "")
    tries = [f"attempts: {s.attempts}"] if s.attempts > 1 else []
    message = [f"message: {s.message}"] if s.message else []
    return "\n".join([head, *lines, *tries, *message])


def _output(s: StepReport, keys: Iterable[str]) -> str:
    parts = [(k, s.output[k]) for k in keys if s.output.get(k)]
    text = "\n".join(v if len(parts) == 1 else f"--- {k}\n{v}" for k, v in parts)
    if text and s.truncated:
        text = "[output truncated: its end is kept]\n" + text
    return text


def _first(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _not_run(r: RunReport) -> list[Case]:
    """The planned undo steps the rollback never reached: skipped, so the gap shows."""
    assert r.rollback is not None
    return [Case(name=str(p.get("name") or p["key"]), classname=f"{r.runbook}.rollback."
                 + str(p.get("section") or "rollback").replace(":", ".", 1), time=0.0, outcome="skipped",
                 message=f"not run: the rollback {'failed' if r.rollback.state == 'failed' else 'stopped'} before it")
            for p in r.rollback.plan if p.get("status") == "not run"]


def _decision(r: RunReport) -> list[Case]:
    d = r.decision
    if not d:
        return []
    case = Case(name="go/no-go", classname=f"{r.runbook}.decision", time=0.0)
    verdict = d.get("verdict")
    lines = "\n".join(str(x) for x in d.get("lines") or [])
    if verdict is None:
        case.outcome, case.message = "skipped", "no decision was recorded"
    elif verdict != "go":
        case.outcome, case.type = "failure", "decision"
        case.message = f"the decision was {verdict}" + (f": {d.get('reason')}" if d.get("reason") else "")
        case.text = lines
    else:
        case.out = lines
    case.out = "\n".join(x for x in (*_answers(r.approvals, "decision"), case.out) if x)
    return [case]


def _rule(runbook: str, rule: RuleChart) -> Case:
    ts = [p.t for p in rule.points]
    case = Case(name=rule.name, classname=f"{runbook}.monitor", time=(max(ts) - min(ts)) if ts else 0.0)
    about = [f"rule: {rule.text}"] + ([f"action: {rule.action}"] if rule.action else [])
    if not rule.points and not rule.transitions:
        case.outcome, case.message = "skipped", "never judged: the monitor read no sample for it"
        return case
    if not rule.fired:
        case.out = "\n".join([*about, f"{len(rule.points)} reading(s), ended {rule.final}",
                              *_readings(rule.points[-READINGS_AROUND:])])
        return case
    fired = next(t for t in rule.transitions if t["to"] == "firing")
    at = fired.get("t")
    forced = " (forced by a rehearsal, not by a breach)" if fired.get("forced") else ""
    before = [p for p in rule.points if at is None or p.t <= at][-READINGS_AROUND:]
    after = [p for p in rule.points if at is not None and p.t > at][:READINGS_AROUND]
    case.outcome, case.type = "failure", "monitor rule fired"
    case.message = f"{rule.name} fired{forced}: {fired.get('reason') or ''}".rstrip(": ")
    where = f" at {_tplus(at)}" if isinstance(at, int | float) else ""
    case.text = "\n".join([*about, f"fired{where}{forced}: {fired.get('reason') or ''}",
                           *([f"threshold: {rule.breach_when}"] if rule.breach_when else []),
                           "readings up to the firing:", *_readings(before),
                           *(["readings after it:", *_readings(after)] if after else [])])
    return case


def _readings(points: Iterable[Any]) -> list[str]:
    return [f"  {_tplus(p.t)} {p.stage}: {p.text}" for p in points]


def _outcome(r: RunReport) -> Suite:
    """The run's ending as one case, so a run that did not end well never reads as a green report."""
    suite = Suite("run", "run", time=r.duration or 0.0, timestamp=r.started_at)
    case = Case(name=f"{r.runbook} {r.status}", classname=f"{r.runbook}.run", time=r.duration or 0.0)
    text = "\n".join([r.summary, *(f"- {c}" for c in r.causes), *([r.reason] if r.reason else [])])
    if r.exit_code is None:
        case.outcome, case.type, case.message, case.text = "error", r.status, f"the run is {r.status}", text
    elif r.exit_code != 0:
        case.outcome, case.type = "failure", r.status
        case.message, case.text = f"{_first(r.summary)} (exit {r.exit_code})", text
    else:
        case.out = text
    suite.cases.append(case)
    return suite


def _unique_names(suites: list[Suite]) -> None:
    """Two steps of one name in a suite get their keys; two executions of one step (a retry after a
    resume) their execution numbers: CI systems merge cases of the same name."""
    for s in suites:
        names: dict[tuple[str, str], list[Case]] = {}
        for c in s.cases:
            names.setdefault((c.classname, c.name), []).append(c)
        for same in names.values():
            if len(same) < 2:
                continue
            keys = {c.key for c in same}
            for c in same:
                if len(keys) > 1 and c.key:
                    c.name = f"{c.name} [{c.key}]"
                if sum(1 for x in same if x.key == c.key) > 1:
                    c.name = f"{c.name} (execution {c.execution})"


def _answers(approvals: list[ApprovalReport], key: str) -> list[str]:
    """Who answered the step's approval, and when: the evidence a manual step has."""
    out = []
    for a in approvals:
        if a.key != key:
            continue
        if a.approved is None:
            out.append(f"approval asked at {_tplus(a.requested)}, never answered")
            continue
        how = f" ({a.how})" if a.how else ""
        reason = f": {a.reason}" if a.reason else ""
        verdict = "approved" if a.approved else "refused"
        out.append(f"{verdict} by {a.by or 'unknown'}{how} at {_tplus(a.answered)}{reason}")
    return out


def _tplus(t: float | None) -> str:
    return "an unknown time" if t is None else f"T{t:+.3f}s"


__all__ = ["clean", "render_junit"]
