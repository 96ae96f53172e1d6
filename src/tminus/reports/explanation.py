"""What `tminus why` says about a run, as data (`Explanation`, its `Cause`s) and as the lines it
prints: the model and its rendering, apart from how each ending is explained (reports/endings.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tminus.reports.records import stamp

_HEADLINE = {
    "completed": "COMPLETED", "not_finalized": "COMPLETED, NOT FINALIZED", "blocked": "BLOCKED",
    "rolled_back": "ROLLED BACK",
    "rollback_failed": "ROLLBACK FAILED", "aborted": "ABORTED", "interrupted": "INTERRUPTED",
    "needs_operator": "NEEDS AN OPERATOR", "running": "STILL RUNNING (or its process died)",
}


@dataclass
class Cause:
    """One link of the chain of causes: a sentence, the same in a few words for the summary, details."""

    kind: str  # gate, manifest, step, verify, decision, monitor, operator, stop, interrupted, waiting, reason
    text: str  # one sentence
    short: str  # the cause in a few words, for the summary
    at: float | None = None
    details: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Explanation:
    """What `tminus why` says about one run: `lines()` is what it prints, `to_dict()` its --json."""

    run: dict[str, Any]
    status: str
    exit_code: int | None
    summary: str = ""
    causes: list[Cause] = field(default_factory=list)
    undone: list[dict[str, Any]] = field(default_factory=list)
    progress: list[str] = field(default_factory=list)  # what went right (gates, phases, verify)
    aftermath: list[str] = field(default_factory=list)  # verify after rollback, where a rollback stopped
    decision: dict[str, Any] | None = None
    monitor: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # resumes, failed notifications
    deadlines: list[dict[str, Any]] = field(default_factory=list)  # each against its budget (reports/deadlines.py)
    deadline_lines: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    t0: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run, "status": self.status, "exit_code": self.exit_code, "summary": self.summary,
            "causes": [{"kind": c.kind, "text": c.text, **stamp(c.at, self.t0), "details": c.details, **c.data}
                       for c in self.causes],
            "undone": self.undone, "progress": self.progress, "aftermath": self.aftermath,
            "decision": self.decision, "monitor": self.monitor, "notes": self.notes,
            **({"deadlines": self.deadlines} if self.deadlines else {}), "next": self.next_steps,
        }

    def lines(self) -> list[str]:
        r = self.run
        out = [f"Run {r['id']}: {r['runbook']} in {r['environment']}, started {r['started']} UTC by "
               f"{r['operator']}@{r['host']}.",
               f"{_HEADLINE.get(self.status, self.status.upper())} (exit {self.exit_code}). {self.summary}"]
        if self.causes:
            out += ["", "Why:"]
            for c in self.causes:
                out += [f"  {c.text}", *(f"      {d}" for d in c.details)]
        if self.undone or self.aftermath:
            out += ["", "What was undone:" if self.undone else "Rollback:"]
            out += [f"  {u['text']}" for u in self.undone] + [f"  {a}" for a in self.aftermath]
        sections = [("What went right:", self.progress), ("Decision:", (self.decision or {}).get("lines", [])),
                    ("Monitor:", (self.monitor or {}).get("lines", [])), ("Deadlines:", self.deadline_lines),
                    ("Also:", self.notes),
                    ("Next:", self.next_steps)]
        for title, body in sections:
            if body:
                out += ["", title, *(f"  {line}" for line in body)]
        return out


__all__ = ["Cause", "Explanation"]
