"""What every section of a run shares: what the run has done so far, and the one way a section
runs a step (the stop channel checked around it, the policy consulted before it).

The runner builds one `RunState` and hands it to each section (changes.py, decision.py,
monitor_sections.py) and to the rollback (rollback.py); none of them import the runner, so imports
point down: runner -> sections -> run_state -> steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tminus import events as ev
from tminus.engine import lifecycle as lc
from tminus.engine.lifecycle import Section
from tminus.engine.outcome import OK, SKIPPED, StepOutcome
from tminus.engine.policy import BEFORE_STEP, Decision, Policy
from tminus.engine.prior import Prior
from tminus.engine.steps import StepRunner
from tminus.engine.stop import INTERRUPT, Stopped, StopRequest
from tminus.runbook.models import Step

if TYPE_CHECKING:
    from tminus.engine.monitoring import Monitor
    from tminus.engine.preconditions import Preconditions


class RunState:
    def __init__(self, steps: StepRunner, environment: str, prior: Prior, policy: Policy) -> None:
        self.steps = steps
        self.stop = steps.stop
        self.policy = policy
        self.environment = environment
        self.doc = steps.doc
        self.rb = steps.doc.runbook
        self.prior = prior
        self.done: dict[str, StepOutcome] = dict(prior.done)
        steps.seed(prior.executions, prior.effects, prior.interrupted)
        self.secrets_lost: list[str] = []  # completed secret-output steps whose values a resume cannot recover
        self.rerun: set[str] = set()  # completed steps to run again for their secret outputs
        self._restore_outputs()
        self.started_phases: list[int] = [
            i for i, p in enumerate(self.rb.phases) if any(self.touched(s) for s in p.steps)
        ]
        # what a completed run says it did; a go decision recorded before a resume counts
        self.go_reason = "decision: go (recorded before the run was resumed)" if prior.decided_go else ""
        self.current = Section(lc.GATES)  # the section running now: the policy's before_step sees it
        self.monitor: Monitor | None = None  # set by the monitor sections when the runbook watches
        # the ledger and the clock for `requires:` and stages (None: a run without them, e.g. in tests)
        self.preconditions: Preconditions | None = None

    def _restore_outputs(self) -> None:
        """Outputs of steps an earlier process completed feed later templates again."""
        by_key = self.doc.step_by_key()
        for outcome in list(self.done.values()):
            step = by_key.get(outcome.key)
            if step is None or outcome.status != OK:
                continue
            if step.secret_output and step.id:
                # The ledger holds only `***` for these outputs. A re-runnable phase step runs again
                # to get its values back; any other keeps them unavailable (later templates fail).
                if StepRunner.is_rerunnable(step) and step.key.startswith(("phases", "after_go", "finalize")):
                    self.rerun.add(outcome.key)  # still touched (its undo runs on rollback), run again
                else:
                    self.secrets_lost.append(f"{step.title} ({step.key})")
                continue
            if step.id:
                self.steps.outputs[step.id] = outcome.outputs

    # --- running one step -------------------------------------------------------------------

    def run_step(self, step: Step, section: str) -> StepOutcome:
        """A step of any section: a stop pending or asked for by the policy means it never starts;
        one requested while it ran ends the section after it (Stopped)."""
        self.before_step(step)
        choice = self.prior.interrupted.get(step.key)
        if choice == "skip":
            # the operator says it completed: it acted, so its undo runs on a later rollback
            outcome = StepOutcome(step.key, SKIPPED, message="skipped on resume by the operator", touched=True)
            self.steps.emit(ev.STEP_SKIPPED, step.key, name=step.title, section=section,
                            message=outcome.message, touched=True)
            self.steps.drop_spool(step.key)
        elif choice == "wait" and step.key in self.prior.adopted:
            # its process outlived the killed tminus and resume waited for it: judged, not run again
            outcome = self.steps.adopt(step, section, self.prior.adopted.pop(step.key))
        else:
            outcome = self.steps.run(step, section)
        self.after_step(step, outcome)
        self.check_stop()
        return outcome

    def before_step(self, step: Step) -> None:
        """A stop pending, or asked for by the policy, means the step never starts (Stopped)."""
        self.check_stop()
        self.consult(BEFORE_STEP, self.policy.before_step(step, self.current), self.current, step)
        self.check_stop()  # a policy watching on its own (a guard's first probes) stopped the run meanwhile

    def after_step(self, step: Step, outcome: StepOutcome) -> None:
        self.done[step.key] = outcome
        self.rerun.discard(step.key)

    def touched(self, step: Step) -> bool:
        """Started, even if it failed: its undo must run because it may have half-acted.
        A step skipped by `when` did nothing, so it has nothing to undo; one the operator skipped
        on resume (`--skip`: it completed) did act."""
        outcome = self.done.get(step.key)
        if outcome is not None:
            return outcome.status != SKIPPED or outcome.touched
        return step.key in self.prior.interrupted

    def finished_ok(self, step: Step) -> bool:
        """Done already: it finished ok (in this process or an earlier one) and is not to be re-run."""
        outcome = self.done.get(step.key)
        return outcome is not None and outcome.ok and step.key not in self.rerun

    # --- stops and the policy ---------------------------------------------------------------

    def check_stop(self) -> None:
        request = self.stop.pending
        if request is not None:
            raise Stopped(request)

    def stopped_by_monitor(self, reason: str) -> None:
        """The monitor loop ended because the stop channel was raised: act on the request behind it."""
        self.check_stop()
        raise Stopped(StopRequest(INTERRUPT, reason, "monitor"))

    def consult(self, hook: str, decision: Decision, section: Section, step: Step | None = None) -> None:
        """A policy decision that stops is recorded, then sent through the stop channel."""
        if decision.continues or decision.stop is None:
            return
        name = decision.policy or self.policy.name
        key = step.key if step is not None else None
        self.steps.emit(ev.POLICY_APPLIED, key, policy=name, hook=hook, **section.describe(), step=key,
                        decision=decision.action, reason=decision.reason)
        self.stop.request(decision.stop, decision.reason, f"policy:{name}")
        self.check_stop()


__all__ = ["RunState"]
