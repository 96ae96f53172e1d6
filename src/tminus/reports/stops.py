"""A stop request in sentences: who asked (a policy, a guard, a kill switch, a signal, a lost lease),
for what (interrupt, rollback, abort, kill switch), when, which section and step were running and
what the stop did to them. `tminus why` gives it as a run's cause; `show`'s summary names it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tminus.projection import Execution, Section, Stop
from tminus.reports.records import Run, section_words

_MODE = {"rollback": "a rollback", "kill_switch": "the kill switch", "abort": "an abort",
         "interrupt": "an interrupt"}
_SECTION = {"gates": "the gates", "verify": "verify", "verify-after-rollback": "verify after the rollback",
            "rollback": "the rollback", "decision": "the go/no-go decision", "monitor": "the monitor window",
            "baseline": "the monitor baseline"}
_NAMED = {"phase": "phase '{}'", "gate": "gate '{}'", "undo": "the undo of phase '{}'", "monitor": "the monitor {}",
          "after-go": "after_go phase '{}'", "finalize": "finalize phase '{}'"}
_DID = {  # what a stop of this mode does to the step it stops
    "rollback": "it was stopped (recorded as failed) and counts as touched: its undo is part of the rollback",
    "kill_switch": "it was stopped (recorded as failed) and counts as touched: its undo is part of the rollback",
    "abort": "it was stopped (recorded as failed); nothing is undone",
    "interrupt": "it was cut short; `tminus resume` decides what to do with it",
}


@dataclass
class StopStory:
    text: str  # one sentence: who asked for what, when
    short: str  # a few words, for a summary
    at: float | None
    details: list[str] = field(default_factory=list)  # what was running and what the stop did to it
    data: dict[str, Any] = field(default_factory=dict)


def mode_words(mode: str | None) -> str:
    """`a rollback`, `the kill switch`, `an abort`, `an interrupt`."""
    return _MODE.get(str(mode), f"a stop ({mode})")


def section_phrase(section_id: str | None, view_section: Section | None = None) -> str:
    """Where the run was, as words: phase 'deploy', the gates, verify, the rollback."""
    if section_id is None:
        return "no section"
    if view_section is not None and view_section.name and view_section.kind in _NAMED:
        return _NAMED[view_section.kind].format(view_section.name)
    kind, _sep, name = section_id.partition(":")
    if name and kind in _NAMED:
        return _NAMED[kind].format(name)
    return _SECTION.get(section_id, section_id)


def asker(stop: Stop) -> str:
    """Who asked, as words: policy 'rehearsal', SIGINT, the lease, ops."""
    if stop.policy is not None:
        return f"policy '{stop.policy.policy}'"
    by = stop.by or "someone"
    if stop.source == "policy":
        return f"policy '{by.removeprefix('policy:')}'"
    if stop.source == "signal":
        return by.removeprefix("signal ").strip() or "a signal"
    return "the lost lease" if stop.source == "lease" else by


def story(r: Run, stop: Stop) -> StopStory:
    """The stop as a cause: `At 12:00:05 (T+5s) policy 'rehearsal' asked for a rollback after phase
    'two' finished: injected failure after phase 1.`, then what was running and what it did."""
    at = stop.requested_at if stop.requested_at is not None else stop.at
    reason = (stop.reason or "").strip()
    why = f": {reason.splitlines()[0]}" if reason else ""
    where, when_ = _moment(r, stop), r.when(at)
    if stop.source == "signal":
        took = "" if stop.mode == "interrupt" else f" and took {mode_words(stop.mode)}"
        text = f"At {when_} the run received {asker(stop)}{took}{why}."
        short = f"it received {asker(stop)}"
    elif stop.policy is not None and stop.policy.hook == "guard":
        text, short = _guard_words(r, stop, when_)
    elif stop.source == "lease" and stop.policy is None:
        text = f"At {when_} the run stopped because its lease was lost{why}."
        short = "its lease was lost"
    else:
        text = f"At {when_} {asker(stop)} asked for {mode_words(stop.mode)}{where}{why}."
        short = f"{asker(stop)} asked for {mode_words(stop.mode)}{where}" + (f" ({reason.splitlines()[0]})"
                                                                          if reason else "")
    data = {"mode": stop.mode, "by": stop.by, "reason": stop.reason, "section": stop.section, "step": stop.step,
            "policy": stop.policy.policy if stop.policy else None, "hook": stop.policy.hook if stop.policy else None}
    return StopStory(text, short, at, _effects(r, stop), data)


def _guard_words(r: Run, stop: Stop, when_: str) -> tuple[str, str]:
    """A phase's guard that fired: `At 10:02:03 (T+2s) guard 'bind stable' fired during phase 'Restart'
    (open == false for 2 consecutive probes) and asked for a rollback: it read false, false.`"""
    p = stop.policy
    assert p is not None
    rule = str(p.data.get("rule") or "?")
    where = section_phrase(p.section, r.view.section(p.section) if p.section else None)
    fired = next((t for g in reversed(r.view.guards) if g.section == p.section
                  for t in reversed(g.firings) if t.rule == rule and t.seq < p.seq), None)
    text_of = f" ({fired.data['rule_text']})" if fired is not None and fired.data.get("rule_text") else ""
    verb = "was inconclusive" if fired is not None and fired.to == "inconclusive" else "fired"
    read = [str(x.get("read")) for x in (fired.recent if fired is not None else []) if isinstance(x, dict)]
    detail = f"it read {', '.join(read)}" if read else (fired.reason if fired is not None and fired.reason else "")
    at = r.when(fired.at) if fired is not None and fired.timed else when_
    text = f"At {at} guard '{rule}' {verb} during {where}{text_of} and asked for {mode_words(stop.mode)}"
    return text + (f": {detail}." if detail else "."), f"guard '{rule}' {verb} during {where}" + (
        f" ({detail})" if detail else "")


def _moment(r: Run, stop: Stop) -> str:
    """When a policy asked, relative to its hook: ` after phase 'two' finished`."""
    p = stop.policy
    if p is None:
        return ""
    section = section_phrase(p.section, r.view.section(p.section) if p.section else None)
    if p.hook == "after_section":
        return f" after {section} finished"
    if p.hook == "before_section":
        return f" before {section} started"
    if p.hook == "before_step":
        return f" before step {p.step} ({section}) started"
    return f" ({p.hook}, {section})" if p.hook else ""


def _effects(r: Run, stop: Stop) -> list[str]:
    """What was running when the stop came and what it did to it."""
    view = r.view
    section = view.section(stop.section) if stop.section else None
    where = section_phrase(stop.section, section)
    stopped = [x for x in view.stopped_by(stop) if isinstance(x, Execution)]
    p = stop.policy
    if p is not None and p.hook == "before_step":
        return [f"In {where}, step {p.step} never started; nothing of it ran."]
    if stopped:
        return [f"{_step_words(e)} was running: {_DID.get(str(e.stopped), 'it was stopped')}." for e in stopped]
    if p is not None and p.hook == "after_section" and section is not None:
        return [f"{where[0].upper()}{where[1:]} had finished {section.status}; no step was running."]
    if p is not None and p.hook == "before_section":
        return [f"{where[0].upper()}{where[1:]} never started."]
    if stop.mode == "interrupt" and stop.step:
        return [f"Step {stop.step} was running in {where}."]
    return [f"No step was running ({where} was under way)." if stop.section else "No step was running."]


def _step_words(e: Execution) -> str:
    return f"Step '{e.name}' ({section_words(e)}, {e.key})"


__all__ = ["StopStory", "asker", "mode_words", "section_phrase", "story"]
