"""The monitor's two sections, the runner's side of monitoring.py: the baseline, probed before the
first phase so ratio rules compare with how the service was, and the window after the go decision,
whose rules may complete the run, roll it back, abort it or ask an operator.

Only a runbook with a `monitor` section builds them (`MonitorSections.of`): the others never load
the rules.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from tminus.engine.lifecycle import Next, SectionResult
from tminus.engine.run_state import RunState
from tminus.runbook.models import MonitorSpec

if TYPE_CHECKING:
    from tminus.engine.monitoring import Monitor, WatchResult


class MonitorSections:
    def __init__(self, state: RunState, spec: MonitorSpec, monitor: Monitor) -> None:
        self.state = state
        self.spec = spec
        self.monitor = monitor

    @classmethod
    def of(cls, state: RunState) -> MonitorSections | None:
        """The monitor of this run, its rules fed what an earlier process recorded (resume);
        None when the runbook does not watch."""
        spec = state.rb.monitor
        if spec is None:
            return None
        from tminus.engine.monitoring import Monitor  # only runbooks that watch pay for the rules

        # the policy asked when the window begins: the run's, guards included (read then, not now)
        monitor = Monitor(state.steps, spec, ask=partial(_ask, state),
                          forced=lambda rules: state.policy.forced_rules(rules))
        monitor.learn(state.prior.baseline_samples)
        if state.prior.cutover_at is not None:
            monitor.begin_cutover(state.prior.cutover_at)
        state.monitor = monitor  # the first phase marks the cutover on it
        return cls(state, spec, monitor)

    def baseline(self, duration: float) -> SectionResult:
        """Probe before the first phase, so ratio rules compare with how the service was."""
        result = self.monitor.baseline(duration)
        if result.outcome == "interrupted":
            self.state.stopped_by_monitor(result.reason)
        return SectionResult(ok=result.outcome == "passed", data={"outcome": result.outcome})

    def window(self, duration: float | None) -> SectionResult:
        """The monitoring window after the go decision. A resumed run rebuilds its rules from the
        samples recorded so far and watches what is left of the window."""
        prior = self.state.prior
        if prior.window_samples:
            decided = self.monitor.restore(prior.window_samples, prior.pause_answers)
            if decided is not None:
                return self._after_watch(decided)
            watched = sum(last - first for first, last in prior.window_segments)
            duration = (self.spec.duration if duration is None else duration) - watched
            if duration <= 0:
                return SectionResult(data={"outcome": "passed"}, reason=(
                    f"{self.state.go_reason}; the monitor window had been watched in full before the run stopped"))
        return self._after_watch(self.monitor.watch(duration))

    def _after_watch(self, result: WatchResult) -> SectionResult:
        data = {"outcome": result.outcome}
        if result.outcome == "passed":
            return SectionResult(data=data,  # the run goes on to its finalize phases, if any
                                 reason=f"{self.state.go_reason}; the monitor window passed ({result.reason})")
        if result.outcome == "interrupted":
            self.state.stopped_by_monitor(result.reason)
        if result.outcome == "abort":
            return SectionResult(Next.ABORT, ok=False, data=data,
                                 reason=f"{result.reason}\n(action: abort: nothing undone)")
        if result.outcome == "needs_operator":
            return SectionResult(Next.NEEDS_OPERATOR, ok=False, data=data,
                                 reason=f"{result.reason}\n`tminus resume {self.state.steps.run_id}` asks again")
        return SectionResult(Next.ROLLBACK, ok=False, reason=result.reason, data=data)


def _ask(state: RunState, key: str, prompt: str, instructions: str | None, timeout: float | None) -> Any:
    """A paused or inconclusive rule asks the operator; with no operator channel, nobody says go on."""
    approvals = state.steps.approvals
    if approvals is None:
        from tminus.kinds.base import Approval

        return Approval(False, "nobody", "no-input", "no operator channel")
    return approvals.request(key, prompt, instructions, timeout)


__all__ = ["MonitorSections"]
