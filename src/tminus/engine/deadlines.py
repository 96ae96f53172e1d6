"""Deadlines as a policy that watches on its own: a phase's `deadline`, the rollback's and the run's
`downtime`, each measured from the run's own events (the projection: projection/deadlines.py), so a
resumed run keeps the clocks it had. A thread looks every `POLL` seconds; a deadline passed while
what it watches is still open is recorded (`deadline.exceeded`), told to its channels, then:

- notify: nothing more;
- rollback: a stop request through the stop channel (the undo path, exit 11);
- pause: at the next step or section boundary the operator is asked (the step running goes on):
  approve = go on, --no-go = roll back (during the rollback: stop it where it is, resumable). Under
  --no-input nobody can answer: the run ends needing an operator (exit 15; `tminus resume` asks
  again); during the rollback the undo goes on instead (a half-undone system is worse than a late one).

What came of each is a `deadline.answered` event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from tminus import events as ev
from tminus.durations import format_duration
from tminus.engine import lifecycle as lc
from tminus.engine.lifecycle import Next
from tminus.engine.notifications import Notifier
from tminus.engine.policy import CONTINUE, Decision, Policy
from tminus.engine.steps import StepRunner
from tminus.engine.stop import ABORT, NEEDS_OPERATOR, ROLLBACK, Stopped
from tminus.projection import RunView
from tminus.runbook.deadlines import PAUSE, SECTION, DeadlineSpec

if TYPE_CHECKING:
    from tminus.engine.lifecycle import Section, SectionResult
    from tminus.engine.stop import StopChannel
    from tminus.runbook.models import Step

POLL = 0.1  # seconds between two looks at the clocks
NAME = "deadlines"


class DeadlineWatch(Policy):
    name = NAME

    def __init__(self, steps: StepRunner, specs: list[DeadlineSpec], history: Iterable[Any]) -> None:
        self.steps = steps
        self.by_id = {s.id: s for s in specs}
        self.specs = [s.to_dict() for s in specs]
        self.view = RunView().apply_all(history)  # what the ledger holds so far: a resume's first clocks
        self._lock = threading.Lock()
        self._fired = {a.id for a in self.view.alerts}  # once per run, across its processes
        # a pause nobody answered before this process began (a crash, --no-input): asked again
        self._pauses = [self.by_id[a.id] for a in self.view.alerts
                        if a.id in self.by_id and a.action == PAUSE and a.outcome in (None, NEEDS_OPERATOR)]
        self.notifier = Notifier(steps)
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop: StopChannel | None = None

    # --- the clocks ------------------------------------------------------------------------------

    def observe(self, event: ev.Event) -> None:
        """An event-bus subscriber: every event of the run, as the ledger gets it."""
        with self._lock:
            self.view.apply(event)

    def start(self, stop: StopChannel) -> None:
        self._stop = stop
        self._thread = threading.Thread(target=self._watch, name="tminus-deadlines", daemon=True)
        self._thread.start()

    def finish(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.notifier.drain()

    def _watch(self) -> None:
        while not self._done.wait(POLL):
            self.check()

    def check(self) -> None:
        """Raise each deadline passed while what it watches is still open (never while holding the
        lock: an emit comes back to `observe`)."""
        with self._lock:
            due = [m for m in self.view.deadlines(self.specs) if m.id not in self._fired and m.ended_at is None
                   and m.exceeded_by is not None]
            self._fired.update(m.id for m in due)
        for m in due:
            with suppress(Stopped):  # the lease is gone: the run stops anyway
                self._exceeded(self.by_id[m.id], m.actual or 0.0)

    def _exceeded(self, spec: DeadlineSpec, elapsed: float) -> None:
        message = (f"deadline exceeded: {spec.what} has taken {format_duration(elapsed)}, its deadline is "
                   f"{format_duration(spec.after)} (action: {spec.action})")
        self.steps.emit(ev.DEADLINE_EXCEEDED, deadline=spec.id, what=spec.what, after=spec.after,
                        action=spec.action, elapsed=round(elapsed, 3), notify=list(spec.notify), message=message)
        self.notifier.send(list(spec.notify), message, {"deadline": spec.id, "action": spec.action})
        if spec.action == ROLLBACK:
            assert self._stop is not None
            taken = self._stop.request(ROLLBACK, message, f"policy:{NAME}")
            self._answered(spec, "rollback" if taken else "told",
                           reason="" if taken else "another stop was already under way")
        elif spec.action == PAUSE:
            with self._lock:
                self._pauses.append(spec)
        else:
            self._answered(spec, "told")

    def _answered(self, spec: DeadlineSpec, outcome: str, **extra: Any) -> None:
        self.steps.emit(ev.DEADLINE_ANSWERED, deadline=spec.id, outcome=outcome, **extra)

    # --- a pause, at the next boundary -------------------------------------------------------------

    def before_section(self, section: Section) -> Decision:
        return self._pause(section)

    def before_step(self, step: Step, section: Section) -> Decision:
        return self._pause(section)

    def after_section(self, section: Section, result: SectionResult) -> Decision:
        if result.next != Next.CONTINUE:
            return CONTINUE  # the section ends the run or rolls it back anyway: nothing to pause before
        return self._pause(section)

    def _pause(self, section: Section) -> Decision:
        with self._lock:
            pending, self._pauses = self._pauses, []
        undoing = section.kind == lc.ROLLBACK
        for i, spec in enumerate(pending):
            if undoing and spec.start[0] == SECTION and spec.start == spec.end:  # a phase's: moot now
                self._answered(spec, "told", reason="the run is rolling back: the phase is over, nothing to pause")
                continue
            decision = self._ask(spec, undoing=undoing)
            if not decision.continues:
                with self._lock:
                    self._pauses = pending[i + 1:] + self._pauses
                return decision
        return CONTINUE

    def _ask(self, spec: DeadlineSpec, *, undoing: bool) -> Decision:
        passed = f"{spec.what} has passed its deadline of {format_duration(spec.after)}"
        approvals = self.steps.approvals
        if approvals is None:
            return self._nobody(spec, passed, undoing)
        no_go = "--no-go stops the rollback where it is (`tminus resume` continues it)" if undoing \
            else "--no-go rolls back"
        answer = approvals.request(f"deadline:{spec.id}", f"{passed}. Go on?", f"Approve to go on; {no_go}.", None)
        if answer.how == "no-input":
            return self._nobody(spec, passed, undoing)
        if answer.how == "interrupted":
            return CONTINUE  # the stop that ended the wait is acted on already
        by = {"by": answer.by, "how": answer.how}
        if answer.approved:
            self._answered(spec, "continue", **by)
            return CONTINUE
        why = f"{passed}; the operator answered the pause with no-go ({answer.by}, {answer.how})"
        if answer.reason:
            why += f": {answer.reason}"
        self._answered(spec, "abort" if undoing else "rollback", reason=why, **by)
        return Decision(ABORT if undoing else ROLLBACK, why)

    def _nobody(self, spec: DeadlineSpec, passed: str, undoing: bool) -> Decision:
        if undoing:
            self._answered(spec, "went on", reason="nobody can answer (--no-input): the rollback goes on")
            return CONTINUE
        why = f"{passed}: it pauses for an operator, and --no-input means nobody can answer"
        self._answered(spec, NEEDS_OPERATOR, reason=why)
        return Decision(NEEDS_OPERATOR, f"{why}; `tminus resume` asks again")


__all__ = ["POLL", "DeadlineWatch"]
