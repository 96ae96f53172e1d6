"""Executing one step: condition, rendering, attempts with retry and timeout, events.

How a step ended is `outcome.StepOutcome`; how an observation is judged against its expectations
is judging.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from tminus import events as ev
from tminus.engine.judging import Judgement
from tminus.engine.judging import judge as judge_expectations
from tminus.engine.outcome import FAILED, INTERRUPTED, OK, SKIPPED, StepOutcome
from tminus.engine.stop import INTERRUPT, StopChannel
from tminus.errors import TemplateError
from tminus.events import Event, EventBus
from tminus.kinds import registry
from tminus.kinds.base import Approvals, Effect, Execution, Observation, StepContext
from tminus.kinds.spool import SPOOL_FIELDS, remove_execution, spool_name
from tminus.kinds.transport import LocalTransport, Transport
from tminus.runbook.document import RunbookDocument
from tminus.runbook.models import Step
from tminus.templating.templater import Templater

STOP_POLL = 0.05  # seconds between looks at the stop channel while a request or a pause is awaited


@dataclass(frozen=True)
class Begun:
    """A step past its intent: rendered, `step.started` emitted; its attempts come next."""

    step: Step
    base: dict[str, Any]
    config: Any


@dataclass(frozen=True)
class _Observe:
    timeout: float | None
    attempt: int


@dataclass(frozen=True)
class _Pause:
    seconds: float


class StepRunner:
    """Runs steps for one run. Shared by gates, phases, verify, undo and rollback."""

    def __init__(
        self,
        doc: RunbookDocument,
        templater: Templater,
        bus: EventBus,
        run_id: str,
        *,
        environ: Mapping[str, str],
        approvals: Approvals | None,
        stop: StopChannel,
    ) -> None:
        self.doc = doc
        self.templater = templater
        self.bus = bus
        self.run_id = run_id
        self.environ = environ
        self.approvals = approvals
        self.stop = stop  # the kinds see it as `ctx.cancel` (a threading.Event)
        self.shared: dict[str, Any] = {}
        self.outputs: dict[str, dict[str, Any]] = {}  # step id -> outputs, for templates
        self.started_at: float | None = None  # epoch seconds of T+0, for `run.t_plus`
        self.operator = ""  # the run's operator, for kinds that record who acted (migrate)
        self.environment = ""  # the run's environment, for kinds that render the runbook again (docs)
        self.transport: Transport = LocalTransport()
        # Executions are keyed by (step key, target, number): number 1 is a key's first execution in
        # the run, 2 its re-run after a resume, ... A resumed run seeds these from its ledger.
        self.executions: dict[str, int] = {}
        self.effects: dict[str, list[dict[str, Any]]] = {}  # step key -> effects recorded, oldest first
        self.kinds_used: set[str] = set()  # whose per-run resources the session closes
        # What every step's context shares, computed once: the runbook's folder is resolved on the disk.
        self.base_dir = doc.base_dir
        self.roots = tuple(doc.runbook.roots)
        # Keys of the side-effect-free checks running side by side now (engine/checkgroup.py): their
        # events are deferrable, written to the ledger in grouped transactions.
        self.grouped: set[str] = set()
        # Output files of executions (per run, 0700; each removed once its outcome is recorded).
        self.spool_dir: Path | None = (self.base_dir / ".tminus" / "spool" / run_id).resolve() if run_id else None
        self._started: set[str] = set()  # keys whose current execution started in this process
        self._spooled: dict[str, list[str]] = {}  # key -> the spool files its process effects named here

    def seed(self, executions: Mapping[str, int], effects: Mapping[str, list[dict[str, Any]]],
             interrupted: Mapping[str, str] | None = None) -> None:
        """What earlier processes of this run executed and recorded (from the ledger, on resume).
        Executions that were `interrupted` (started, never finished; key -> the choice made) may have
        left something running: before a retry or a rollback their kinds end it now; one waited for
        has ended already; one the operator skipped is left running, as they chose (and noted)."""
        self.executions.update(executions)
        for key, recorded in effects.items():
            self.effects.setdefault(key, []).extend(recorded)
        by_key = self.doc.step_by_key()
        for key, choice in (interrupted or {}).items():
            step = by_key.get(key)
            kind = registry.get(step.kind) if step is not None else None
            execution = Execution(key, self.transport.target, self._effects_of(key))
            if kind is None or not execution.effects or choice == "wait":
                continue  # nothing recorded by the interrupted execution: it had not acted yet
            if choice == "skip" and kind.survivor is not None:  # a kind that cannot show one ends it below
                survivor = kind.survivor(execution, self.transport)
                if survivor is not None:
                    self.emit(ev.NOTE, key, action="survivor-left-running", **survivor.to_dict(),
                              message=f"{survivor.describe()}; left running: the operator skipped the step",
                              **self.execution_of(key))
                continue
            note = kind.recover(execution, self.transport) if kind.recover is not None else None
            if note is not None:
                self.emit(ev.NOTE, key, action="interrupted-execution-ended", message=note,
                          **self.execution_of(key))

    def _effects_of(self, key: str) -> list[dict[str, Any]]:
        number = self.executions.get(key)
        return [e for e in self.effects.get(key, []) if e.get("execution", number) == number]

    def adopt(self, step: Step, section: str, how: str) -> StepOutcome:
        """The interrupted execution of `step`, whose surviving process resume waited for (`how`:
        "ended", or "timeout" when it was killed at the step's timeout), judged from what it left,
        and recorded as that execution finishing: the command is not run a second time."""
        base = {"name": step.title, "kind": step.kind, "section": section}
        kind = registry.get(step.kind)
        execution = Execution(step.key, self.transport.target, self._effects_of(step.key))
        ctx = self._context(step, step.timeout, None)
        obs = kind.adopt(execution, ctx) if kind.adopt is not None and how != "timeout" else None
        if how == "timeout":
            obs = Observation(error=f"timed out after {step.timeout or 0:.1f}s (counted from the interrupted "
                                    "execution's start: resume waited for its surviving process, then killed it)",
                              timed_out=True, evidence={"adopted": True})
        elif obs is None:  # its status vanished since resume looked: nothing to judge
            obs = Observation(error="the surviving process left no exit status to adopt", evidence={"adopted": True})
        obs.evidence["adopted"] = True
        self.emit(ev.NOTE, step.key, action="survivor-adopted", how=how, **self.execution_of(step.key),
                  message=f"step {step.key}: the interrupted execution's process "
                          + ("ended; its result is adopted" if how != "timeout" else "was killed at its timeout"))
        judgement = self.judge(step, obs)
        outcome = StepOutcome(step.key, OK if judgement.passed else FAILED, attempts=1,
                              duration=float(obs.values.get("duration", 0.0)) / 1000, message=judgement.message,
                              verdicts=judgement.verdicts, outputs=obs.outputs, evidence=obs.evidence)
        return self._finish(step, base, outcome)

    def drop_spool(self, key: str) -> None:
        """The execution's outcome is recorded: its output files (unmasked) are not needed any more.
        One started in this process left only the files its `process` effects named (a kind removes
        those it never recorded), so those are removed by name; one an earlier process started
        (adopted or skipped on resume) by the folder's listing. The folders stay until the run's
        process ends (`tidy_spool`): made and removed around every step, they cost more than the
        step's own process."""
        named = self._spooled.pop(key, None)
        if named is not None:
            for path in named:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        elif self.spool_dir is not None and key not in self._started:
            remove_execution(self.spool_dir, key, self.executions.get(key, 1))

    def tidy_spool(self) -> None:
        """At the end of this process's part of the run: the spool folders, if nothing is left in them
        (an interrupted execution's files stay for resume)."""
        if self.spool_dir is None:
            return
        for empty in (self.spool_dir, self.spool_dir.parent, self.spool_dir.parent.parent):  # run, spool, .tminus
            try:
                empty.rmdir()  # only if empty: a ledger kept beside the runbook keeps .tminus
            except OSError:
                break

    def execution_of(self, key: str) -> dict[str, Any]:
        """The `target` and `execution` fields every step.started/effect/finished event carries."""
        return {"target": self.transport.target, "execution": self.executions.get(key, 1)}

    def refresh_facts(self) -> None:
        """`run.t_plus` ("T+00:12:05") and `run.t_plus_seconds`: time since the run started."""
        if self.started_at is None:
            return
        secs = max(0, int(time.time() - self.started_at))
        self.templater.set_fact("t_plus", f"T+{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}")
        self.templater.set_fact("t_plus_seconds", secs)

    # --- events -------------------------------------------------------------------------

    def emit(self, type_: str, step_key: str | None = None, **data: Any) -> None:
        """Every event passes the masker: secret values never reach a subscriber. The events of a step
        in `grouped` (a side-effect-free check run beside others) are deferrable."""
        masked = self.templater.masker.mask_obj(data)
        deferrable = step_key is not None and step_key in self.grouped
        self.bus.emit(Event(type_, self.run_id, masked, step_key, deferrable=deferrable))

    # --- one step -----------------------------------------------------------------------

    def run(self, step: Step, section: str, *, emit_start: bool = True) -> StepOutcome:
        begun = self.begin(step, section, emit_start=emit_start)
        if isinstance(begun, StepOutcome):
            return begun
        return self.end(begun, self._attempts(step, begun.config))

    async def run_async(self, step: Step, section: str) -> StepOutcome:
        """`run` for a step whose kind has an async executor, on the run's event loop: the same
        events, attempts and outcome; the request is awaited, not waited for in a thread."""
        begun = self.begin(step, section)
        if isinstance(begun, StepOutcome):
            return begun
        return self.end(begun, await self._attempts_async(step, begun.config))

    def begin(self, step: Step, section: str, *, emit_start: bool = True) -> Begun | StepOutcome:
        """`when`, rendering and the intent (`step.started`); a StepOutcome when it ends there."""
        base = {"name": step.title, "kind": step.kind, "section": section}
        self.refresh_facts()
        if step.when is not None:
            try:
                go = self.templater.truthy(step.when, self.outputs)
            except TemplateError as exc:
                return self._finish(step, base, StepOutcome(step.key, FAILED, message=f"when: {exc}"))
            if not go:
                outcome = StepOutcome(step.key, SKIPPED, message=f"when: {step.when} is false")
                self.emit(ev.STEP_SKIPPED, step.key, **base, message=outcome.message)
                return outcome
        try:
            config = self.templater.render_config(step.config, self.outputs)
        except TemplateError as exc:
            outcome = StepOutcome(step.key, FAILED, message=f"{self.doc.locate(step)}: {exc}")
            return self._finish(step, base, outcome)
        if emit_start:
            self.executions[step.key] = self.executions.get(step.key, 0) + 1
            self._started.add(step.key)
            # The intent is recorded before anything acts: a crash from here on is resumable.
            self.emit(
                ev.STEP_STARTED,
                step.key,
                **base,
                **self.execution_of(step.key),
                location=str(self.doc.locate(step)),
                config=config.model_dump(mode="json", by_alias=True, exclude_none=True),
                check=step.is_check,
                idempotent=self.is_rerunnable(step),
            )
        return Begun(step, base, config)

    def end(self, begun: Begun, outcome: StepOutcome) -> StepOutcome:
        """After the attempts: an interrupt leaves no `step.finished`; any other stop fails the step."""
        request = self.stop.pending
        if request is not None and outcome.status != OK:
            if request.mode == INTERRUPT:
                # Cut short by an interrupt: no "finished" event, so `resume` sees it as interrupted and
                # re-runs it only if it is a check or idempotent (otherwise the operator chooses).
                outcome.status = INTERRUPTED
                return outcome
            # Stopped to roll back or abort: it ends here, failed (and touched: its undo runs).
            outcome.message = f"stopped: {request.describe()}\n{outcome.message}"
            outcome.evidence["stopped"] = request.mode
        return self._finish(begun.step, begun.base, outcome)

    @staticmethod
    def is_rerunnable(step: Step) -> bool:
        return step.is_check if step.idempotent is None else step.idempotent

    def _finish(self, step: Step, base: dict[str, Any], outcome: StepOutcome) -> StepOutcome:
        if step.secret_output:
            for value in _strings(outcome.outputs):
                self.templater.masker.add(value.strip())
        if step.id and outcome.status == OK:
            self.outputs[step.id] = outcome.outputs
        self.emit(ev.STEP_FINISHED, step.key, **base, **self.execution_of(step.key), **outcome.to_event_data())
        self.drop_spool(step.key)
        return outcome

    def _attempts(self, step: Step, config: Any) -> StepOutcome:
        plan = self._attempt_plan(step, config)
        reply: Any = None
        while True:
            try:
                ask = plan.send(reply)
            except StopIteration as done:
                return cast(StepOutcome, done.value)
            if isinstance(ask, _Observe):
                reply = self.observe(step, config, ask.timeout, attempt=ask.attempt)
            else:
                reply = self.stop.wait(ask.seconds)

    async def _attempts_async(self, step: Step, config: Any) -> StepOutcome:
        plan = self._attempt_plan(step, config)
        reply: Any = None
        while True:
            try:
                ask = plan.send(reply)
            except StopIteration as done:
                return cast(StepOutcome, done.value)
            if isinstance(ask, _Observe):
                reply = await self.observe_async(step, config, ask.timeout, attempt=ask.attempt)
            else:
                reply = await self._pause_async(ask.seconds)

    def _attempt_plan(self, step: Step, config: Any) -> Generator[_Observe | _Pause, Any, StepOutcome]:
        """The attempts with retry and timeout, as a plan its driver (sync or async) carries out: it
        yields an observation to make (sent back: the Observation) or a pause between attempts (sent
        back: whether the run was stopped meanwhile), and returns the outcome."""
        retry = step.retry
        attempts = retry.attempts if retry else 1
        interval = retry.interval if retry else 0.0
        overall = retry.timeout if retry else None
        started = time.monotonic()
        outcome = StepOutcome(step.key, FAILED)
        for attempt in range(1, attempts + 1):
            timeout = step.timeout
            if overall is not None:
                left = overall - (time.monotonic() - started)
                if left <= 0:
                    outcome.message += f"\nretry timeout {overall:g}s reached after {attempt - 1} attempts"
                    break
                timeout = left if timeout is None else min(timeout, left)
            obs: Observation = yield _Observe(timeout, attempt)
            judgement = self.judge(step, obs)
            outcome = StepOutcome(
                step.key,
                OK if judgement.passed else FAILED,
                attempts=attempt,
                duration=time.monotonic() - started,
                message=judgement.message,
                verdicts=judgement.verdicts,
                outputs=obs.outputs,
                evidence=obs.evidence,
            )
            if judgement.passed or self.stop.is_set():
                break
            if attempt < attempts:
                self.emit(
                    ev.STEP_ATTEMPT,
                    step.key,
                    attempt=attempt,
                    message=judgement.message,
                    verdicts=judgement.verdicts,
                    evidence=obs.evidence,
                )
                wait = interval
                if retry and retry.max_interval is not None:
                    wait = min(wait, retry.max_interval)
                if (yield _Pause(wait)):
                    break
                interval *= retry.backoff if retry else 1.0
        outcome.duration = time.monotonic() - started
        return outcome

    async def _pause_async(self, seconds: float) -> bool:
        """`stop.wait(seconds)` without blocking the loop: True when the run was stopped meanwhile."""
        import asyncio  # here and below: a run without async checks never loads asyncio

        end = time.monotonic() + seconds
        while not self.stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(STOP_POLL, left))
        return True

    # --- observing and judging ------------------------------------------------------------

    def observe(
        self, step: Step, config: Any, timeout: float | None, *, attempt: int | None = None
    ) -> Observation:
        """What the step's kind saw. Judging it is separate: a monitor probe's sample is judged by the
        rules alone, so the monitor never pays for the step's own expectations."""
        kind = registry.get(step.kind)
        self.kinds_used.add(kind.name)
        ctx = self._context(step, timeout, attempt)
        started = time.monotonic()
        try:
            obs = kind.execute(config, ctx)
        except Exception as exc:  # a kind's bug must not take the run (and its rollback) down
            obs = Observation(error=f"{type(exc).__name__}: {exc}")
        # every step can be judged on `duration` (ms), whether or not its kind measures it itself
        obs.values.setdefault("duration", round((time.monotonic() - started) * 1000, 3))
        return obs

    def probe_observe(self, step: Step, config: Any, timeout: float | None) -> Observation:
        """A probe's observation (monitor, guard, watch), from the probe's thread: on the run's event
        loop when its kind has an async executor and it acts on nothing, so every probe of the run
        shares one client and its kept-alive connections; otherwise as `observe`."""
        kind = registry.get(step.kind)
        if kind.execute_async is None or registry.effect_of(step) != Effect.NONE:
            return self.observe(step, config, timeout)
        self.kinds_used.add(kind.name)  # the loop and the client are closed with the run
        from tminus.kinds.aio import run_loop

        # not cut short by a stop: a sample must be what the service answered, as with a thread
        return run_loop(self.shared).run(self.observe_async(step, config, timeout, stop_cancels=False))

    async def observe_async(
        self, step: Step, config: Any, timeout: float | None, *, attempt: int | None = None,
        stop_cancels: bool = True,
    ) -> Observation:
        """`observe` through the kind's async executor; a stop of the run cancels the request (unless
        `stop_cancels` is False)."""
        import asyncio

        kind = registry.get(step.kind)
        assert kind.execute_async is not None
        self.kinds_used.add(kind.name)
        ctx = self._context(step, timeout, attempt)
        started = time.monotonic()
        request = asyncio.ensure_future(kind.execute_async(config, ctx))
        try:
            while not request.done():
                await asyncio.wait((request,), timeout=STOP_POLL)
                if stop_cancels and self.stop.is_set() and not request.done():
                    request.cancel()
            obs = request.result()
        except asyncio.CancelledError:
            if not self.stop.is_set():
                raise  # the loop itself is going away: not ours to swallow
            obs = Observation(error="interrupted during the request (the run was stopped)")
        except Exception as exc:  # a kind's bug must not take the run (and its rollback) down
            obs = Observation(error=f"{type(exc).__name__}: {exc}")
        obs.values.setdefault("duration", round((time.monotonic() - started) * 1000, 3))
        return obs

    def _context(self, step: Step, timeout: float | None, attempt: int | None) -> StepContext:
        return StepContext(
            step=step,
            base_dir=self.base_dir,
            timeout=timeout,
            cancel=self.stop,
            environ=self.environ,
            approvals=self.approvals,
            run_nested=self._run_nested,
            shared=self.shared,
            channels=self.doc.runbook.channels,
            operator=self.operator,
            environment=self.environment,
            runbook_path=self.doc.path,
            render=lambda text, extra: self.templater.render(text, self.outputs, extra),
            transport=self.transport,
            # a nested check (wait) or a monitor probe is no execution of its own: nothing to record
            effect_sink=None if attempt is None else self._effect_sink(step, attempt),
            probe=self._probe,
            event_sink=None if attempt is None else self._event_sink(step, attempt),
            roots=self.roots,
            masker=self.templater.masker,
            spool=None if attempt is None else self._spool(step.key, attempt),
        )

    def _spool(self, key: str, attempt: int) -> Path | None:
        """Where a recorded execution's output goes (it must outlive this process)."""
        if self.spool_dir is None:
            return None
        return self.spool_dir / spool_name(key, self.executions.get(key, 1), attempt)

    def judge(self, step: Step, obs: Observation) -> Judgement:
        """The observation against the step's expectations (or its kind's defaults)."""
        return judge_expectations(self.doc, self.templater, self.outputs, step, obs,
                                  registry.get(step.kind).default_expect)

    def _effect_sink(self, step: Step, attempt: int) -> Callable[[str, dict[str, Any]], None]:
        def record(effect: str, details: dict[str, Any]) -> None:
            data = {"effect": effect, **details, **self.execution_of(step.key), "attempt": attempt}
            if effect == "process":  # the files it names are removed once the outcome is recorded
                self._spooled.setdefault(step.key, []).extend(
                    str(details[name]) for name in SPOOL_FIELDS if name in details)
            # The bus appends to the ledger before emit returns: the effect is durable before it acts.
            self.emit(ev.STEP_EFFECT, step.key, **data)
            self.effects.setdefault(step.key, []).append(self.templater.masker.mask_obj(data))

        return record

    def _event_sink(self, step: Step, attempt: int) -> Callable[[str, dict[str, Any]], None]:
        """What a kind may record of its own: only watch.* (samples and transitions), masked."""

        def record(kind: str, data: dict[str, Any]) -> None:
            if kind not in (ev.WATCH_SAMPLE, ev.WATCH_TRANSITION):
                raise ValueError(f"a kind may not record {kind!r}")
            self.emit(kind, step.key, **self.templater.masker.mask_obj(data), attempt=attempt)

        return record

    def _probe(self, step: Step, timeout: float | None) -> Observation:
        """A probe of a `watch` step: rendered now (it sees the outputs so far), observed, not judged."""
        try:
            config = self.templater.render_config(step.config, self.outputs)
        except TemplateError as exc:
            return Observation(error=f"template: {exc}")
        if step.timeout is not None:
            timeout = step.timeout if timeout is None else min(step.timeout, timeout)
        return self.probe_observe(step, config, timeout)

    def _run_nested(self, step: Step, timeout: float | None) -> tuple[bool, str, Observation]:
        try:
            config = self.templater.render_config(step.config, self.outputs)
        except TemplateError as exc:
            return False, str(exc), Observation(error=str(exc))
        if step.timeout is not None:
            timeout = step.timeout if timeout is None else min(step.timeout, timeout)
        obs = self.observe(step, config, timeout)
        judgement = self.judge(step, obs)
        summary = "passed" if judgement.passed else judgement.message.splitlines()[0]
        return judgement.passed, summary, obs


def _strings(obj: Any) -> list[str]:
    """Every string inside nested dicts and lists, and inside text that is itself JSON
    (a command printing credentials as JSON: each value is a secret on its own)."""
    if isinstance(obj, str):
        text = obj.strip()
        if text[:1] in ("{", "["):
            try:
                return [obj, *_strings(json.loads(text))]
            except ValueError:
                pass
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list | tuple):
        return [s for v in obj for s in _strings(v)]
    return []
