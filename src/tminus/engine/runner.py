"""The run: gates, phases, verify, decision; on failure the undo path, rollback steps, verify again.

The runner only decides *what* runs next. Executing a step is `StepRunner`'s job; recording
is the ledger's, which subscribes to the event bus like the display does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tminus import events as ev
from tminus.engine import rollback
from tminus.engine.exitcodes import Exit
from tminus.engine.steps import FAILED, OK, StepOutcome, StepRunner
from tminus.runbook.models import Step

if TYPE_CHECKING:
    from tminus.engine.monitoring import Monitor, WatchResult

DECISION_KEY = "decision"


@dataclass
class Prior:
    """What an interrupted run had already done, rebuilt from its ledger events (see resume.py)."""

    done: dict[str, StepOutcome] = field(default_factory=dict)
    gates_passed: bool = False
    in_rollback: bool = False
    rollback_reason: str = ""
    verify_passed: bool = False
    # key of the step that started but never finished -> "retry" | "skip" | "rollback"
    interrupted: dict[str, str] = field(default_factory=dict)
    decided_go: bool = False  # the go decision was recorded: a resumed run goes on to the monitor
    baseline_done: bool = False
    baseline_samples: list[dict[str, Any]] = field(default_factory=list)  # monitor.sample data, stage baseline
    cutover_at: float | None = None  # epoch seconds the first phase began
    window_samples: list[dict[str, Any]] = field(default_factory=list)  # monitor.sample data, stage window
    window_segments: list[list[float]] = field(default_factory=list)  # [start, last sample] per watch, epoch
    pause_answers: dict[str, float] = field(default_factory=dict)  # rule -> epoch of its last "keep watching"
    executions: dict[str, int] = field(default_factory=dict)  # step key -> executions started so far
    effects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # step key -> step.effect data
    rollback_plan: list[dict[str, Any]] | None = None  # the plan the last rollback.started recorded


@dataclass
class RunResult:
    status: str  # completed | blocked | rolled_back | rollback_failed | aborted | interrupted | needs_operator
    exit: Exit
    reason: str
    failures: list[str] = field(default_factory=list)


class Interrupted(Exception):
    """The operator or a signal stopped the run; it can be resumed."""


class Runner:
    def __init__(self, steps: StepRunner, environment: str, prior: Prior | None = None) -> None:
        self.steps = steps
        self.environment = environment
        self.doc = steps.doc
        self.rb = steps.doc.runbook
        self.prior = prior or Prior()
        self.done: dict[str, StepOutcome] = dict(self.prior.done)
        steps.seed(self.prior.executions, self.prior.effects, self.prior.interrupted)
        self.secrets_lost: list[str] = []  # completed secret-output steps whose values a resume cannot recover
        self.rerun: set[str] = set()  # completed steps to run again for their secret outputs
        by_key = self.doc.step_by_key()
        for outcome in list(self.done.values()):
            step = by_key.get(outcome.key)
            if step is None or outcome.status != OK:
                continue
            if step.secret_output and step.id:
                # The ledger holds only `***` for these outputs. A re-runnable phase step runs again
                # to get its values back; any other keeps them unavailable (later templates fail).
                if StepRunner.is_rerunnable(step) and step.key.startswith("phases"):
                    self.rerun.add(outcome.key)  # still touched (its undo runs on rollback), run again
                else:
                    self.secrets_lost.append(f"{step.title} ({step.key})")
                continue
            if step.id:
                self.steps.outputs[step.id] = outcome.outputs
        self.started_phases: list[int] = [
            i for i, p in enumerate(self.rb.phases) if any(self._touched(s) for s in p.steps)
        ]
        self.monitor: Monitor | None = None
        if self.rb.monitor is not None:
            from tminus.engine.monitoring import Monitor  # only runbooks that watch pay for the rules

            self.monitor = Monitor(steps, self.rb.monitor, ask=self._ask)
            self.monitor.learn(self.prior.baseline_samples)
            if self.prior.cutover_at is not None:
                self.monitor.begin_cutover(self.prior.cutover_at)

    # --- entry points ---------------------------------------------------------------------

    def run(self, *, gates_only: bool = False) -> RunResult:
        for lost in self.secrets_lost:
            self.steps.emit(ev.NOTE, None, action="secret-output-lost", message=(
                f"the secret outputs of {lost} are not stored in the ledger and the step is not re-runnable "
                "(neither a check nor idempotent): later steps that use them will fail"))
        try:
            if self.prior.in_rollback:
                return self.rollback(self.prior.rollback_reason or "resumed rollback")
            if not self.prior.gates_passed:
                failures = self.gates()
                if failures:
                    return RunResult("blocked", Exit.BLOCKED, "a gate failed: nothing was changed", failures)
            if gates_only:
                return RunResult("completed", Exit.COMPLETED, "every gate passed")
            self.baseline()
            result = self.phases()
            if result is not None:
                return result
            if not self.prior.verify_passed:
                failures = self.verify(section="verify")
                if failures:
                    return self.rollback("verify failed:\n" + "\n".join(failures))
            return self.decide()
        except Interrupted as exc:
            return RunResult("interrupted", Exit.INTERRUPTED, str(exc) or "interrupted")

    # --- gates ----------------------------------------------------------------------------

    def gates(self) -> list[str]:
        """Every gate's checks, concurrently within a gate; every failure reported."""
        self.steps.emit(ev.SECTION_STARTED, section="gates", gates=[g.name for g in self.rb.gates])
        failures = self.manifest_problems()
        for problem in failures:
            self.steps.emit(ev.NOTE, "environment", action="manifest", message=problem)
        for gate in self.rb.gates:
            outcomes = self._concurrently(gate.checks, f"gate:{gate.name}")
            failures.extend(f"gate '{gate.name}': {o.message}" for o in outcomes if not o.ok)
        self.steps.emit(ev.SECTION_FINISHED, section="gates", ok=not failures, failures=failures)
        self._check_cancel()
        return failures

    def manifest_problems(self) -> list[str]:
        """The environment's variable manifest: required names set, forbidden values absent."""
        env_name = self.environment
        spec = self.rb.environments.get(env_name)
        if spec is None:
            return []
        environ = self.steps.environ
        out = [
            f"environment variable {n} is required in '{env_name}' but is not set"
            for n in spec.env.required
            if not environ.get(n)
        ]
        for name, forbidden in spec.env.forbidden.items():
            values = [forbidden] if isinstance(forbidden, str) else forbidden
            if name in environ and environ[name] in values:
                # never print the value itself: it may be a secret
                out.append(f"environment variable {name} is set to a value forbidden in '{env_name}'")
        return out

    def _concurrently(self, checks: list[Step], section: str) -> list[StepOutcome]:
        if len(checks) == 1:
            return [self._run_step(checks[0], section)]
        with ThreadPoolExecutor(max_workers=min(16, len(checks))) as pool:
            return list(pool.map(lambda s: self._run_step(s, section), checks))

    # --- phases ---------------------------------------------------------------------------

    def phases(self) -> RunResult | None:
        elapsed_budget = 0.0
        for index, phase in enumerate(self.rb.phases):
            if all(self._finished_ok(s) for s in phase.steps):
                elapsed_budget += phase.budget or 0.0
                continue
            if index not in self.started_phases:
                self.started_phases.append(index)
            cutover: dict[str, Any] = {}
            if self.monitor is not None and self.monitor.cutover_at is None:
                self.monitor.begin_cutover()  # the baseline ends where the first change begins
                cutover["cutover_at"] = self.monitor.cutover_at
            self.steps.emit(
                ev.SECTION_STARTED,
                section=f"phase:{phase.name}",
                phase=phase.name,
                index=index,
                budget=phase.budget,
                planned_start=elapsed_budget,
                **cutover,
            )
            phase_started = time.monotonic()
            for step in phase.steps:
                if self._finished_ok(step):
                    continue
                outcome = self._run_step(step, f"phase:{phase.name}")
                if outcome.ok:
                    continue
                policy = step.failure_policy
                self.steps.emit(
                    ev.SECTION_FINISHED, section=f"phase:{phase.name}", ok=False, failed_step=step.key
                )
                if policy == "continue":
                    continue
                reason = f"step '{step.title}' in phase '{phase.name}' failed:\n{outcome.message}"
                if policy == "abort":
                    return RunResult("aborted", Exit.ABORTED, reason + "\n(on_failure: abort: nothing undone)")
                return self.rollback(reason)
            self.steps.emit(
                ev.SECTION_FINISHED,
                section=f"phase:{phase.name}",
                ok=True,
                actual=round(time.monotonic() - phase_started, 3),
                budget=phase.budget,
            )
            elapsed_budget += phase.budget or 0.0
        return None

    # --- verify and decision --------------------------------------------------------------

    def verify(self, *, section: str, after_rollback: bool = False) -> list[str]:
        checks = [s for s in self.rb.verify if s.after_rollback or not after_rollback]
        if not checks:
            return []
        self.steps.emit(ev.SECTION_STARTED, section=section)
        failures = []
        for step in checks:
            outcome = self.steps.run(step, section)
            self.done[step.key] = outcome
            if not outcome.ok:
                failures.append(f"verify '{step.title}': {outcome.message}")
        self.steps.emit(ev.SECTION_FINISHED, section=section, ok=not failures, failures=failures)
        self._check_cancel()
        return failures

    def decide(self) -> RunResult:
        if self.prior.decided_go:
            return self.watch("decision: go (recorded before the run was resumed)")
        decision = self.rb.decision
        criteria = [
            {
                "check": self.doc.step_by_key()[k].title,
                "key": k,
                "verdict": "pass" if o.ok else "fail",
                "evidence": [v.get("message") for v in o.verdicts],
            }
            for k, o in self.done.items()
            if k.startswith("verify")
        ]
        if decision.mode == "auto":
            self.steps.emit(ev.DECISION, DECISION_KEY, mode="auto", verdict="go", criteria=criteria,
                            reason="every verify check passed")
            return self.watch("every verify check passed; decision: go")
        approvals = self.steps.approvals
        if approvals is None:
            return RunResult("needs_operator", Exit.NEEDS_OPERATOR, "a manual decision needs an operator")
        prompt = decision.prompt or f"Go/no-go for '{self.rb.name}': keep the new state?"
        if decision.require_second_person:  # the one who started the run may not approve it
            approval = approvals.request(DECISION_KEY, prompt, _criteria_text(criteria), decision.timeout,
                                         second_person_of=getattr(approvals, "operator", None) or "")
        else:
            approval = approvals.request(DECISION_KEY, prompt, _criteria_text(criteria), decision.timeout)
        verdict = "go" if approval.approved else "no-go"
        self.steps.emit(
            ev.DECISION, DECISION_KEY, mode="manual", verdict=verdict, criteria=criteria,
            by=approval.by, how=approval.how, reason=approval.reason,
        )
        if approval.approved:
            return self.watch(f"decision: go (by {approval.by}, {approval.how})")
        self._check_cancel()
        why = f"decision: no-go by {approval.by} ({approval.how})"
        if approval.reason:
            why += f": {approval.reason}"
        return self.rollback(why)

    # --- monitor --------------------------------------------------------------------------

    def baseline(self, duration: float | None = None) -> None:
        """Probe before the first phase, so ratio rules compare with how the service was."""
        monitor = self.monitor
        if monitor is None or self.prior.baseline_done or self.started_phases:
            return
        duration = duration if duration is not None else self.rb.monitor.baseline if self.rb.monitor else None
        if not duration:
            return
        result = monitor.baseline(duration)
        if result.outcome == "interrupted":
            raise Interrupted(result.reason)

    def watch(self, go_reason: str, duration: float | None = None) -> RunResult:
        """The monitoring window after the go decision (none: the run is complete). A resumed run
        rebuilds its rules from the samples recorded so far and watches what is left of the window."""
        if self.monitor is None or self.rb.monitor is None:
            return RunResult("completed", Exit.COMPLETED, go_reason)
        prior = self.prior
        if prior.window_samples:
            decided = self.monitor.restore(prior.window_samples, prior.pause_answers)
            if decided is not None:
                return self._after_watch(decided, go_reason)
            watched = sum(last - first for first, last in prior.window_segments)
            duration = (self.rb.monitor.duration if duration is None else duration) - watched
            if duration <= 0:
                return RunResult("completed", Exit.COMPLETED,
                                 f"{go_reason}; the monitor window had been watched in full before the run stopped")
        return self._after_watch(self.monitor.watch(duration), go_reason)

    def watch_only(self, *, baseline: float | None, duration: float | None) -> RunResult:
        """`tminus monitor`: the monitor section alone, against a service changed by other means."""
        if self.monitor is None:
            return RunResult("completed", Exit.COMPLETED, "the runbook has no monitor section")
        if baseline is None and self.rb.monitor is not None:
            baseline = self.rb.monitor.baseline  # --baseline 0s skips it
        if baseline and not self.prior.baseline_done and not self.prior.window_samples:
            result = self.monitor.baseline(baseline)
            if result.outcome == "interrupted":
                raise Interrupted(result.reason)
        return self.watch("watch only", duration)

    def _after_watch(self, result: WatchResult, go_reason: str) -> RunResult:
        if result.outcome == "passed":
            return RunResult("completed", Exit.COMPLETED, f"{go_reason}; the monitor window passed ({result.reason})")
        if result.outcome == "interrupted":
            raise Interrupted(result.reason)
        if result.outcome == "abort":
            return RunResult("aborted", Exit.ABORTED, f"{result.reason}\n(action: abort: nothing undone)")
        if result.outcome == "needs_operator":
            return RunResult("needs_operator", Exit.NEEDS_OPERATOR,
                             f"{result.reason}\n`tminus resume {self.steps.run_id}` asks again")
        return self.rollback(result.reason)

    def _ask(self, key: str, prompt: str, instructions: str | None, timeout: float | None) -> Any:
        approvals = self.steps.approvals
        if approvals is None:
            from tminus.kinds.base import Approval

            return Approval(False, "nobody", "no-input", "no operator channel")
        return approvals.request(key, prompt, instructions, timeout)

    # --- rollback -------------------------------------------------------------------------

    def rollback(self, reason: str) -> RunResult:
        """Undo what was done, newest first, then the rollback steps, then verify again (engine/rollback.py)."""
        end = rollback.execute(self, reason)
        if end.ok:
            return RunResult("rolled_back", Exit.ROLLED_BACK, reason)
        return RunResult("rollback_failed", Exit.ROLLBACK_FAILED, f"{reason}\n{end.state}", end.failures)

    def undo_plan(self) -> Iterable[tuple[Step, str]]:
        """The undo plan derived from what this run executed (engine/rollback.py)."""
        return [(p.step, p.section) for p in rollback.derive(self)]

    # --- helpers --------------------------------------------------------------------------

    def _run_step(self, step: Step, section: str) -> StepOutcome:
        self._check_cancel()
        choice = self.prior.interrupted.get(step.key)
        if choice == "skip":
            outcome = StepOutcome(step.key, "skipped", message="skipped on resume by the operator")
            self.steps.emit(ev.STEP_SKIPPED, step.key, name=step.title, section=section,
                            message=outcome.message)
        else:
            outcome = self.steps.run(step, section)
        self.done[step.key] = outcome
        self.rerun.discard(step.key)
        self._check_cancel()
        return outcome

    def _touched(self, step: Step) -> bool:
        """Started, even if it failed: its undo must run because it may have half-acted.
        A step skipped (by `when` or on resume) did nothing here, so it has nothing to undo."""
        outcome = self.done.get(step.key)
        if outcome is not None:
            return outcome.status != "skipped"
        return step.key in self.prior.interrupted

    def _finished_ok(self, step: Step) -> bool:
        outcome = self.done.get(step.key)
        return outcome is not None and outcome.ok and step.key not in self.rerun

    def _check_cancel(self) -> None:
        if self.steps.cancel.is_set():
            raise Interrupted("interrupted by a signal; `tminus resume` continues")


def _criteria_text(criteria: list[dict[str, Any]]) -> str:
    lines = [f"  [{c['verdict']}] {c['check']}" for c in criteria]
    return "Criteria:\n" + "\n".join(lines) if lines else "No verify checks."


__all__ = ["DECISION_KEY", "FAILED", "Interrupted", "Prior", "RunResult", "Runner"]
