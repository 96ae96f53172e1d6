"""Guards: a phase's probes and rules, watched while its steps run ("the bind stays stable during
the restart"). A guard is a policy (policy.py), not a section: it starts at the phase's first step
(`before_step`) and ends after its last (`after_section`, with `settle` after it), and acts through
the stop channel (stop.py) from its own thread.

The probe and rule grammar is the monitor's (runbook/monitor.py AlertRule, tminus.monitor's state
machines); probes run every `interval` on a thread of the guard's, each judged the moment it
completes. What a firing rule does:
- `rollback` (default): `policy.applied`, then a rollback request: the current step is stopped (it
  counts as touched) and the undo path runs (exit 11);
- `abort`: the same with an abort: nothing is undone (exit 13);
- `notify`: its channels are told; the phase goes on.
An inconclusive rule (`max_no_data`) acts as a firing one: a guard that cannot see fails closed.
`pause` is refused by validation: the steps would go on changing things while nobody answers.

Every sample and transition is a `guard.*` event tagged with the phase's section; the monitor's
events stay the monitor window's (replay and resume read those). A resumed run starts the guard
afresh at the phase's first step still to run: samples from before a crash say nothing about now.
"""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from functools import partial
from typing import Any

from tminus import events as ev
from tminus.engine import lifecycle as lc
from tminus.engine.lifecycle import Section, SectionResult
from tminus.engine.monitoring import probe_name
from tminus.engine.notifications import Notifier
from tminus.engine.policy import CONTINUE, Decision, Policy
from tminus.engine.run_state import RunState
from tminus.engine.stop import ABORT, INTERRUPT, ROLLBACK, Stopped
from tminus.errors import TemplateError
from tminus.monitor import Sample, State, Transition
from tminus.monitor.samples import kept
from tminus.monitor.watching import ACTED, STOPPED, Armed, Clock, Watching, arm
from tminus.runbook.models import GuardSpec, Phase, Step

POLICY = "guard"  # the policy's name: stops are requested `by` "policy:guard"
HOOK = "guard"  # the hook a firing guard records in `policy.applied` (its own thread, not a hook point)
FIRST_ROUND_GRACE = 5.0  # seconds the first step waits for the guard's first round beyond its probes' timeouts
RECENT = 10  # samples quoted with a verdict


