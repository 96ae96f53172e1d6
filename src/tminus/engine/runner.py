"""The run: its lifecycle (gates, baseline, phases, verify, decision, monitor) executed section by
section; on failure or a stop that says so, the undo path: undo steps, rollback steps, verify again.

The runner only decides *what* runs next. Executing a step is `StepRunner`'s job; recording
is the ledger's, which subscribes to the event bus like the display does. The sections are data
(lifecycle.py); what stops a step and what the run does then comes through the stop channel
(stop.py); the policy (policy.py) is consulted at its hook points.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tminus import events as ev
from tminus.engine import lifecycle as lc
from tminus.engine import rollback
from tminus.engine.exitcodes import Exit
from tminus.engine.lifecycle import Lifecycle, Next, Section, SectionResult
from tminus.engine.policy import AFTER_SECTION, BEFORE_SECTION, BEFORE_STEP, Decision, Policy
from tminus.engine.steps import FAILED, OK, StepOutcome, StepRunner
from tminus.engine.stop import ABORT, INTERRUPT, UNDOING, StopRequest
from tminus.runbook.models import Phase, Step

if TYPE_CHECKING:
    from tminus.engine.monitoring import Monitor, WatchResult

DECISION_KEY = "decision"


class _SectionFlag:
    """A yes/no view of one section's recorded status: `prior.gates_passed` reads and writes
    `prior.sections["gates"]`, so what resume fills and what the runner reads are one record."""

    def __init__(self, section: str, yes: str, no: str) -> None:
        self.section, self.yes, self.no = section, yes, no

    def __get__(self, prior: Prior | None, owner: type | None = None) -> bool:
        return prior is not None and prior.sections.get(self.section) == self.yes

    def __set__(self, prior: Prior, value: bool) -> None:
        prior.sections[self.section] = self.yes if value else self.no


@dataclass
class Prior:
    """What an interrupted run had already done, rebuilt from its ledger events (see resume.py)."""

    done: dict[str, StepOutcome] = field(default_factory=dict)
    # section id -> its last recorded status: ok | failed | stopped, and "running" for a rollback
    # that began and has not finished ok. A section recorded ok is not run again.
    sections: dict[str, str] = field(default_factory=dict)
    rollback_reason: str = ""
    # key of the step that started but never finished -> "retry" | "skip" | "rollback"
    interrupted: dict[str, str] = field(default_factory=dict)
    baseline_samples: list[dict[str, Any]] = field(default_factory=list)  # monitor.sample data, stage baseline
    cutover_at: float | None = None  # epoch seconds the first phase began
    window_samples: list[dict[str, Any]] = field(default_factory=list)  # monitor.sample data, stage window
    window_segments: list[list[float]] = field(default_factory=list)  # [start, last sample] per watch, epoch
    pause_answers: dict[str, float] = field(default_factory=dict)  # rule -> epoch of its last "keep watching"
    executions: dict[str, int] = field(default_factory=dict)  # step key -> executions started so far
    effects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # step key -> step.effect data
    rollback_plan: list[dict[str, Any]] | None = None  # the plan the last rollback.started recorded

    gates_passed = _SectionFlag(lc.GATES, lc.OK, lc.FAILED)
    verify_passed = _SectionFlag(lc.VERIFY, lc.OK, lc.FAILED)
    decided_go = _SectionFlag(lc.DECISION, lc.OK, lc.FAILED)  # a resumed run goes on to the monitor
    baseline_done = _SectionFlag(lc.BASELINE, lc.OK, lc.FAILED)
    in_rollback = _SectionFlag(lc.ROLLBACK, lc.RUNNING, lc.OK)


@dataclass
class RunResult:
    status: str  # completed | blocked | rolled_back | rollback_failed | aborted | interrupted | needs_operator
    exit: Exit
    reason: str
    failures: list[str] = field(default_factory=list)


class Stopped(Exception):
    """A stop request cut the current section short; `request.mode` says what the run does next."""

    def __init__(self, request: StopRequest) -> None:
        super().__init__(request.describe())
        self.request = request


class Runner:
    def __init__(
        self, steps: StepRunner, environment: str, prior: Prior | None = None, policy: Policy | None = None
    ) -> None:
        self.steps = steps
        self.stop = steps.stop
        self.policy = policy or Policy()
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
        # what a completed run says it did; a go decision recorded before a resume counts
        self.go_reason = "decision: go (recorded before the run was resumed)" if self.prior.decided_go else ""
        self.rollback_section = Section(lc.ROLLBACK)
        self.current: Section = self.rollback_section if self.prior.in_rollback else Section(lc.GATES)
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
        if self.prior.in_rollback:
            return self.run_rollback(self.prior.rollback_reason or "resumed rollback")
        return self.execute(self.lifecycle(gates_only=gates_only))

    def watch_only(self, *, baseline: float | None, duration: float | None) -> RunResult:
        """`tminus monitor`: the monitor section alone, against a service changed by other means."""
        if self.monitor is None:
            return RunResult("completed", Exit.COMPLETED, "the runbook has no monitor section")
        if baseline is None and self.rb.monitor is not None:
            baseline = self.rb.monitor.baseline  # --baseline 0s skips it
        life = Lifecycle(rollback=self.rollback_section)
        if baseline and not self.prior.baseline_done and not self.prior.window_samples:
            length = baseline
            life.add(Section(lc.BASELINE, run=lambda s: self._baseline(length), done=lambda: False))
        self.go_reason = "watch only"
        life.add(Section(lc.MONITOR, run=lambda s: self._monitor(duration)))
        return self.execute(life)

    # --- the lifecycle ----------------------------------------------------------------------

    def lifecycle(self, *, gates_only: bool = False) -> Lifecycle:
        """The sections of this run, in order. A new section plugs into the result (Lifecycle.plug)."""
        life = Lifecycle(rollback=self.rollback_section)
        life.add(Section(lc.GATES, run=self._gates, starting=lambda: {"gates": [g.name for g in self.rb.gates]}))
        if gates_only:
            return life
        monitor = self.rb.monitor
        if self.monitor is not None and monitor is not None and monitor.baseline:
            length = monitor.baseline
            life.add(Section(lc.BASELINE, run=lambda s: self._baseline(length),
                             done=lambda: self.prior.baseline_done or bool(self.started_phases)))
        for index, phase in enumerate(self.rb.phases):
            life.add(self._phase_section(index, phase))
        if self.rb.verify:
            life.add(Section(lc.VERIFY, run=self._verify))
        life.add(Section(lc.DECISION, run=self._decision))
        if self.monitor is not None and monitor is not None:
            life.add(Section(lc.MONITOR, run=lambda s: self._monitor(None)))
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
        return RunResult("completed", Exit.COMPLETED, self.go_reason or reason)

    def _done_before(self, section: Section) -> bool:
        if section.done is not None:
            return section.done()
        return self.prior.sections.get(section.id) == lc.OK

    def _section(self, section: Section) -> SectionResult:
        """One section: the policy before it, `section.started`, its run, `section.finished`, the
        policy after it; a stop requested meanwhile ends it (Stopped)."""
        self._check_stop()  # a stop requested between sections: this one never starts
        self.current = section
        self._consult(BEFORE_SECTION, self.policy.before_section(section), section)
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
        self._consult(AFTER_SECTION, self.policy.after_section(section, result), section)
        self._check_stop()
        return result

    def run_rollback(self, reason: str) -> RunResult:
        """The undo path, entered from any section (or a resume, or `tminus rollback`). A stop during
        it cannot start a second rollback: an interrupt stops it resumably, an abort stops it where it
        is (rollback_failed: `tminus resume` continues it); rollback and kill switch are ignored."""
        pending = self.stop.pending
        if pending is not None and pending.mode not in UNDOING:
            return self._stopped(pending)  # an interrupt or abort came first: nothing is undone now
        self.stop.enter_rollback()
        self.current = section = self.rollback_section
        section.status = lc.RUNNING
        try:
            result = self.rollback(reason)
        except Stopped as exc:
            section.status = lc.STOPPED
            return self._rollback_stopped(exc.request, reason)
        section.status = lc.OK if result.status == "rolled_back" else lc.FAILED
        return result

    def _stopped(self, request: StopRequest) -> RunResult:
        """What a stop request means outside the rollback."""
        if request.mode == INTERRUPT:
            return RunResult("interrupted", Exit.INTERRUPTED, request.reason or "interrupted")
        if request.mode == ABORT:
            return RunResult("aborted", Exit.ABORTED, f"{request.describe()}\n(stop: abort: nothing undone)")
        return self.run_rollback(request.describe())

    def _rollback_stopped(self, request: StopRequest, reason: str) -> RunResult:
        if request.mode == INTERRUPT:
            return RunResult("interrupted", Exit.INTERRUPTED, request.reason or "interrupted")
        state = (f"the rollback was stopped ({request.describe()}): what is not yet undone stays as it is;\n"
                 f"`tminus resume {self.steps.run_id}` continues the rollback")
        self.steps.emit(ev.ROLLBACK_FINISHED, section="rollback", ok=False, state=state, stopped=request.mode)
        return RunResult("rollback_failed", Exit.ROLLBACK_FAILED, f"{reason}\n{state}")

    # --- gates ----------------------------------------------------------------------------

    def _gates(self, section: Section) -> SectionResult:
        """Every gate's checks, concurrently within a gate; every failure reported."""
        failures = self.manifest_problems()
        for problem in failures:
            self.steps.emit(ev.NOTE, "environment", action="manifest", message=problem)
        for gate in self.rb.gates:
            outcomes = self._concurrently(gate.checks, lc.section_id(lc.GATE, gate.name))
            failures.extend(f"gate '{gate.name}': {o.message}" for o in outcomes if not o.ok)
        if failures:
            return SectionResult(Next.BLOCK, ok=False, reason="a gate failed: nothing was changed",
                                 failures=failures, data={"failures": failures})
        return SectionResult(reason="every gate passed", data={"failures": []})

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

    def _phase_section(self, index: int, phase: Phase) -> Section:
        # done when every step finished ok (a step re-run for its secret outputs is not done)
        return Section(lc.PHASE, phase.name, run=self._phase, index=index,
                       done=lambda: all(self._finished_ok(s) for s in phase.steps),
                       starting=lambda: self._phase_starting(index))

    def _phase_starting(self, index: int) -> dict[str, Any]:
        phase = self.rb.phases[index]
        if index not in self.started_phases:
            self.started_phases.append(index)
        fields: dict[str, Any] = {
            "phase": phase.name,
            "index": index,
            "budget": phase.budget,
            "planned_start": sum(p.budget or 0.0 for p in self.rb.phases[:index]),
        }
        if self.monitor is not None and self.monitor.cutover_at is None:
            self.monitor.begin_cutover()  # the baseline ends where the first change begins
            fields["cutover_at"] = self.monitor.cutover_at
        return fields

    def _phase(self, section: Section) -> SectionResult:
        assert section.index is not None
        phase = self.rb.phases[section.index]
        phase_started = time.monotonic()
        continued: list[str] = []  # steps with on_failure: continue that failed
        for step in phase.steps:
            if self._finished_ok(step):
                continue
            outcome = self._run_step(step, section.id)
            if outcome.ok:
                continue
            policy = step.failure_policy
            if policy == "continue":
                continued.append(step.key)
                continue
            reason = f"step '{step.title}' in phase '{phase.name}' failed:\n{outcome.message}"
            if policy == "abort":
                return SectionResult(Next.ABORT, ok=False, data={"failed_step": step.key},
                                     reason=reason + "\n(on_failure: abort: nothing undone)")
            return SectionResult(Next.ROLLBACK, ok=False, reason=reason, data={"failed_step": step.key})
        data: dict[str, Any] = {"actual": round(time.monotonic() - phase_started, 3), "budget": phase.budget}
        if continued:
            data["continued"] = continued
        return SectionResult(data=data)

    # --- verify and decision --------------------------------------------------------------

    def _verify(self, section: Section) -> SectionResult:
        failures = self._verify_checks(list(self.rb.verify), section.id)
        if failures:
            return SectionResult(Next.ROLLBACK, ok=False, reason="verify failed:\n" + "\n".join(failures),
                                 failures=failures, data={"failures": failures})
        return SectionResult(data={"failures": []})

    def verify(self, *, section: str, after_rollback: bool = False) -> list[str]:
        """Verify as a part of another section (the rollback's verify-after-rollback)."""
        checks = [s for s in self.rb.verify if s.after_rollback or not after_rollback]
        if not checks:
            return []
        where = Section.parse(section).describe()
        self.steps.emit(ev.SECTION_STARTED, **where)
        failures = self._verify_checks(checks, section)
        self.steps.emit(ev.SECTION_FINISHED, **where, ok=not failures, status=lc.FAILED if failures else lc.OK,
                        failures=failures)
        self._check_stop()
        return failures

    def _verify_checks(self, checks: list[Step], section: str) -> list[str]:
        failures = []
        for step in checks:
            outcome = self._run_step(step, section)
            if not outcome.ok:
                failures.append(f"verify '{step.title}': {outcome.message}")
        return failures

    def _decision(self, section: Section) -> SectionResult:
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
            self.go_reason = "every verify check passed; decision: go"
            return SectionResult(reason=self.go_reason, data={"verdict": "go"})
        approvals = self.steps.approvals
        if approvals is None:
            return SectionResult(Next.NEEDS_OPERATOR, ok=False, reason="a manual decision needs an operator")
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
            self.go_reason = f"decision: go (by {approval.by}, {approval.how})"
            return SectionResult(reason=self.go_reason, data={"verdict": verdict})
        self._check_stop()
        why = f"decision: no-go by {approval.by} ({approval.how})"
        if approval.reason:
            why += f": {approval.reason}"
        return SectionResult(Next.ROLLBACK, ok=False, reason=why, data={"verdict": verdict})

    # --- monitor --------------------------------------------------------------------------

    def _baseline(self, duration: float) -> SectionResult:
        """Probe before the first phase, so ratio rules compare with how the service was."""
        assert self.monitor is not None
        result = self.monitor.baseline(duration)
        if result.outcome == "interrupted":
            self._stopped_by_monitor(result.reason)
        return SectionResult(ok=result.outcome == "passed", data={"outcome": result.outcome})

    def _monitor(self, duration: float | None) -> SectionResult:
        """The monitoring window after the go decision. A resumed run rebuilds its rules from the
        samples recorded so far and watches what is left of the window."""
        assert self.monitor is not None and self.rb.monitor is not None
        prior = self.prior
        if prior.window_samples:
            decided = self.monitor.restore(prior.window_samples, prior.pause_answers)
            if decided is not None:
                return self._after_watch(decided)
            watched = sum(last - first for first, last in prior.window_segments)
            duration = (self.rb.monitor.duration if duration is None else duration) - watched
            if duration <= 0:
                return SectionResult(Next.COMPLETE, data={"outcome": "passed"}, reason=(
                    f"{self.go_reason}; the monitor window had been watched in full before the run stopped"))
        return self._after_watch(self.monitor.watch(duration))

    def _after_watch(self, result: WatchResult) -> SectionResult:
        data = {"outcome": result.outcome}
        if result.outcome == "passed":
            return SectionResult(Next.COMPLETE, data=data,
                                 reason=f"{self.go_reason}; the monitor window passed ({result.reason})")
        if result.outcome == "interrupted":
            self._stopped_by_monitor(result.reason)
        if result.outcome == "abort":
            return SectionResult(Next.ABORT, ok=False, data=data,
                                 reason=f"{result.reason}\n(action: abort: nothing undone)")
        if result.outcome == "needs_operator":
            return SectionResult(Next.NEEDS_OPERATOR, ok=False, data=data,
                                 reason=f"{result.reason}\n`tminus resume {self.steps.run_id}` asks again")
        return SectionResult(Next.ROLLBACK, ok=False, reason=result.reason, data=data)

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
        self._check_stop()
        self._consult(BEFORE_STEP, self.policy.before_step(step, self.current), self.current, step)
        choice = self.prior.interrupted.get(step.key)
        if choice == "skip":
            outcome = StepOutcome(step.key, "skipped", message="skipped on resume by the operator")
            self.steps.emit(ev.STEP_SKIPPED, step.key, name=step.title, section=section,
                            message=outcome.message)
        else:
            outcome = self.steps.run(step, section)
        self.done[step.key] = outcome
        self.rerun.discard(step.key)
        self._check_stop()
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

    def _check_stop(self) -> None:
        request = self.stop.pending
        if request is not None:
            raise Stopped(request)

    def _stopped_by_monitor(self, reason: str) -> None:
        """The monitor loop ended because the stop channel was raised: act on the request behind it."""
        self._check_stop()
        raise Stopped(StopRequest(INTERRUPT, reason, "monitor"))

    def _consult(self, hook: str, decision: Decision, section: Section, step: Step | None = None) -> None:
        """A policy decision that stops is recorded, then sent through the stop channel."""
        if decision.continues or decision.stop is None:
            return
        name = decision.policy or self.policy.name
        key = step.key if step is not None else None
        self.steps.emit(ev.POLICY_APPLIED, key, policy=name, hook=hook, **section.describe(), step=key,
                        decision=decision.action, reason=decision.reason)
        self.stop.request(decision.stop, decision.reason, f"policy:{name}")
        self._check_stop()


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
    raise ValueError(f"unknown section result {result.next!r}")


def _criteria_text(criteria: list[dict[str, Any]]) -> str:
    lines = [f"  [{c['verdict']}] {c['check']}" for c in criteria]
    return "Criteria:\n" + "\n".join(lines) if lines else "No verify checks."


__all__ = ["DECISION_KEY", "FAILED", "Prior", "RunResult", "Runner", "Stopped"]
