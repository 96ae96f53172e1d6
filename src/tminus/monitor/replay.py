"""Replay a run's recorded monitor samples through its alert rules, as written or changed.

Pure: the caller hands over the runbook (re-loaded from the run's stored text, so later edits of
the file do not rewrite history) and the run's ledger events (or their projection). Nothing is
probed, nothing written.

    result = replay_run(runbook, events, parse_sets(["pool saturated.threshold=0.95"], names))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tminus.monitor.overrides import FIELDS, ReplayError, apply_overrides, describe, parse_sets, reading
from tminus.monitor.rules import Rule
from tminus.monitor.samples import Sample, State, Transition
from tminus.projection import MonitorEnd, MonitorTransition, RunView, project
from tminus.projection.times import stamp, when

DECISIVE = {"rollback": "rollback", "abort": "abort", "pause": "paused"}  # rule action -> window outcome
_STOPPED = {"rollback": "rolled back", "abort": "aborted", "paused": "paused", "interrupted": "was interrupted"}


class NothingToReplay(Exception):
    """The run has no monitor rules or no recorded samples (exit 1)."""


# --- recorded history ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One monitor.sample event."""

    probe: str
    stage: str
    sample: Sample
    key: str | None = None


def recorded_samples(events: Iterable[Any] | RunView) -> list[Recorded]:
    view = _view_of(events)
    return [Recorded(s.probe, s.stage, Sample(s.at, s.values, s.error), s.key) for s in view.monitor.samples]


def _view_of(events: Iterable[Any] | RunView) -> RunView:
    return events if isinstance(events, RunView) else project(events)


# --- results -------------------------------------------------------------------------------------


@dataclass
class Verdict:
    outcome: str  # rollback | abort | paused | passed | undecided
    text: str
    rule: str | None = None
    at: float | None = None
    reason: str | None = None

    def key(self) -> tuple[str, str | None, float | None]:
        return self.outcome, self.rule, None if self.at is None else round(self.at, 3)


@dataclass
class RuleReplay:
    name: str
    probe: str | None
    action: str
    rule: str
    replayed_rule: str
    overrides: dict[str, Any]
    samples: int
    recorded: list[dict[str, Any]]
    replayed: list[dict[str, Any]]
    recorded_verdict: Verdict
    replayed_verdict: Verdict
    last_read: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return [_move(t) for t in self.recorded] != [_move(t) for t in self.replayed]


@dataclass
class ReplayResult:
    samples: int
    probes: dict[str, int]
    cutover_at: float | None
    t0: float | None
    overrides: dict[str, dict[str, Any]]
    rules: list[RuleReplay]
    recorded: Verdict
    replayed: Verdict
    monitor_outcome: str | None
    monitor_reason: str | None

    @property
    def differs(self) -> bool:
        return self.recorded.key() != self.replayed.key()

    def summary(self) -> str:
        if not self.differs:
            return f"The replay agrees with the recorded run: {self.replayed.text}."
        return f"The replay differs: recorded, {self.recorded.text}; replayed, {self.replayed.text}."

    def to_dict(self) -> dict[str, Any]:
        def verdict(v: Verdict) -> dict[str, Any]:
            return {"outcome": v.outcome, "rule": v.rule, **stamp(v.at, self.t0), "reason": v.reason, "text": v.text}

        return {
            "samples": self.samples,
            "probes": self.probes,
            "cutover": stamp(self.cutover_at, self.t0),
            "overrides": self.overrides,
            "rules": [
                {"name": r.name, "probe": r.probe, "action": r.action, "rule": r.rule,
                 "replayed_rule": r.replayed_rule, "overrides": r.overrides, "samples": r.samples,
                 "recorded": r.recorded, "replayed": r.replayed, "changed": r.changed,
                 "recorded_verdict": verdict(r.recorded_verdict), "replayed_verdict": verdict(r.replayed_verdict)}
                for r in self.rules
            ],
            "recorded": {**verdict(self.recorded), "monitor_outcome": self.monitor_outcome,
                         "monitor_reason": self.monitor_reason},
            "replayed": verdict(self.replayed),
            "differs": self.differs,
            "summary": self.summary(),
        }