class Guard:
    """One phase's guard in one process: a thread probing until it is ended or acts."""

    def __init__(self, state: RunState, phase: Phase, section: Section, *, resumed: bool) -> None:
        assert phase.guard is not None
        self.state, self.steps, self.stop = state, state.steps, state.stop
        self.spec: GuardSpec = phase.guard
        self.phase = phase
        self.where = section.describe()
        self.resumed = resumed
        self.probes: dict[str, Step] = {probe_name(p): p for p in self.spec.probes}
        self.rules = arm(self.spec.rules, list(self.probes))
        self.notifier = Notifier(self.steps)
        self.samples = 0
        self.fired: list[str] = []
        self.acted: str | None = None  # the stop mode it asked for (rollback, abort), if any
        self._halt = threading.Event()
        self._first_round = threading.Event()
        self._clock = Clock()
        self.watching: Watching | None = None
        self._thread: threading.Thread | None = None
        self._ended_why = "the phase's last step finished"

    # --- the main thread's side -------------------------------------------------------------

    def start(self) -> None:
        """Record the guard, start its thread and wait for its first round of probes, so a service
        already failing stops the phase before its first step (run_state checks the channel)."""
        spec = self.spec
        self.steps.emit(ev.GUARD_STARTED, **self.where, phase=self.phase.name, interval=spec.interval,
                        settle=spec.settle, probes=list(self.probes), resumed=self.resumed,
                        rules=[{"name": a.spec.name, "probe": a.probe, "action": a.spec.action,
                                "text": a.spec.describe()} for a in self.rules])
        self._thread = threading.Thread(target=self._loop, name="tminus-guard", daemon=True)
        self._thread.start()
        slowest = max((p.timeout or spec.interval for p in spec.probes), default=spec.interval)
        self._first_round.wait(slowest + FIRST_ROUND_GRACE)

    def end(self, why: str, settle: float = 0.0) -> None:
        """Stop probing (after `settle` seconds more, cut short by any stop) and wait for the thread,
        which records `guard.finished`."""
        if settle > 0 and self.acted is None:
            self._ended_why = f"{why}, and it settled {settle:g}s"
            self.stop.wait(settle)
        else:
            self._ended_why = why
        self._halt.set()
        if self._thread is not None:
            self._thread.join()

    # --- the guard's thread ---------------------------------------------------------------------

    def _loop(self) -> None:
        """The monitor's probing loop (monitor/watching.py, shared with the `watch` kind), recording
        `guard.finished` once it ends."""
        watching = self.watching = Watching(
            {n: partial(self._probe, n, s) for n, s in self.probes.items()}, self.rules,
            self.spec.interval, on_transition=self._transition, halt=self._halt, keep_going=self._forward,
            on_round=self._first_round.set, thread_name="tminus-guard-probe")
        outcome = "passed"
        try:
            ended = watching.run()
            if ended == STOPPED:
                outcome, self._ended_why = "stopped", "the run was stopped"
            elif ended == ACTED:
                outcome, self._ended_why = "fired", f"it asked for {self.acted}"
            self.notifier.drain()
            if self.fired and outcome == "passed":
                outcome = "notified"
            self.steps.emit(ev.GUARD_FINISHED, **self.where, phase=self.phase.name, outcome=outcome,
                            ok=self.acted is None, samples=self.samples, fired=self.fired, reason=self._ended_why)
        except Stopped:  # the lease is gone: the runner stops the run, nothing more can be recorded
            pass
        except Exception as exc:  # a bug must not leave the phase unwatched while it goes on: fail closed
            self._failed(exc)
        finally:
            self._first_round.set()

    def _failed(self, exc: Exception) -> None:
        """The guard cannot watch any more: the run stops resumably (an interrupt, nothing undone),
        and `tminus resume` starts the guard again for the rest of the phase."""
        why = f"the guard of phase '{self.phase.name}' failed ({type(exc).__name__}: {exc})"
        self.acted = INTERRUPT
        with suppress(Stopped):
            self.steps.emit(ev.GUARD_FINISHED, **self.where, phase=self.phase.name, outcome="failed", ok=False,
                            samples=self.samples, fired=self.fired, reason=why)
            self.steps.emit(ev.POLICY_APPLIED, None, policy=POLICY, hook=HOOK, **self.where, step=None,
                            decision=INTERRUPT, reason=why)
            self.stop.request(INTERRUPT, f"{why}; `tminus resume` continues", f"policy:{POLICY}")

    def _forward(self) -> bool:
        """The run still goes forward: nothing stopped it (the guard has nothing to add then)."""
        return self.stop.running and not self.stop.is_set()

    def _probe(self, name: str, step: Step) -> Sample:
        """As the monitor probes: only the kind's error is a failure to observe; the rules judge."""
        values: dict[str, Any] | None = None
        error: str | None = None
        took = 0.0
        try:
            config = self.steps.templater.render_config(step.config, self.steps.outputs)
        except TemplateError as exc:
            error = f"template: {exc}"
        except Exception as exc:  # rendered beside the running steps: whatever fails is a failed probe
            error = f"template: {type(exc).__name__}: {exc}"
        else:
            began = time.monotonic()
            obs = self.steps.probe_observe(step, config,
                                           step.timeout if step.timeout is not None else self.spec.interval)
            took = (time.monotonic() - began) * 1000
            if obs.error:
                error = obs.error
            else:
                values = kept(obs.values, self.steps.templater.masker.mask)
        at = self._clock.at(name)
        self.samples += 1
        self.steps.emit(ev.GUARD_SAMPLE, step.key, **self.where, phase=self.phase.name, probe=name, at=at,
                        values=values, error=error, duration_ms=round(took, 3))
        return Sample(at, values, error)

    def _transition(self, armed: Armed, moved: Transition) -> bool:
        from tminus.monitor.overrides import reading

        spec, to = armed.spec, moved.to_state
        acts = to in (State.FIRING, State.INCONCLUSIVE)
        kept = self.watching.recent if self.watching is not None else (lambda _p, _n: [])
        recent = [{"at": s.at, "read": reading(armed.rule.config, s.values, s.error)}
                  for s in kept(armed.probe, spec.consecutive or RECENT)] if acts else []
        outcome = None
        if acts:
            outcome = "notified" if spec.action == "notify" or not self._forward() else spec.action
        self.steps.emit(ev.GUARD_TRANSITION, **self.where, phase=self.phase.name, rule=spec.name, probe=armed.probe,
                        action=spec.action, rule_text=spec.describe(), reason=moved.reason, at=moved.at,
                        outcome=outcome, recent=recent, **{"from": str(moved.from_state), "to": str(to)})
        what = f"guard '{spec.name}' ({spec.describe()})"
        channels = list(dict.fromkeys([*spec.notify, *self.spec.notify]))
        extra = {"rule": spec.name, "rule_text": spec.describe(), "phase": self.phase.name}
        if to is State.RESOLVED:
            self.notifier.send(channels, f"resolved: {what} during phase '{self.phase.name}': {moved.reason}", extra)
        if not acts:
            return False
        self.fired.append(spec.name)
        verb = "fired" if to is State.FIRING else "is inconclusive"
        reason = f"{what} {verb} during phase '{self.phase.name}': {moved.reason}"
        self.notifier.send(channels, f"{to} ({spec.action}): {reason}", extra)
        if outcome in (ROLLBACK, ABORT):
            self._act(outcome, reason, spec.name)
            return True
        return False

    def _act(self, mode: str, reason: str, rule: str) -> None:
        """Recorded before it is asked for (`policy.applied`), then through the stop channel, which
        stops the current step at once."""
        self.acted = mode
        self.steps.emit(ev.POLICY_APPLIED, None, policy=POLICY, hook=HOOK, **self.where, step=None,
                        decision=mode, reason=reason, rule=rule)
        self.stop.request(mode, reason, f"policy:{POLICY}")


