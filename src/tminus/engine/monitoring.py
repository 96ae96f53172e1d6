"""The monitoring window: probes every interval, alert rules over their samples, and actions.

Rules are tminus.monitor's pure state machines; this module feeds them with real probes, records
every sample and transition in the ledger (so `tminus replay` can re-judge them), and turns a
firing rule into what its `action` says. A rule is judged right after the probe it reads
completes, so detection never waits for the next tick. A policy may force rules to fire once the
window begins (`Policy.forced_rules`: a rehearsal's monitor fault); such a firing is recorded as
forced, with the policy's reason, and acted on as a real one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tminus import events as ev
from tminus.engine.notifications import Notifier
from tminus.engine.steps import StepRunner
from tminus.errors import TemplateError
from tminus.monitor import Rule, Sample, State, Transition
from tminus.monitor.samples import kept
from tminus.runbook.models import MonitorSpec, Step
from tminus.runbook.monitor import AlertRule

# Policy.forced_rules: the rules to force once the window begins, {name: reason}
Forced = Callable[[Sequence[AlertRule]], dict[str, str]]

MONITOR_KEY = "monitor"  # the approval key of a paused monitor: `tminus approve RUN_ID --step monitor`
# why a stage ended when the stop channel was raised (the runner acts on the request behind it)
STOPPED = "interrupted by a signal; `tminus resume` continues"
RECENT_SAMPLES = 10  # samples quoted with a verdict (a `consecutive: N` rule quotes its N)


@dataclass
class WatchResult:
    outcome: str  # passed | rollback | abort | needs_operator | interrupted
    reason: str
    samples: int = 0
    fired: list[str] = field(default_factory=list)


@dataclass
class _Armed:
    spec: Any  # AlertRule
    rule: Rule
    probe: str


class Monitor:
    """One run's probes and rules. The same rules live from the baseline to the end of the window."""

    def __init__(self, steps: StepRunner, spec: MonitorSpec, *, ask: Callable[..., Any] | None = None,
                 forced: Forced | None = None) -> None:
        self.steps = steps
        self.spec = spec
        self.ask = ask  # OperatorChannel.request, for pause and inconclusive
        self.forced = forced  # asked at the window's first tick (the run's policy)
        self.probes: dict[str, Step] = {probe_name(p): p for p in spec.probes}
        only = next(iter(self.probes)) if len(self.probes) == 1 else None
        self.rules = [_Armed(r, r.to_rule(), r.probe or only or "") for r in spec.rules]
        self.cutover_at: float | None = None
        self._paused = 0.0  # seconds spent waiting for an operator: they do not count as watching
        self._judging = threading.Lock()  # rules are judged by the probe threads, one sample at a time
        self._decided = False  # a rule decided the window's end (rollback, abort, ...)
        self._recent: dict[str, deque[Sample]] = {}  # probe -> its latest samples, quoted as evidence
        self._last_at: dict[str, float] = {}  # probe -> the time of its last sample
        self.notifier = Notifier(steps)

    # --- stages -------------------------------------------------------------------------------

    def learn(self, recorded: list[dict[str, Any]]) -> None:
        """Feed baseline samples recorded before a crash (resume): ratio rules get their baseline back."""
        for data in recorded:
            sample = Sample(data["at"], data.get("values"), data.get("error"))
            for armed in self.rules:
                if armed.probe == data.get("probe") and armed.rule.uses_baseline:
                    armed.rule.observe(sample)

    def baseline(self, duration: float) -> WatchResult:
        """Probe before the cutover; only ratio rules take these samples (as their baseline)."""
        return self._loop("baseline", duration)

    def begin_cutover(self, at: float | None = None) -> None:
        if self.cutover_at is not None:
            return
        self.cutover_at = time.time() if at is None else at
        for armed in self.rules:
            armed.rule.begin_cutover(self.cutover_at)

    def restore(self, samples: list[dict[str, Any]], answered: dict[str, float]) -> WatchResult | None:
        """Rebuild the rules from the window samples recorded before the run stopped (resume), writing
        nothing for what already happened. A rule left firing or inconclusive whose action never
        completed (a crash in between, a pause nobody answered) acts now, unless the operator had
        answered it with keep watching (`answered`: rule -> epoch of that answer)."""
        self.begin_cutover()
        last: dict[str, Transition] = {}
        for data in samples:
            sample = Sample(data["at"], data.get("values"), data.get("error"))
            probe = str(data.get("probe"))
            self._last_at[probe] = max(self._last_at.get(probe, 0.0), sample.at)
            for armed in self.rules:
                if armed.probe == probe:
                    for change in armed.rule.observe(sample):
                        last[armed.spec.name] = change
        for armed in self.rules:
            moved, state = last.get(armed.spec.name), armed.rule.state
            if moved is None or state not in (State.FIRING, State.INCONCLUSIVE):
                continue
            told_only = state is State.FIRING and armed.spec.action == "notify"
            if told_only or answered.get(armed.spec.name, 0) >= moved.at:
                continue
            self.steps.emit(ev.NOTE, None, action="monitor-restored", rule=armed.spec.name,
                            message=f"rule '{armed.spec.name}' was {state} when the run stopped: acting on it now")
            decided = self._act(armed, moved)
            if decided is not None:
                return decided
        return None

    def watch(self, duration: float | None = None) -> WatchResult:
        """The window after the go decision: rules judge every sample; a firing rule acts."""
        self.begin_cutover()
        return self._loop("window", self.spec.duration if duration is None else duration)

    # --- the loop -----------------------------------------------------------------------------

    def _loop(self, stage: str, duration: float) -> WatchResult:
        spec, cancel = self.spec, self.steps.stop
        self.steps.emit(
            ev.MONITOR_STARTED, stage=stage, duration=duration, interval=spec.interval,
            probes=list(self.probes), cutover_at=self.cutover_at,
            rules=[{"name": a.spec.name, "probe": a.probe, "action": a.spec.action, "text": a.spec.describe()}
                   for a in self.rules],
        )
        started = time.monotonic()
        self._paused = 0.0
        self._decided = False
        count, tick = 0, 0
        result: WatchResult | None = None
        workers = ThreadPoolExecutor(max_workers=min(16, len(self.probes)), thread_name_prefix="tminus-probe")
        try:
            while result is None:
                tick_at = started + self._paused + tick * spec.interval
                if cancel.wait(max(0.0, tick_at - time.monotonic())):
                    result = WatchResult("interrupted", STOPPED)
                    break
                if time.monotonic() - started - self._paused >= duration:
                    break
                futures = [workers.submit(self._probe_and_judge, name, step, stage)
                           for name, step in self.probes.items()]
                for future in futures:
                    result = future.result() or result
                    count += 1
                tick += 1
                if stage == "window" and tick == 1 and result is None and not cancel.is_set():
                    result = self._force()
                if cancel.is_set() and result is None:
                    result = WatchResult("interrupted", STOPPED)
        finally:
            workers.shutdown(wait=True)
        if result is None:
            result = WatchResult("passed", f"{stage}: {count} samples in {duration:g}s; no rule fired")
        result.samples = count
        self.notifier.drain()
        self.steps.emit(ev.MONITOR_FINISHED, stage=stage, ok=result.outcome == "passed", outcome=result.outcome,
                        reason=result.reason, samples=count, fired=result.fired)
        return result

    def _probe_and_judge(self, name: str, step: Step, stage: str) -> WatchResult | None:
        """One probe, judged in its own thread the moment it completes: a slow sibling probe must
        not delay the verdict (detection latency). Judging is serialised; after the first decisive
        verdict of a tick, later samples are still recorded but no longer judged."""
        sample = self._probe(name, step, stage)
        if stage == "baseline" and not any(a.rule.uses_baseline for a in self.rules):
            return None
        with self._judging:
            if self._decided:
                return None
            decided = self._judge(name, sample, stage)
            self._decided = decided is not None
            return decided

    def _probe(self, name: str, step: Step, stage: str) -> Sample:
        timeout = step.timeout if step.timeout is not None else self.spec.interval
        try:
            config = self.steps.templater.render_config(step.config, self.steps.outputs)
        except TemplateError as exc:
            obs_values: dict[str, Any] | None = None
            error: str | None = f"template: {exc}"
            took = 0.0
        else:
            began = time.monotonic()
            # Only the kind's error (refused, timeout, command not found) is a failure to observe.
            # Whatever answered is a sample, a 500 or an exit code 1 included: judging it is the
            # rules' job, never the probe's own `expect` (nor its kind's default, `status < 400`),
            # so `tminus replay` re-judges exactly what the rules judged.
            obs = self.steps.probe_observe(step, config, timeout)
            took = (time.monotonic() - began) * 1000
            mask = self.steps.templater.masker.mask
            obs_values, error = (None, obs.error) if obs.error else (kept(obs.values, mask), None)
        # Rules need their samples in time order: a wall clock stepped back (NTP) must not break them.
        at = max(time.time(), self._last_at.get(name, 0.0) + 1e-6)
        self._last_at[name] = at
        sample = Sample(at, obs_values, error)
        self.steps.emit(ev.MONITOR_SAMPLE, step.key, probe=name, stage=stage, at=sample.at, values=obs_values,
                        error=error, duration_ms=round(took, 3))
        return sample

    def _judge(self, probe: str, sample: Sample, stage: str) -> WatchResult | None:
        self._recent.setdefault(probe, deque(maxlen=RECENT_SAMPLES * 5)).append(sample)
        decided: WatchResult | None = None
        for armed in self.rules:
            if armed.probe != probe or (stage == "baseline" and not armed.rule.uses_baseline):
                continue
            for moved in armed.rule.observe(sample):
                self._record(armed, moved)
                outcome = self._act(armed, moved)
                decided = decided or outcome
        return decided

    def _force(self) -> WatchResult | None:
        """The rules the policy forces to fire, after the window's first probes were judged (so the
        transition quotes the healthy samples: an auditor sees it was no breach). Each is recorded as
        a forced transition to firing, then acted on exactly as a real firing; a rule already firing
        for real is left alone."""
        forced = self.forced([a.spec for a in self.rules]) if self.forced is not None else {}
        decided: WatchResult | None = None
        for armed in self.rules:
            reason = forced.get(armed.spec.name)
            if reason is None or armed.rule.state is State.FIRING or decided is not None:
                continue
            recent = self._recent.get(armed.probe)
            sample = recent[-1] if recent else None
            at = max(time.time(), sample.at if sample is not None else 0.0)
            moved = Transition(armed.spec.name, at, armed.rule.state, State.FIRING, reason, sample)
            self._record(armed, moved, forced=True)
            decided = self._act(armed, moved)
        self._decided = decided is not None
        return decided

    def _record(self, armed: _Armed, moved: Transition, *, forced: bool = False) -> None:
        """The transition with the sample that caused it and, for a verdict, what the rule read in
        the samples leading up to it ("0.91, 0.93, 0.95"): evidence an auditor can check by eye."""
        from tminus.monitor.overrides import reading

        sample = moved.sample
        recent: list[dict[str, Any]] = []
        if moved.to_state in (State.FIRING, State.INCONCLUSIVE, State.RESOLVED):
            keep = armed.spec.consecutive or RECENT_SAMPLES
            recent = [{"at": s.at, "read": reading(armed.rule.config, s.values, s.error)}
                      for s in list(self._recent.get(armed.probe, ()))[-keep:]]
        marks: dict[str, Any] = {"forced": True} if forced else {}  # a policy's, not a breach
        self.steps.emit(
            ev.MONITOR_TRANSITION, rule=armed.spec.name, probe=armed.probe, action=armed.spec.action,
            rule_text=armed.spec.describe(), reason=moved.reason, at=moved.at,
            **{"from": str(moved.from_state), "to": str(moved.to_state)},
            sample=None if sample is None else {"at": sample.at, "values": sample.values, "error": sample.error},
            recent=recent, **marks,
        )

    def _act(self, armed: _Armed, moved: Transition) -> WatchResult | None:
        spec, to = armed.spec, moved.to_state
        what = f"monitor rule '{spec.name}' ({spec.describe()})"
        if to is State.RESOLVED:
            self.notify(armed, f"resolved: {what}: {moved.reason}")
            return None
        if to is State.INCONCLUSIVE:
            self.notify(armed, f"inconclusive: {what}: {moved.reason}")
            return self._pause(armed, f"{what} is inconclusive: {moved.reason}")
        if to is not State.FIRING:
            return None
        reason = f"{what} fired: {moved.reason}"
        self.notify(armed, f"firing ({spec.action}): {what}: {moved.reason}")
        if spec.action == "notify":
            self.steps.emit(ev.MONITOR_ACTION, rule=spec.name, action="notify", reason=reason, outcome="notified")
            return None
        if spec.action == "pause":
            return self._pause(armed, reason)
        self.steps.emit(ev.MONITOR_ACTION, rule=spec.name, action=spec.action, reason=reason, outcome=spec.action)
        return WatchResult(spec.action, reason, fired=[spec.name])

    def _pause(self, armed: _Armed, reason: str) -> WatchResult | None:
        """Ask the operator: approve = keep watching, --no-go = roll back; silence rolls back."""
        name = armed.spec.name
        if self.ask is None:
            self.steps.emit(ev.MONITOR_ACTION, rule=name, action="pause", reason=reason, outcome="no answer")
            return WatchResult("needs_operator", f"{reason}\nnobody can answer here", fired=[name])
        asked = time.monotonic()
        answer = self.ask(MONITOR_KEY, f"Monitor paused: {reason}. Keep the new state and go on watching?",
                          "Approve to keep watching; --no-go rolls back.", self.spec.pause_timeout)
        self._paused += time.monotonic() - asked  # the window resumes where it paused
        if answer.how == "no-input":
            self.steps.emit(ev.MONITOR_ACTION, rule=name, action="pause", reason=reason, outcome="no answer")
            return WatchResult("needs_operator", f"{reason}\n--no-input: nobody can answer the pause", fired=[name])
        if answer.how == "interrupted":
            return WatchResult("interrupted", "interrupted while paused; `tminus resume` continues")
        if answer.approved:
            self.steps.emit(ev.MONITOR_ACTION, rule=name, action="pause", reason=reason, outcome="continue",
                            by=answer.by, how=answer.how)
            return None
        why = f"{reason}\nthe operator answered the pause with no-go (by {answer.by}, {answer.how})"
        if answer.reason:
            why += f": {answer.reason}"
        self.steps.emit(ev.MONITOR_ACTION, rule=name, action="pause", reason=why, outcome="rollback",
                        by=answer.by, how=answer.how)
        return WatchResult("rollback", why, fired=[name])

    def notify(self, armed: _Armed, message: str) -> None:
        """Tell the rule's and the monitor's channels (in the background: notifications.py)."""
        names = list(dict.fromkeys([*armed.spec.notify, *self.spec.notify]))
        self.notifier.send(names, message, {"rule": armed.spec.name, "rule_text": armed.spec.describe()})


def probe_name(step: Step) -> str:
    return step.name or step.id or step.key


__all__ = ["MONITOR_KEY", "Monitor", "WatchResult", "probe_name"]
