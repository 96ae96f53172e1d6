"""What reports share: time words (UTC clock, T+ offsets) and the decision, monitor and phase records
read from a run's events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tminus.durations import format_duration


def epoch(at: str | float | None) -> float | None:
    """An event's ISO time (or epoch seconds) as epoch seconds; naive ISO times are UTC."""
    if at is None:
        return None
    if isinstance(at, int | float):
        return float(at)
    try:
        parsed = datetime.fromisoformat(at)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def clock(at: float) -> str:
    """UTC wall clock, 12:03:15: ledgers written on hosts in different zones stay comparable."""
    return datetime.fromtimestamp(at, tz=UTC).strftime("%H:%M:%S")


def tplus(seconds: float) -> str:
    """An offset from the start of the run: T+45s, T+4m05s, T+1h02m03s."""
    sign = "-" if seconds < 0 else "+"
    whole = round(abs(seconds))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"T{sign}{h}h{m:02d}m{s:02d}s"
    if m:
        return f"T{sign}{m}m{s:02d}s"
    return f"T{sign}{s}s"


def when(at: float | None, t0: float | None) -> str:
    """`12:03:15 (T+4m05s)`; just the clock when the run's start is unknown."""
    if at is None:
        return "an unknown time"
    if t0 is None:
        return clock(at)
    return f"{clock(at)} ({tplus(at - t0)})"


def stamp(at: float | None, t0: float | None) -> dict[str, Any]:
    """The same time for --json: epoch seconds, UTC clock and T+ offset."""
    if at is None:
        return {"at": None, "clock": None, "tplus": None}
    return {"at": at, "clock": clock(at), "tplus": None if t0 is None else tplus(at - t0)}


def run_start(events: list[Any]) -> float | None:
    """T0 of a run: its first run.started event."""
    for e in events:
        if e.type == "run.started":
            return epoch(e.at)
    return None


def count(n: int, noun: str) -> str:
    """1 gate check, 2 gate checks."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def excerpt(value: Any, limit: int = 160) -> str:
    """One line of a value for a sentence: long text keeps its end (where errors usually are)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= limit else "..." + text[-(limit - 3):]


# --- the recorded events, and the sections every report shares ---------------------------------


class Events:
    """The run's events with the lookups the explanations need."""

    def __init__(self, events: list[Any], t0: float | None) -> None:
        self.all = events
        self.t0 = t0
        self._pos = {id(e): i for i, e in enumerate(events)}

    def at(self, e: Any) -> float | None:
        return epoch(e.at)

    def when(self, e: Any) -> str:
        return when(self.at(e), self.t0)

    def of(self, *types: str) -> list[Any]:
        return [e for e in self.all if e.type in types]

    def sections(self, prefix: str) -> list[Any]:
        return [e for e in self.of("step.finished") if str(e.data.get("section", "")).startswith(prefix)]

    def index(self, e: Any) -> int:
        return self._pos[id(e)]

    def last_finished(self, key: str, before: int | None = None) -> Any:
        found = None
        for e in self.all[:before]:
            if e.type == "step.finished" and e.step_key == key:
                found = e
        return found


def phase_time(e: Any) -> str:
    """A finished phase's actual time against its budget."""
    d = e.data
    name = str(d.get("section")).removeprefix("phase:")
    actual, budget = d.get("actual"), d.get("budget")
    if actual is None:
        return f"Phase '{name}' completed."
    took = f"Phase '{name}' took {format_duration(actual)}"
    if budget is None:
        return took + " (no budget)."
    if actual <= budget:
        return took + f", within its {format_duration(budget)} budget."
    return took + f", {format_duration(actual - budget)} over its {format_duration(budget)} budget."


def decision_record(ev: Events) -> dict[str, Any] | None:
    """The go/no-go as recorded: mode, verdict, who answered, how and when, each criterion."""
    found = ev.of("decision")
    if not found:
        return None
    e = found[-1]
    d = e.data
    asked = [a for a in ev.of("approval.requested") if a.step_key == "decision"]
    answered = [a for a in ev.of("approval.given") if a.step_key == "decision"]
    at = epoch(answered[-1].data.get("at")) if answered else ev.at(e)
    if d.get("mode") == "auto":
        lines = [f"At {ev.when(e)} the decision was {d.get('verdict')} (auto): {d.get('reason')}."]
    else:
        lines = [f"At {when(at, ev.t0)} {d.get('by')} answered {d.get('verdict')} via {d.get('how')}"
                 + (f" (asked at {ev.when(asked[-1])})" if asked else "")
                 + (f": {d.get('reason')}." if d.get("reason") else ".")]
    criteria = d.get("criteria") or []
    lines += [f"[{c.get('verdict')}] {c.get('check')}" for c in criteria]
    return {"mode": d.get("mode"), "verdict": d.get("verdict"), "by": d.get("by"), "how": d.get("how"),
            "reason": d.get("reason"), **stamp(at, ev.t0), "criteria": criteria, "lines": lines}