def _move(t: Mapping[str, Any]) -> tuple[float | None, str, str]:
    at = t.get("at")
    return (None if at is None else round(float(at), 3)), str(t.get("from")), str(t.get("to"))


# --- the replay ----------------------------------------------------------------------------------


def replay_run(runbook: Any, events: Iterable[Any] | RunView, sets: Mapping[str, Mapping[str, Any]] | None = None
               ) -> ReplayResult:
    """Every rule of `runbook.monitor` over the recorded samples of its probe, with `sets` applied."""
    monitor = runbook.monitor
    if monitor is None or not monitor.rules:
        raise NothingToReplay("the run's runbook has no monitor rules to replay")
    sets = dict(sets or {})
    unknown = set(sets) - {r.name for r in monitor.rules}
    if unknown:
        raise ReplayError(f"no rule named {', '.join(map(repr, sorted(unknown)))}; the rules are: "
                          + ", ".join(repr(r.name) for r in monitor.rules))
    configs = {r.name: apply_overrides(r.to_rule().config, sets.get(r.name, {})) for r in monitor.rules}
    view = _view_of(events)
    samples = recorded_samples(view)
    if not samples:
        raise NothingToReplay("the run recorded no monitor samples: its monitor window never began "
                              "(it ended before the decision, or it has no monitor section)")
    t0 = view.t0
    cut = view.monitor.cutover_at
    end = view.monitor.last_end
    stopped = _stopped(end, samples, t0)
    recorded_moves = view.monitor.transitions
    started_rules = view.monitor.rules
    only_probe = monitor.probes[0].title if len(monitor.probes) == 1 else None
    results = []
    for spec in monitor.rules:
        probe = spec.probe or started_rules.get(spec.name, {}).get("probe") or only_probe
        own = sorted((s for s in samples if s.probe == probe), key=lambda s: s.sample.at)
        stages = {id(s.sample): s.stage for s in own}
        stage_at = {s.sample.at: s.stage for s in own}
        fresh = Rule.from_config(configs[spec.name])
        replayed = [_view(t, stages.get(id(t.sample), "window"), t0) for t in
                    fresh.feed([s.sample for s in own], cutover_at=cut)]
        recorded = [_recorded_view(t, stage_at, t0) for t in recorded_moves if t.rule == spec.name]
        original = spec.to_rule().config
        results.append(RuleReplay(
            name=spec.name, probe=probe, action=spec.action, rule=describe(original),
            replayed_rule=describe(configs[spec.name]), overrides=dict(sets.get(spec.name, {})),
            samples=len(own), recorded=recorded, replayed=replayed,
            recorded_verdict=_verdict({spec.name: spec.action}, recorded, t0, len(own), stopped, past=True, one=True),
            replayed_verdict=_verdict({spec.name: spec.action}, replayed, t0, len(own), stopped, past=False,
                                      one=True),
            last_read=[reading(configs[spec.name], s.sample.values, s.sample.error) for s in own[-3:]],
        ))
    actions = {r.name: r.action for r in monitor.rules}
    every_recorded = _in_order(results, "recorded")
    every_replayed = _in_order(results, "replayed")
    recorded_verdict = _verdict(actions, every_recorded, t0, len(samples), stopped, past=True)
    if recorded_verdict.outcome in ("passed", "undecided") and end is not None and end.outcome in DECISIVE.values():
        # The engine decided without a matching transition event: trust its own account.
        recorded_verdict = Verdict(str(end.outcome), f"the window ended: {end.outcome}: {end.reason}",
                                   reason=end.reason)
    return ReplayResult(
        samples=len(samples),
        probes={p: sum(1 for s in samples if s.probe == p) for p in dict.fromkeys(s.probe for s in samples)},
        cutover_at=cut, t0=t0, overrides={k: dict(v) for k, v in sets.items()}, rules=results,
        recorded=recorded_verdict,
        replayed=_verdict(actions, every_replayed, t0, len(samples), stopped, past=False),
        monitor_outcome=end.outcome if end else None, monitor_reason=end.reason if end else None,
    )


