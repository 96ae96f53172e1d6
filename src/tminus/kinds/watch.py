"""`watch`: canary analysis between two steps (weights 10 -> watch 5m -> weights 50). Named probes
are judged by the monitor's rules (runbook/monitor.py AlertRule: the same grammar, the same no-data
and error policies) for `duration`, every `interval`, through the probing loop a phase's guard uses
(monitor/watching.py). A firing rule, or an inconclusive one (a watch that cannot see fails closed),
fails the step: its phase then does what any failure does (roll back by default). All rules quiet
for the whole duration: the step passes.

Every sample and transition is recorded as it happens (`watch.sample`, `watch.transition` under the
step's key, through `ctx.event_sink`); the step's evidence is each rule's last state, the sample
count, and the samples that fired. `ctx.cancel` (a stop of the run) ends it at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from tminus import events as ev
from tminus.kinds.base import Effect, Observation, StepContext
from tminus.kinds.registry import register
from tminus.monitor import Sample, State, Transition
from tminus.monitor.overrides import reading
from tminus.monitor.samples import kept
from tminus.monitor.watching import ACTED, HALTED, Armed, Clock, Watching, arm
from tminus.runbook.models import Step, WatchSpec

QUOTED = 10  # samples quoted with a verdict


def describe(c: WatchSpec, step: Step, nested: Callable[[Step], str]) -> str:
    from tminus.durations import format_duration

    rules = ", ".join(f"{r.name}: {r.describe()}" for r in c.rules)
    return (f"for {format_duration(c.duration)}, every {format_duration(c.interval)}: "
            f"{', '.join(p.name or p.key for p in c.probes)}; fails on {rules}")


@register("watch", config=WatchSpec, effect=Effect.NONE, describe=describe,
          queries=("samples", "rounds", "fired"))
def execute(config: WatchSpec, ctx: StepContext) -> Observation:
    if ctx.probe is None:
        return Observation(error="watch needs the engine's probe runner (StepContext.probe)")
    return _Watch(config, ctx).run()


class _Watch:
    def __init__(self, config: WatchSpec, ctx: StepContext) -> None:
        self.config, self.ctx = config, ctx
        self.record: Callable[[str, dict[str, Any]], None] = ctx.event_sink or (lambda _kind, _data: None)
        self.probes = {p.name or p.key: p for p in config.probes}
        self.rules = arm(config.rules, list(self.probes))
        self.states = {a.spec.name: str(State.OK) for a in self.rules}
        self.clock = Clock()
        self.samples = 0
        self.fired: list[dict[str, Any]] = []
        self.watching: Watching | None = None

    def run(self) -> Observation:
        began = time.monotonic()
        self.watching = Watching(
            {n: partial(self._probe, n) for n in self.probes}, self.rules, self.config.interval,
            on_transition=self._transition, halt=self.ctx.cancel, duration=self.config.duration,
            thread_name="tminus-watch-probe")
        ended = self.watching.run()
        took = time.monotonic() - began
        evidence = {"rules": dict(self.states), "samples": self.samples, "rounds": self.watching.rounds,
                    "watched_s": round(took, 3), "fired": self.fired}
        values = {"samples": self.samples, "rounds": self.watching.rounds, "fired": len(self.fired)}
        if ended == HALTED:
            return Observation(values=values, evidence=evidence,
                               error=f"interrupted after {took:.1f}s of {self.config.duration:g}s "
                                     "(the run was stopped)")
        if ended == ACTED:
            f = self.fired[-1]
            return Observation(values=values, evidence=evidence, failures=[
                f"rule '{f['rule']}' ({f['rule_text']}) {f['verb']} after {took:.1f}s of "
                f"{self.config.duration:g}s: {f['reason']}"])
        return Observation(values=values, evidence=evidence)

    def _probe(self, name: str) -> Sample:
        """As the monitor probes: only the kind's error is a failure to observe; the rules judge."""
        step = self.probes[name]
        assert self.ctx.probe is not None
        began = time.monotonic()
        obs = self.ctx.probe(step, step.timeout if step.timeout is not None else self.config.interval)
        took = round((time.monotonic() - began) * 1000, 3)
        values = None if obs.error else kept(obs.values, self.ctx.masker.mask)
        at = self.clock.at(name)
        self.samples += 1
        self.record(ev.WATCH_SAMPLE, {"probe": name, "at": at, "values": values, "error": obs.error,
                                      "duration_ms": took})
        return Sample(at, values, obs.error)

    def _transition(self, armed: Armed, moved: Transition) -> bool:
        spec, to = armed.spec, moved.to_state
        self.states[spec.name] = str(to)
        acts = to in (State.FIRING, State.INCONCLUSIVE)
        kept = self.watching.recent(armed.probe, spec.consecutive or QUOTED) if acts and self.watching else []
        recent = [{"at": s.at, "read": reading(armed.rule.config, s.values, s.error)} for s in kept]
        self.record(ev.WATCH_TRANSITION, {
            "rule": spec.name, "probe": armed.probe, "rule_text": spec.describe(), "reason": moved.reason,
            "at": moved.at, "from": str(moved.from_state), "to": str(to), "recent": recent,
            "outcome": "failed" if acts else None})
        if not acts:
            return False
        self.fired.append({"rule": spec.name, "rule_text": spec.describe(), "probe": armed.probe,
                           "verb": "fired" if to is State.FIRING else "is inconclusive",
                           "reason": moved.reason, "recent": recent})
        return True
