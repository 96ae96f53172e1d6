"""What reports share: the decision, monitor and phase records read from a run's projection, and
the time words (UTC clock, T+ offsets), which live with the projection."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tminus.durations import format_duration
from tminus.projection import Execution, RunView, Section
from tminus.projection.times import clock, epoch, stamp, tplus, when


@dataclass
class Run:
    """The run's view and its T0, with the time words the explanations use."""

    view: RunView
    t0: float | None

    def when(self, at: float | None) -> str:
        return when(at, self.t0)

    def stamp(self, at: float | None) -> dict[str, Any]:
        return stamp(at, self.t0)

    def finished_in(self, *kinds: str) -> list[Execution]:
        """Steps that ran to an outcome in sections of these kinds, in the order they finished."""
        return [e for e in self.view.by_end() if e.finished and e.section_kind in kinds]


def count(n: int, noun: str) -> str:
    """1 gate check, 2 gate checks."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def excerpt(value: Any, limit: int = 160) -> str:
    """One line of a value for a sentence: long text keeps its end (where errors usually are)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= limit else "..." + text[-(limit - 3):]


def phase_time(s: Section) -> str:
    """A finished phase's actual time against its budget."""
    actual, budget = s.actual, s.budget
    if actual is None:
        return f"Phase '{s.name}' completed."
    took = f"Phase '{s.name}' took {format_duration(actual)}"
    if budget is None:
        return took + " (no budget)."
    if actual <= budget:
        return took + f", within its {format_duration(budget)} budget."
    return took + f", {format_duration(actual - budget)} over its {format_duration(budget)} budget."


def decision_record(r: Run) -> dict[str, Any] | None:
    """The go/no-go as recorded: mode, verdict, who answered, how and when, each criterion."""
    d = r.view.decision
    if d is None:
        return None
    asks = r.view.approvals_for("decision")
    asked = [a for a in asks if a.requested]
    answers = [a.answer for a in asks if a.answer is not None]
    at = answers[-1].answered_at if answers else d.at
    if d.mode == "auto":
        lines = [f"At {r.when(d.at)} the decision was {d.verdict} (auto): {d.reason}."]
    else:
        taken = answers[-1].approval_id if answers else None  # the `tminus approve` answer the run took
        lines = [f"At {r.when(at)} {d.by} answered {d.verdict} via {d.how}"
                 + (f" (asked at {r.when(asked[-1].at)})" if asked else "")
                 + (f" with approval {taken} for request #{asked[-1].seq}" if taken is not None and asked else "")
                 + (f": {d.reason}." if d.reason else ".")]
    lines += [f"[{c.get('verdict')}] {c.get('check')}" for c in d.criteria]
    return {"mode": d.mode, "verdict": d.verdict, "by": d.by, "how": d.how, "reason": d.reason, **r.stamp(at),
            "criteria": d.criteria, "lines": lines}


_ENDED = {"passed": "passed", "rollback": "ended in a rollback", "abort": "ended in an abort",
          "paused": "paused for the operator", "interrupted": "was interrupted"}


def monitor_record(r: Run) -> dict[str, Any] | None:
    """The baseline and the watch window: how long, how many samples, every rule's transitions."""
    m = r.view.monitor
    started = [s for s in m.stages if s.announced]
    if not started:
        return None
    lines = []
    for s in started:
        n = len(m.samples_of(s.stage))
        duration, interval = (format_duration(float(v or 0)) for v in (s.duration, s.interval))
        head = f"At {r.when(s.at)} the monitor {s.stage} began ({duration}, a probe every {interval})"
        end = s.end
        if end is None:
            lines.append(f"{head}; it has no recorded end ({n} samples).")
            continue
        outcome = str(end.outcome)
        reason = f": {end.reason}" if end.reason and outcome != "passed" else ""
        taken = end.samples if end.samples is not None else n
        lines.append(f"{head} and {_ENDED.get(outcome, outcome)} after {taken} samples{reason}.")
    moves: dict[str, list[dict[str, Any]]] = {}
    for t in m.transitions:
        moves.setdefault(str(t.rule), []).append(
            {**r.stamp(t.at), "from": t.from_, "to": t.to, "reason": t.reason})
        lines.append(f"At {r.when(t.at)} rule '{t.rule}' went {t.from_} -> {t.to}: {t.reason}.")
    if not moves:
        lines.append("Every rule stayed ok.")
    for a in m.actions:
        outcome = f" (outcome: {a.outcome})" if a.outcome else ""
        lines.append(f"Rule '{a.rule}' took its action, {a.action}{outcome}.")
    last = m.last_end
    taken = len(m.samples) or sum(int(e.samples or 0) for e in m.ends())
    return {"stages": [s.data for s in started], "samples": taken, "outcome": last.outcome if last else None,
            "reason": last.reason if last else None, "rules": moves, "actions": [a.data for a in m.actions],
            "lines": lines}


def run_notes(r: Run) -> list[str]:
    """What else an on-call engineer should know: resumes, notifications that never arrived."""
    out = []
    for e in r.view.resumes:
        action = "rolled back on request" if e.action == "rollback" else "resumed"
        out.append(f"At {r.when(e.at)} {e.operator} {action}" + (f": {e.reason}." if e.reason else "."))
    for n in r.view.notifications:
        if not n.ok:
            out.append(f"At {r.when(n.at)} a notification to {n.channel or n.url} failed after "
                       f"{n.attempts} attempts: {n.error or n.status}.")
    return out


_WORDS = {"phase": "phase '{}'", "gate": "gate '{}'", "undo": "undo of phase '{}'",
          "after-go": "after_go phase '{}'", "finalize": "finalize phase '{}'"}
_PLAIN = {"verify": "verify", "verify-after-rollback": "verify after the rollback", "rollback": "rollback step"}


def section_words(e: Execution) -> str:
    """Where a step ran, as words: phase 'deploy', gate 'ready', undo of phase 'deploy', verify."""
    if e.section_name is not None and e.section_kind in _WORDS:
        return _WORDS[e.section_kind].format(e.section_name)
    if e.section_name is None and e.section_kind in _PLAIN:
        return _PLAIN[e.section_kind]
    return e.section or "unknown section"


__all__ = [
    "Run",
    "clock",
    "count",
    "decision_record",
    "epoch",
    "excerpt",
    "monitor_record",
    "phase_time",
    "run_notes",
    "section_words",
    "stamp",
    "tplus",
    "when",
]