class GuardPolicy(Policy):
    """Starts each guarded phase's guard before its first step still to run, ends it after the phase
    (and `settle`), and ends whatever guard still runs when another section begins or the run ends."""

    name = POLICY

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.active: Guard | None = None
        self._lock = threading.Lock()

    def _phase(self, section: Section) -> Phase | None:
        if section.kind != lc.PHASE or section.index is None:
            return None
        phase = self.state.rb.phases[section.index]
        return phase if phase.guard is not None else None

    def before_section(self, section: Section) -> Decision:
        self._end_unless(section, "its phase is over")
        return CONTINUE

    def before_step(self, step: Step, section: Section) -> Decision:
        self._end_unless(section, "its phase is over" if self.state.stop.running else "the run is rolling back")
        phase = self._phase(section)
        if phase is not None and self.active is None:
            resumed = any(self.state.touched(s) for s in phase.steps)
            with self._lock:
                self.active = Guard(self.state, phase, section, resumed=resumed)
            self.active.start()
        return CONTINUE

    def after_section(self, section: Section, result: SectionResult) -> Decision:
        guard = self.active
        if guard is not None and guard.where["section"] == section.id:
            settle = guard.spec.settle or 0.0
            guard.end("the phase's last step finished" if result.ok else "the phase failed",
                      settle if result.ok else 0.0)
            self.active = None
        return CONTINUE  # a guard that fired during settle asked the stop channel itself

    def finish(self) -> None:
        self._end_unless(None, "the run ended")

    def _end_unless(self, section: Section | None, why: str) -> None:
        with self._lock:
            guard = self.active
            if guard is None or (section is not None and guard.where["section"] == section.id):
                return
            self.active = None
        guard.end(why)


__all__ = ["HOOK", "POLICY", "Guard", "GuardPolicy"]
