"""A run's report as Markdown: the same content as the HTML report, for a pull request or a change
ticket (GitHub-flavoured: tables, fenced blocks).

Everything recorded is text to show, never markup: names, messages and values are escaped (HTML
entities for `<`, `>` and `&`, a backslash before Markdown's punctuation, `|` in table cells), and a
step's output goes in a fenced block whose fence is longer than any run of backticks inside it, so
hostile output cannot close it. A function of the report alone: one ledger, one text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tminus.durations import format_duration
from tminus.reports.report_monitor import MonitorReport, RuleChart
from tminus.reports.run_report import (
    ApprovalReport,
    RollbackReport,
    RunReport,
    SectionReport,
    StepReport,
)

_MD_SPECIAL = re.compile(r"([\\`*_\[\]#!|~$])")  # `$`: GitHub renders $...$ as math
_LINE_START = re.compile(r"^(\d+)([.)])|^([-+=])")  # a list item or an underline where a line starts
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
NONE = "\u2013"  # an en dash: nothing recorded
_STATUS_MARK = {"ok": "✔", "failed": "✘", "skipped": NONE, "interrupted": "⏸", "running": "…", "stopped": "■"}


def _is_rollback(kind: str | None) -> bool:
    """The rollback's own rows: the undo steps, the rollback steps, verify after the rollback."""
    return kind is not None and (kind == "undo" or "rollback" in kind)


def _inline(s: str) -> str:
    s = _CONTROL.sub("\ufffd", s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", s)


def _lead(s: str) -> str:
    """Escape what would open a block (a list item, an underline) where a line starts."""
    return _LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", s)


def text(value: Any) -> str:
    """Recorded text shown inline: entities for HTML, backslashes for Markdown, one line."""
    s = "" if value is None else str(value)
    return _lead(" ".join(_inline(s).replace("\r\n", "\n").replace("\r", "\n").split("\n")).strip())


def cell(value: Any, *, lead: bool = False) -> str:
    """A table cell: as `text`, line breaks kept as <br> (a newline would end the table row).
    `lead`: it starts a line (a list item's text), so what opens a block is escaped too."""
    s = "" if value is None else str(value)
    lines = s.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")
    out = "<br>".join(_inline(line).strip() for line in lines) or " "
    return _lead(out) if lead else out


def _mark(status: Any) -> str:
    return f"{_STATUS_MARK[status]} " if status in _STATUS_MARK else ""


def fenced(body: str, lang: str = "") -> str:
    """A fenced block that `body` cannot close: the fence is longer than its longest run of backticks
    (CommonMark closes a fence only with one at least as long)."""
    body = _CONTROL.sub("\ufffd", body.replace("\r\n", "\n").replace("\r", "\n"))
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body.rstrip(chr(10))}\n{fence}"


def code(value: Any, in_table: bool = False) -> str:
    """Recorded text as inline code (a key, an assertion): literal inside the backticks; text with a
    backtick or a line break cannot be a code span and is escaped text instead."""
    s = "" if value is None else str(value)
    if not s or "`" in s or "\n" in s or "\r" in s or _CONTROL.search(s):
        return cell(s) if in_table else text(s)
    return f"`{s.replace('|', chr(92) + '|') if in_table else s}`"


def _dur(seconds: float | None) -> str:
    return NONE if seconds is None else format_duration(abs(seconds))


def _t(seconds: float | None) -> str:
    if seconds is None:
        return NONE
    return f"T{'-' if seconds < 0 else '+'}{format_duration(abs(seconds))}"


def _value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]


def section_title(s: SectionReport) -> str:
    named = {"gates": "Gates", "verify": "Verify", "decision": "Decision", "baseline": "Monitor baseline",
             "monitor": "Monitor window", "rollback": "Rollback"}
    if s.kind == "undo":
        return f"Undo of {text(s.name)}"
    base = named.get(s.kind) or s.kind.replace("_", " ").capitalize()
    return f"{base} {text(s.name)}" if s.name and s.kind not in named else base


def render_markdown(report: RunReport) -> str:
    out: list[str] = []
    out += _header(report)
    out += _timeline(report)
    out += _steps(report)
    out += _approvals(report.approvals)
    out += _decision(report.decision)
    out += _rollback(report.rollback)
    out += _monitor(report.monitor)
    out += _deadlines(report.deadlines)
    out += _notes(report.notes)
    out += _chain(report)
    return "\n".join(out).rstrip("\n") + "\n"


