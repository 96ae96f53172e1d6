"""The run: its lifecycle (gates, baseline, phases, verify, decision, after_go, monitor, finalize) executed section by
section; on failure or a stop that says so, the undo path: undo steps, rollback steps, verify again.

The runner only decides *what* runs next and how the run ends. The sections are data (lifecycle.py)
whose work is elsewhere: the change (changes.py: gates, phases, verify), the go/no-go
(decision.py), the monitor (monitor_sections.py) and the undo path (rollback.py), all sharing the
run's state (run_state.py). Executing a step is `StepRunner`'s job; recording is the ledger's, which
subscribes to the event bus like the display does. What stops a step and what the run does then
comes through the stop channel (stop.py); the policy (policy.py) is consulted at its hook points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from tminus import events as ev
from tminus.engine import after_go, changes, rollback
from tminus.engine import lifecycle as lc
from tminus.engine.decision import decide
from tminus.engine.exitcodes import Exit
from tminus.engine.lifecycle import Lifecycle, Next, Section, SectionResult
from tminus.engine.monitor_sections import MonitorSections
from tminus.engine.policy import AFTER_SECTION, BEFORE_SECTION, Policies, Policy
from tminus.engine.preconditions import Preconditions
from tminus.engine.prior import Prior
from tminus.engine.run_state import RunState
from tminus.engine.steps import StepRunner
from tminus.engine.stop import ABORT, INTERRUPT, NEEDS_OPERATOR, UNDOING, Stopped, StopRequest


@dataclass
class RunResult:
    # completed | not_finalized | blocked | rolled_back | rollback_failed | aborted | interrupted | needs_operator
    status: str
    exit: Exit
    reason: str
    failures: list[str] = field(default_factory=list)


class Runner:
    def __init__(
        self, steps: StepRunner, environment: str, prior: Prior | None = None, policy: Policy | None = None,
        preconditions: Preconditions | None = None,
    ) -> None:
        self.steps = steps
        self.stop = steps.stop
        self.state = RunState(steps, environment, prior or Prior(), policy or Policy())
        self.state.preconditions = preconditions
        self.prior = self.state.prior
        self.rb = self.state.rb
        self.rollback_section = Section(lc.ROLLBACK)
        if self.prior.in_rollback:
            self.state.current = self.rollback_section
        self.monitor = MonitorSections.of(self.state)
        if any(p.guard is not None for p in self.rb.phases):  # only runbooks with guards load the rules
            from tminus.engine.guards import GuardPolicy

            # the phases' guards watch beside whatever policy the session was given
            self.state.policy = Policies([self.state.policy, GuardPolicy(self.state)])
        self.policy = self.state.policy  # the session starts and finishes it

    # --- entry points ---------------------------------------------------------------------

    def run(self, *, gates_only: bool = False) -> RunResult:
        for lost in self.state.secrets_lost:
            self.steps.emit(ev.NOTE, None, action="secret-output-lost", message=(
                f"the secret outputs of {lost} are not stored in the ledger and the step is not re-runnable "
                "(neither a check nor idempotent): later steps that use them will fail"))
        if self.prior.in_rollback:
            return self.run_rollback(self.prior.rollback_reason or "resumed rollback")
        return self.execute(self.lifecycle(gates_only=gates_only))

    def rollback_ended(self) -> RunResult | None:
        """A rollback finished before a crash kept its process from recording the run's end: the
        run ends as that rollback did; nothing runs forward again, nothing is undone twice."""
        ended = self.prior.rollback_ended
        if ended is None:
            return None
        self.steps.emit(ev.NOTE, None, action="rollback-finished-before", message=(
            "the rollback had finished before the run's process stopped: the run ends as it did, "
            "nothing is run again"))
        if ended.ok:
            return RunResult("rolled_back", Exit.ROLLED_BACK, ended.reason)
        return RunResult("rollback_failed", Exit.ROLLBACK_FAILED, f"{ended.reason}\n{ended.state}")

    def watch_only(self, *, baseline: float | None, duration: float | None) -> RunResult:
        """`tminus monitor`: the monitor section alone, against a service changed by other means."""
        watch = self.monitor
        if watch is None:
            return RunResult("completed", Exit.COMPLETED, "the runbook has no monitor section")
        if baseline is None:
            baseline = watch.spec.baseline  # --baseline 0s skips it
        life = Lifecycle(rollback=self.rollback_section)
        if baseline and not self.prior.baseline_done and not self.prior.window_samples:
            length = baseline
            life.add(Section(lc.BASELINE, run=lambda s: watch.baseline(length), done=lambda: False))
        self.state.go_reason = "watch only"
        life.add(Section(lc.MONITOR, run=lambda s: watch.window(duration)))
        return self.execute(life)

    def kill_switch(self, began: float) -> RunResult:
        """`tminus kill-switch`: the kill switch section alone, timed from `began` (monotonic)."""
        from tminus.engine import kill_switch

        section, timing = kill_switch.section(self.state, began)
        result = self.execute(Lifecycle(sections=[section], rollback=self.rollback_section))
        if result.status == "completed" and not timing.within:
            return RunResult(kill_switch.LATE, Exit.KILL_SWITCH_LATE, result.reason)
        return result

    # --- the lifecycle ----------------------------------------------------------------------

    def lifecycle(self, *, gates_only: bool = False) -> Lifecycle:
        """The sections of this run, in order. A new section plugs into the result (Lifecycle.plug)."""
        state, rb, watch = self.state, self.rb, self.monitor
        life = Lifecycle(rollback=self.rollback_section)
        life.add(Section(lc.GATES, run=partial(changes.gates, state),
                         starting=lambda: {"gates": [g.name for g in changes.gates_to_run(state)]}))
        if gates_only:
            return life
        if watch is not None and watch.spec.baseline:
            length = watch.spec.baseline
            life.add(Section(lc.BASELINE, run=lambda s: watch.baseline(length),
                             done=lambda: self.prior.baseline_done or bool(state.started_phases)))
        for index, phase in enumerate(rb.phases):
            life.add(changes.phase_section(state, index, phase))
        if rb.verify:
            life.add(Section(lc.VERIFY, run=partial(changes.verify, state)))
        life.add(Section(lc.DECISION, run=partial(decide, state)))
        if watch is not None:
            life.add(Section(lc.MONITOR, run=lambda s: watch.window(None)))
        after_go.plug(life, state)  # after_go after the decision, finalize after the window
        return life

    def execute(self, life: Lifecycle) -> RunResult:
        """Run the sections in order; each result says whether the run goes on, and how it ends."""
        reason = ""
        try:
            for section in life:
                if self._done_before(section):
                    section.status = lc.DONE_BEFORE
                    continue
                result = self._section(section)
                reason = result.reason or reason
                if result.next == Next.CONTINUE:
                    continue
                if result.next == Next.ROLLBACK:
                    return self.run_rollback(result.reason)
                return _ending(result)
        except Stopped as exc:
            return self._stopped(exc.request)
        # the last section's word (the monitor window's) or, on a resume that ran none, the go
        return RunResult("completed", Exit.COMPLETED, reason or self.state.go_reason)

    def _done_before(self, section: Section) -> bool:
        if section.done is not None:
            return section.done()
        return self.prior.sections.get(section.id) == lc.OK

    def _section(self, section: Section) -> SectionResult:
        """One section: the policy before it, `section.started`, its run, `section.finished`, the
        policy after it; a stop requested meanwhile ends it (Stopped)."""
        state = self.state
        state.check_stop()  # a stop requested between sections: this one never starts
        state.current = section
        state.consult(BEFORE_SECTION, state.policy.before_section(section), section)
        fields = section.starting() if section.starting is not None else {}
        section.status = lc.RUNNING
        self.steps.emit(ev.SECTION_STARTED, **section.describe(), **fields)
        assert section.run is not None
        try:
            result = section.run(section)
        except Stopped as exc:
            section.status = lc.STOPPED
            self.steps.emit(ev.SECTION_FINISHED, **section.describe(), ok=False, status=lc.STOPPED,
                            stopped=exc.request.mode)
            raise
        section.status = lc.OK if result.ok else lc.FAILED
        self.steps.emit(ev.SECTION_FINISHED, **section.describe(), ok=result.ok, status=section.status,
                        **result.data)
        state.consult(AFTER_SECTION, state.policy.after_section(section, result), section)
        state.check_stop()
        return result

    # --- the undo path ----------------------------------------------------------------------

    def run_rollback(self, reason: str) -> RunResult:
        """The undo path, entered from any section (or a resume, or `tminus rollback`). A stop during
        it cannot start a second rollback: an interrupt stops it resumably, an abort stops it where it
        is (rollback_failed: `tminus resume` continues it); rollback and kill switch are ignored."""
        pending = self.stop.pending
        if pending is not None and pending.mode not in UNDOING:
            return self._stopped(pending)  # an interrupt or abort came first: nothing is undone now
        self.stop.enter_rollback()
        self.state.current = section = self.rollback_section
        section.status = lc.RUNNING
        try:
            result = self.rollback(reason)
        except Stopped as exc:
            section.status = lc.STOPPED
            return self._rollback_stopped(exc.request, reason)
        section.status = lc.OK if result.status == "rolled_back" else lc.FAILED
        return result

    def rollback(self, reason: str) -> RunResult:
        """Undo what was done, newest first, then the rollback steps, then verify again (engine/rollback.py)."""
        end = rollback.execute(self.state, reason)
        if end.ok:
            undone = f"\nundone: {', '.join(end.undone)}" if end.undone else ""
            return RunResult("rolled_back", Exit.ROLLED_BACK, reason + undone)
        if end.needs_operator:
            return RunResult("needs_operator", Exit.NEEDS_OPERATOR, f"{reason}\n{end.state}", end.failures)
        return RunResult("rollback_failed", Exit.ROLLBACK_FAILED, f"{reason}\n{end.state}", end.failures)

    # --- how a stop ends the run --------------------------------------------------------------

    def _stopped(self, request: StopRequest) -> RunResult:
        """What a stop request means outside the rollback."""
        if request.mode == INTERRUPT:
            return RunResult("interrupted", Exit.INTERRUPTED, request.reason or "interrupted")
        if request.mode == ABORT:
            return RunResult("aborted", Exit.ABORTED, f"{request.describe()}\n(stop: abort: nothing undone)")
        if request.mode == NEEDS_OPERATOR:
            return RunResult("needs_operator", Exit.NEEDS_OPERATOR, request.reason or "needs an operator")
        return self.run_rollback(request.describe())

    def _rollback_stopped(self, request: StopRequest, reason: str) -> RunResult:
        if request.mode == INTERRUPT:
            return RunResult("interrupted", Exit.INTERRUPTED, request.reason or "interrupted")
        summary = (f"the rollback was stopped ({request.describe()}): what is not yet undone stays as it is;\n"
                 f"`tminus resume {self.steps.run_id}` continues the rollback")
        self.steps.emit(ev.ROLLBACK_FINISHED, section=lc.ROLLBACK, ok=False, state=summary, stopped=request.mode)
        return RunResult("rollback_failed", Exit.ROLLBACK_FAILED, f"{reason}\n{summary}")


def _ending(result: SectionResult) -> RunResult:
    """The run's end a section's result asks for (anything but continue and rollback)."""
    if result.next == Next.COMPLETE:
        return RunResult("completed", Exit.COMPLETED, result.reason)
    if result.next == Next.BLOCK:
        return RunResult("blocked", Exit.BLOCKED, result.reason, result.failures)
    if result.next == Next.ABORT:
        return RunResult("aborted", Exit.ABORTED, result.reason)
    if result.next == Next.NEEDS_OPERATOR:
        return RunResult("needs_operator", Exit.NEEDS_OPERATOR, result.reason)
    if result.next == Next.NOT_FINALIZED:
        return RunResult("not_finalized", Exit.NOT_FINALIZED, result.reason, result.failures)
    raise ValueError(f"unknown section result {result.next!r}")


__all__ = ["RunResult", "Runner"]