_ENDED = {"passed": "passed", "rollback": "ended in a rollback", "abort": "ended in an abort",
          "paused": "paused for the operator", "interrupted": "was interrupted"}


def monitor_record(ev: Events) -> dict[str, Any] | None:
    """The baseline and the watch window: how long, how many samples, every rule's transitions."""
    started = ev.of("monitor.started")
    if not started:
        return None
    finished = ev.of("monitor.finished")
    samples = ev.of("monitor.sample")
    lines = []
    for s in started:
        d = s.data
        end = next((f.data for f in finished if f.data.get("stage") == d.get("stage")), None)
        n = sum(1 for x in samples if x.data.get("stage", "window") == d.get("stage"))
        duration, interval = (format_duration(float(d.get(k) or 0)) for k in ("duration", "interval"))
        head = f"At {ev.when(s)} the monitor {d.get('stage') or 'window'} began ({duration}, a probe every {interval})"
        if end is None:
            lines.append(f"{head}; it has no recorded end ({n} samples).")
            continue
        outcome = str(end.get("outcome"))
        reason = f": {end.get('reason')}" if end.get("reason") and outcome != "passed" else ""
        lines.append(f"{head} and {_ENDED.get(outcome, outcome)} after {end.get('samples', n)} samples{reason}.")
    moves: dict[str, list[dict[str, Any]]] = {}
    for t in ev.of("monitor.transition"):
        d = t.data
        at = d.get("at") if isinstance(d.get("at"), int | float) else ev.at(t)
        moves.setdefault(str(d.get("rule")), []).append(
            {**stamp(at, ev.t0), "from": d.get("from"), "to": d.get("to"), "reason": d.get("reason")})
        lines.append(f"At {when(at, ev.t0)} rule '{d.get('rule')}' went {d.get('from')} -> {d.get('to')}: "
                     f"{d.get('reason')}.")
    if not moves:
        lines.append("Every rule stayed ok.")
    actions = [a.data for a in ev.of("monitor.action")]
    for a in actions:
        outcome = f" (outcome: {a['outcome']})" if a.get("outcome") else ""
        lines.append(f"Rule '{a.get('rule')}' took its action, {a.get('action')}{outcome}.")
    window = [f.data for f in finished if f.data.get("stage") == "window"]
    last = (window or [f.data for f in finished] or [{}])[-1]
    taken = len(samples) or sum(int(f.data.get("samples") or 0) for f in finished)
    return {"stages": [s.data for s in started], "samples": taken, "outcome": last.get("outcome"),
            "reason": last.get("reason"), "rules": moves, "actions": actions, "lines": lines}


def run_notes(ev: Events) -> list[str]:
    """What else an on-call engineer should know: resumes, notifications that never arrived."""
    out = []
    for e in ev.of("run.resumed"):
        d = e.data
        action = "rolled back on request" if d.get("action") == "rollback" else "resumed"
        out.append(f"At {ev.when(e)} {d.get('operator')} {action}" + (f": {d.get('reason')}." if d.get("reason")
                                                                    else "."))
    for e in ev.of("notify.failed"):
        d = e.data
        out.append(f"At {ev.when(e)} a notification to {d.get('channel') or d.get('url')} failed after "
                   f"{d.get('attempts')} attempts: {d.get('error') or d.get('status')}.")
    return out


def section_words(section: Any) -> str:
    """A section name as words: `phase:deploy` -> phase 'deploy'."""
    s = str(section or "")
    for prefix, words in (("phase:", "phase '{}'"), ("gate:", "gate '{}'"), ("undo:", "undo of phase '{}'")):
        if s.startswith(prefix):
            return words.format(s.removeprefix(prefix))
    return {"verify": "verify", "verify-after-rollback": "verify after the rollback",
            "rollback": "rollback step"}.get(s, s or "unknown section")


__all__ = [
    "Events",
    "clock",
    "count",
    "decision_record",
    "epoch",
    "excerpt",
    "monitor_record",
    "phase_time",
    "run_notes",
    "run_start",
    "section_words",
    "stamp",
    "tplus",
    "when",
]