def _stopped(end: MonitorEnd | None, samples: list[Recorded], t0: float | None) -> str | None:
    """Why sampling ended early (None when the window ran its full length)."""
    outcome = end.outcome if end else None
    if outcome == "passed":
        return None
    last = max(s.sample.at for s in samples)
    verb = _STOPPED.get(str(outcome), "stopped")
    return f"the run stopped sampling at {when(last, t0)} when it {verb}"


def _view(t: Transition, stage: str, t0: float | None) -> dict[str, Any]:
    return {**stamp(t.at, t0), "stage": stage, "from": str(t.from_state), "to": str(t.to_state),
            "reason": t.reason, "rule": t.rule}


def _recorded_view(t: MonitorTransition, stage_at: Mapping[float, str], t0: float | None) -> dict[str, Any]:
    at = t.at if t.timed else None
    stage = t.stage or (stage_at.get(at, "window") if at is not None else "window")
    return {**stamp(at, t0), "stage": stage, "from": t.from_, "to": t.to, "reason": t.reason, "rule": t.rule}


def _in_order(results: list[RuleReplay], which: str) -> list[dict[str, Any]]:
    """Every rule's transitions by time; within one sample, in the runbook's rule order (stable)."""
    every = [t for r in results for t in getattr(r, which)]
    return sorted(every, key=lambda t: t["at"] if t["at"] is not None else float("inf"))


def _verdict(actions: Mapping[str, str], moves: list[dict[str, Any]], t0: float | None, samples: int,
             stopped: str | None, *, past: bool, one: bool = False) -> Verdict:
    """The first firing of a rollback/abort/pause rule, or the first inconclusive rule, decides."""
    notified = None
    for t in moves:
        action = actions.get(str(t.get("rule")), "rollback")
        at, rule, reason = t.get("at"), str(t.get("rule")), str(t.get("reason"))
        if t.get("to") == State.INCONCLUSIVE:
            verb = "paused and asked the operator" if past else "would pause and ask the operator"
            return Verdict("paused", f"{verb} at {when(at, t0)}: {rule} is inconclusive: {reason}", rule, at, reason)
        if t.get("to") != State.FIRING:
            continue
        if action in DECISIVE:
            done, would = {"rollback": ("rolled back", "would roll back"), "abort": ("aborted", "would abort"),
                           "pause": ("paused and asked the operator", "would pause and ask the operator")}[action]
            text = f"{done if past else would} at {when(at, t0)}: {rule}: {reason}"
            return Verdict(DECISIVE[action], text, rule, at, reason)
        notified = notified or f"{rule} {'notified' if past else 'would notify'} at {when(at, t0)}: {reason}"
    tail = f" ({notified}; notify rules do not stop the window)" if notified else ""
    nothing = {(True, False): "no rule fired", (False, False): "no rule fires",
               (True, True): "it did not stop the window", (False, True): "it does not stop the window"}[past, one]
    if stopped is None:
        text = f"{nothing}: the window {'passed' if past else 'would pass'}"
        return Verdict("passed", f"{text} ({samples} samples){tail}")
    return Verdict("undecided", f"{nothing} on the {samples} recorded samples ({stopped}){tail}")


__all__ = [
    "FIELDS",
    "NothingToReplay",
    "ReplayError",
    "ReplayResult",
    "RuleReplay",
    "Verdict",
    "apply_overrides",
    "describe",
    "parse_sets",
    "reading",
    "recorded_samples",
    "replay_run",
]
