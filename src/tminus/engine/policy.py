"""Policies: what the session hands the runner to decide, at defined hook points, whether the run
goes on or stops (and how). Rehearsal faults ("fail right after phase 2") and guards ("abort if the
deadline passes") are policies: the engine has no test-only paths.

Hook points, each returning a `Decision` (`CONTINUE`, or a stop with a mode and a reason):
- `before_section(section)`: before `section.started` (a stop here means the section never starts);
- `before_step(step, section)`: before a step starts, in any section including the rollback's
  (a stop here means the step never starts: no `step.started`);
- `after_section(section, result)`: after `section.finished`, before the runner acts on the result
  (a stop here takes precedence over the section's own result).
And two for policies that watch on their own (a deadline timer, an external kill switch):
- `start(stop)`: the run begins; `stop` is its `StopChannel`, to call `stop.request(...)` from a thread;
- `finish()`: the run has ended.
And one the monitor asks, not a stop:
- `forced_rules(rules)`: at the first tick of the monitor window (after its first probes were judged),
  the monitor rules this policy forces to fire, as {rule name: reason}; empty by default. The monitor
  records each as a `monitor.transition` to firing with that reason (and `forced: true`), then acts on
  it exactly as on a real firing: a rollback rule rolls back as in production, a notify rule only
  notifies, a pause rule asks. A rehearsal's `monitor` fault is one (rehearsal/faults.py, ForceMonitor);
  the baseline is never forced.

A decision that stops is recorded as a `policy.applied` event and sent through the stop channel as a
request `by` "policy:<name>" (so it is also a `run.stop` event; the first request wins). A policy that
returns `CONTINUE` does nothing and nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tminus.engine.stop import MODES

if TYPE_CHECKING:
    from tminus.engine.lifecycle import Section, SectionResult
    from tminus.engine.stop import StopChannel
    from tminus.runbook.models import Step
    from tminus.runbook.monitor import AlertRule

BEFORE_SECTION = "before_section"
BEFORE_STEP = "before_step"
AFTER_SECTION = "after_section"


@dataclass(frozen=True)
class Decision:
    stop: str | None = None  # None: continue; else a stop mode (interrupt | rollback | abort | kill_switch)
    reason: str = ""
    policy: str = ""  # which policy decided (a composite names the member); the runner fills it in

    def __post_init__(self) -> None:
        if self.stop is not None and self.stop not in MODES:
            raise ValueError(f"unknown stop mode {self.stop!r}: one of {', '.join(MODES)}")

    @property
    def continues(self) -> bool:
        return self.stop is None

    @property
    def action(self) -> str:
        return self.stop or "continue"


CONTINUE = Decision()


def stop(mode: str, reason: str) -> Decision:
    return Decision(mode, reason)


class Policy:
    """The default policy: every hook continues. Subclass and override the hooks you need."""

    name = "default"

    def start(self, stop: StopChannel) -> None:
        return None

    def finish(self) -> None:
        return None

    def before_section(self, section: Section) -> Decision:
        return CONTINUE

    def before_step(self, step: Step, section: Section) -> Decision:
        return CONTINUE

    def after_section(self, section: Section, result: SectionResult) -> Decision:
        return CONTINUE

    def forced_rules(self, rules: Sequence[AlertRule]) -> dict[str, str]:
        return {}


class Policies(Policy):
    """Several policies in order: at each hook the first one that does not continue decides."""

    name = "policies"

    def __init__(self, members: Iterable[Policy]) -> None:
        self.members = list(members)

    def start(self, stop: StopChannel) -> None:
        for p in self.members:
            p.start(stop)

    def finish(self) -> None:
        for p in self.members:
            p.finish()

    def before_section(self, section: Section) -> Decision:
        return self._first(lambda p: p.before_section(section))

    def before_step(self, step: Step, section: Section) -> Decision:
        return self._first(lambda p: p.before_step(step, section))

    def after_section(self, section: Section, result: SectionResult) -> Decision:
        return self._first(lambda p: p.after_section(section, result))

    def forced_rules(self, rules: Sequence[AlertRule]) -> dict[str, str]:
        """Every member's, merged; of two members forcing one rule, the first one's reason is kept."""
        forced: dict[str, str] = {}
        for p in self.members:
            for name, reason in p.forced_rules(rules).items():
                forced.setdefault(name, reason)
        return forced

    def _first(self, ask: Callable[[Policy], Decision]) -> Decision:
        for p in self.members:
            decision = ask(p)
            if not decision.continues:
                return decision if decision.policy else Decision(decision.stop, decision.reason, p.name)
        return CONTINUE


__all__ = ["AFTER_SECTION", "BEFORE_SECTION", "BEFORE_STEP", "CONTINUE", "Decision", "Policies", "Policy", "stop"]