def _header(r: RunReport) -> list[str]:
    status = r.status.upper().replace("_", " ")
    out = [f"# {text(r.runbook)}: {text(status)}", ""]
    rows = [
        ["Run", code(r.run_id, True)],
        ["Kind", cell(r.kind)],
        ["Runbook", f"{text(r.runbook)} ({cell(r.runbook_path)})"],
        ["Content hash", cell(r.content_hash)],
        ["Environment", cell(r.environment)],
        ["Operator", cell(r.operator)],
        ["Host", cell(r.host or NONE)],
        ["Release", cell(r.release or NONE)],
        ["Started", cell(r.started_at or NONE)],
        ["Finished", cell(r.finished_at or "not recorded")],
        ["Duration", _dur(r.duration)],
        ["Outcome", f"**{text(r.status)}** (exit {NONE if r.exit_code is None else r.exit_code})"],
        ["Steps", cell(", ".join(f"{n} {k}" for k, n in sorted(r.counts().items())) or "none")],
    ]
    if r.point_of_no_return:
        rows.append(["Point of no return", cell(r.point_of_no_return)])
    out += _table(["", ""], rows)
    out += [f"**Why:** {text(r.summary) or 'nothing recorded'}", ""]
    if r.causes:
        out += ["Causes:", ""] + [f"- {cell(c, lead=True)}" for c in r.causes] + [""]
    if r.reason:
        out += ["Reason recorded:", "", fenced(r.reason), ""]
    return out


def _marks(s: SectionReport) -> list[str]:
    marks = []
    if s.over_budget:
        marks.append(f"**over budget by {_dur(s.over_budget)}**")
    if _is_rollback(s.kind):
        marks.append("↩ rollback")
    if s.stopped_by:
        marks.append(f"stopped by {text(s.stopped_by)}")
    if s.outcome:
        marks.append(f"outcome {text(s.outcome)}")
    return marks


def _timeline(r: RunReport) -> list[str]:
    out = ["## Timeline", "", "T+0 is the first phase's start; gates run before it.", ""]
    rows = []
    for s in r.sections:
        rows.append([f"**{section_title(s)}**", f"{_mark(s.status)}{text(s.status)}",
                     _t(s.planned_start), _t(s.start), _dur(s.budget),
                     _dur(s.actual if s.actual is not None else _span(s.start, s.end)), "; ".join(_marks(s))])
        for st in s.steps:
            marks = []
            if st.point_of_no_return:
                marks.append("**point of no return**")
            if _is_rollback(st.section_kind) or _is_rollback(s.kind):
                marks.append("↩ rollback")
            if st.attempts > 1:
                marks.append(f"{st.attempts} attempts")
            rows.append([f"↳ {text(st.name or st.key)}", f"{_mark(st.status)}{text(st.status)}",
                         "", _t(st.start), "", _dur(st.duration), "; ".join(marks)])
    return out + _table(["Section / step", "Status", "Planned start", "Start", "Budget", "Actual", "Marks"], rows)


def _span(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else end - start


def _steps(r: RunReport) -> list[str]:
    out = ["## Steps", ""]
    for s in r.sections:
        if not s.steps:
            continue
        out += [f"### {section_title(s)}", ""]
        for st in s.steps:
            out += _step(st)
    return out


def _step(st: StepReport) -> list[str]:
    out = [f"#### {_mark(st.status)}{text(st.name or st.key)}: {text(st.status)}", ""]
    facts = [code(st.key), text(st.kind or "?"),
             f"at {_t(st.start)}", f"took {_dur(st.duration)}", f"{st.attempts} attempt(s)"]
    if st.location:
        facts.append(text(st.location))
    if st.point_of_no_return:
        facts.append("**point of no return**")
    if st.execution > 1:
        facts.append(f"execution {st.execution}")
    if st.stopped:
        facts.append(f"stopped ({text(st.stopped)})")
    out += [" · ".join(facts), ""]
    if st.message:
        out += [fenced(st.message), ""]
    if st.expectations:
        verdicts = {True: "✔ pass", False: "✘ **fail**", None: f"{NONE} not judged"}
        rows = [[code(x.assertion, True), cell(x.expected if x.expected is not None else NONE),
                 NONE if x.actual is None and x.passed is None else cell(_value(x.actual)), verdicts[x.passed]]
                for x in st.expectations]
        out += _table(["Expectation", "Expected", "Actual", "Result"], rows)
    for name, body in st.output.items():
        cut = " (truncated: its end)" if st.truncated else ""
        out += [f"{text(name)}{cut}:", "", fenced(body), ""]
    return out


def _approvals(approvals: list[ApprovalReport]) -> list[str]:
    if not approvals:
        return []
    rows = [[code(a.key, True) if a.key else NONE, cell(a.prompt or NONE), _t(a.requested), _t(a.answered),
             {True: "go", False: "no-go", None: "not answered"}[a.approved],
             cell(a.by or NONE), cell(a.how or NONE), cell(a.reason or NONE),
             "yes" if a.second_person else "no"] for a in approvals]
    head = ["Step", "Prompt", "Asked", "Answered", "Answer", "By", "How", "Reason", "Second person"]
    return ["## Approvals", "", *_table(head, rows)]


def _decision(d: dict[str, Any] | None) -> list[str]:
    if not d:
        return []
    out = ["## Decision", "", f"**{text(d.get('verdict') or 'no verdict')}** ({text(d.get('mode'))})"
           + (f" by {text(d['by'])}" if d.get("by") else "") + (f" via {text(d['how'])}" if d.get("how") else ""), ""]
    out += [f"- {cell(line, lead=True)}" for line in d.get("lines") or []]
    return [*out, ""]


def _rollback(rb: RollbackReport | None) -> list[str]:
    if rb is None:
        return []
    out = ["## Rollback", "", f"State: **{text(rb.state or 'unknown')}**, from {_t(rb.start)} to {_t(rb.end)}.", "",
           "Why:", "", fenced(rb.reason or "no reason recorded"), "", "The plan (newest change first):", ""]
    rows = [[str(i), cell(p.get("name") or p.get("key")), code(p.get("key"), True), cell(p.get("section")),
             f"{_mark(p.get('status'))}{cell(p.get('status'))}"]
            for i, p in enumerate(rb.plan, 1)]
    out += _table(["#", "Step", "Key", "Section", "Status"], rows) if rows else ["Nothing to undo.", ""]
    def named(*statuses: str, others: bool = False) -> str:
        picked = [p for p in rb.plan if (p.get("status") in statuses) != others]
        return cell(", ".join(str(p.get("name") or p.get("key")) for p in picked) or "nothing")

    failed = [f"Undo failed: {named('failed')}."] if any(p.get("status") == "failed" for p in rb.plan) else []
    out += [f"Undone: {named('ok')}.", *failed, f"Not undone: {named('ok', 'failed', others=True)}.", ""]
    return out


def _readings(rule: RuleChart) -> str:
    values = [p.value for p in rule.points if p.value is not None]
    if values:
        return f"{len(rule.points)} reading(s): min {min(values):g}, max {max(values):g}, last {values[-1]:g}"
    if rule.points:
        return f"{len(rule.points)} reading(s), last: {rule.points[-1].text}"
    return "no readings"


def _monitor(m: MonitorReport | None) -> list[str]:
    if m is None:
        return []
    out = ["## Monitor", ""]
    if m.outcome:
        out += [f"Outcome: **{text(m.outcome)}**" + (f": {text(m.reason)}" if m.reason else ""), ""]
    out += _table(["Stage", "Start", "Duration", "Interval", "Samples", "Outcome", "Reason"],
                  [[text(s.stage), _t(s.start), _dur(s.duration), _dur(s.interval), str(s.samples),
                    cell(s.outcome or NONE), cell(s.reason or NONE)] for s in m.stages])
    for rule in m.rules:
        fired = next((t for t in rule.transitions if t["to"] == "firing"), None)
        out += [f"### Rule {text(rule.name)}", "",
                f"- condition: {text(rule.text) or NONE}",
                f"- threshold: {NONE if rule.threshold is None else f'{rule.threshold:g}'}"
                + (f" (breach when {text(rule.breach_when)})" if rule.breach_when else ""),
                f"- probe: {text(rule.probe or NONE)}, action: {text(rule.action or NONE)}",
                f"- readings: {text(_readings(rule))}",
                f"- fired: {'at ' + _t(fired['t']) + ': ' + text(fired.get('reason')) if fired else 'no'}"
                f" (final state {text(rule.final)})", ""]
        if rule.transitions:
            out += _table(["At", "From", "To", "Reason"],
                          [[_t(t["t"]), cell(t["from"]), cell(t["to"]) + (" (forced)" if t.get("forced") else ""),
                            cell(t.get("reason") or NONE)] for t in rule.transitions])
    if m.actions:
        out += ["Actions:", ""] + [f"- {_t(a.get('t'))}: rule {text(a.get('rule'))} → {text(a.get('action'))}"
                                   f" ({text(a.get('outcome'))})" for a in m.actions] + [""]
    return out


def _deadlines(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    body = [[cell(d.get("what")), _dur(d.get("deadline")), cell(d.get("action")), cell(d.get("state")),
             _dur(d.get("actual")), f"**{_dur(d['exceeded_by'])}**" if d.get("exceeded_by") else NONE,
             cell(d.get("outcome") or NONE) + (f" ({cell(d['answered_by'])})" if d.get("answered_by") else "")]
            for d in rows]
    head = ["What", "Deadline", "Action", "State", "Actual", "Exceeded by", "Alert"]
    return ["## Deadlines", "", *_table(head, body)]


def _notes(notes: list[str]) -> list[str]:
    return ["## Notes", ""] + [f"- {cell(n, lead=True)}" for n in notes] + [""] if notes else []


def _chain(r: RunReport) -> list[str]:
    c = r.chain
    verdict = {True: "✔ intact: every event of this run is in the hash chain as written",
               False: "✘ **NOT intact**: the ledger was changed after it was written",
               None: "not checked"}[c.intact]
    out = ["## Ledger chain", "", verdict + "."]
    if c.head:
        out += ["", f"Ledger head (every run's chain, as read): {cell(c.head)}"]
    if c.problems:
        out += ["", *(f"- {cell(p, lead=True)}" for p in c.problems)]
    return [*out, ""]


__all__ = ["cell", "code", "fenced", "render_markdown", "text"]
