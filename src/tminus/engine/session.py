"""A session wraps the runner with what a real run needs: a run id, the ledger, the lease,
signal handling and subscribers. `tminus run`, `gate`, `resume` and `rollback` all go through it.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tminus import events as ev
from tminus.engine.approvals import OperatorChannel
from tminus.engine.changes import manifest_problems
from tminus.engine.context import Options, build_templater, effective_vars, lease_key, render_durations
from tminus.engine.exitcodes import Exit
from tminus.engine.lease import LEASE_BROKEN, hold_lease
from tminus.engine.policy import Policies, Policy
from tminus.engine.preconditions import Preconditions
from tminus.engine.prior import Prior
from tminus.engine.recorder import LedgerRecorder
from tminus.engine.runner import Runner, RunResult
from tminus.engine.signals import signals_stop
from tminus.engine.steps import StepRunner
from tminus.engine.stop import INTERRUPT, StopChannel, Stopped, StopRequest
from tminus.engine.survivors import (
    ENDED,
    TIMEOUT,
    await_survivors,
    ended_unwatched,
    find_survivors,
    interrupted_execution,
    left_status,
)
from tminus.errors import LeaseLost, ResumeRefused
from tminus.events import EventBus, Subscriber
from tminus.kinds import registry
from tminus.kinds.base import Survivor
from tminus.kinds.registry import close_resources
from tminus.kinds.transport import LocalTransport
from tminus.ledger.interfaces import Ledger
from tminus.ledger.records import RESUMABLE, Fence, Reclaimed, RunRecord
from tminus.runbook.deadlines import deadlines_of
from tminus.runbook.document import RunbookDocument

if TYPE_CHECKING:
    from tminus.engine.resume import History


def new_run_id() -> str:
    """Sortable by when the run began, to the millisecond, and unique: 20261123-094512-123-3fa9c2d1e0
    (40 random bits: rapid runs in one millisecond do not collide; 16 bits per second did)."""
    now = datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}-{secrets.token_hex(5)}"


class Session:
    def __init__(
        self,
        doc: RunbookDocument,
        ledger: Ledger,
        opts: Options,
        subscribers: list[Subscriber] | None = None,
        pause_display: Callable[[], Any] | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.doc = render_durations(doc, opts)  # once, at the start: vars are known (RunbookError: 78)
        self.loaded = doc  # as written: what a rehearsal's procedure hash was taken of
        self.ledger = ledger
        self.opts = opts
        self.subscribers = subscribers or []
        self.pause_display = pause_display
        self.policy = policy or Policy()
        # How anything stops the run: signals, a lost lease, the policy, another thread (`request_stop`).
        self.stop = StopChannel()
        self.run_id = ""
        self.reclaimed: Reclaimed | None = None  # noted in the run once it is recorded
        self._plain_policy = False  # the session's policy alone (a kill switch: no deadline watch)
        # Recorded in the run.started of a new run (a rehearsal cycle: {"rehearsal": {id, cycle, fault, at}}).
        self.tags: dict[str, Any] = {}
        # What the session tells the operator before a run is recorded (resume waiting for a survivor).
        self.notice: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)

    def request_stop(self, mode: str, reason: str, by: str) -> bool:
        """Stop the current step; the run then does what `mode` says (see engine/stop.py)."""
        return self.stop.request(mode, reason, by)

    # --- public operations ------------------------------------------------------------------

    def run(self, *, gates_only: bool = False, run_id: str | None = None) -> RunResult:
        # `run_id`: chosen by a caller that must know it before the run exists (a rehearsal's kill
        # cycle runs this in a child process it SIGKILLs); a new id otherwise
        self.run_id = run_id or new_run_id()
        if gates_only:  # gates change nothing: no lease needed, re-runnable at any time
            self._create_run("gate")
            return self._drive(Prior(), lambda r: r.run(gates_only=True), started=ev.RUN_STARTED,
                               extra=self._time_facts())
        # The lease first: a refused run must not leave a phantom "running" record behind.
        with self._lease() as fence:
            self._create_run("run")
            return self._drive(Prior(), lambda r: r.run(), started=ev.RUN_STARTED, fence=fence,
                               extra={**self._time_facts(), **self.tags}, release=True)

    def _recorded_times(self, run_id: str) -> None:
        """A resumed run keeps the cutover and the stage it started with (unless given again)."""
        from tminus.projection import project
        from tminus.runbook.timing import parse_at

        started = project(self.ledger.events(run_id, limit=1)).started
        data = started.data if started is not None else {}
        if self.opts.at is None and isinstance(data.get("at"), str):
            self.opts.at = parse_at(data["at"]).timestamp()
        if self.opts.stage is None and isinstance(data.get("stage_offset"), int | float):
            self.opts.stage = float(data["stage_offset"])

    def _time_facts(self) -> dict[str, Any]:
        """What `run.started` records of time: the cutover and, for a stage run, its stage (what a
        later run's stages read back, engine/stages.py)."""
        from tminus.runbook.timing import format_at, format_offset

        facts: dict[str, Any] = {}
        if self.opts.at is not None:
            facts["at"] = format_at(self.opts.at)
        if self.opts.stage is not None:
            facts.update(stage=format_offset(self.opts.stage), stage_offset=self.opts.stage)
        return facts

    def watch(self, *, baseline: float | None = None, duration: float | None = None) -> RunResult:
        """`tminus monitor`: only the monitor section, against a service deployed by other means.
        It holds the lease: a firing rule may run the rollback steps."""
        self.run_id = new_run_id()
        with self._lease() as fence:
            self._create_run("monitor")
            return self._drive(
                Prior(), lambda r: r.watch_only(baseline=baseline, duration=duration), started=ev.RUN_STARTED,
                extra={"action": "monitor", "baseline": baseline, "duration": duration}, fence=fence,
            )

    def kill_switch(self, *, force: bool = False, reason: str | None = None,
                    began: float | None = None) -> RunResult:
        """`tminus kill-switch` (and a rehearsal): the runbook's kill_switch steps as a run of their
        own (kind kill_switch), without gates, under the lease (engine/kill_switch.py says how it
        takes a stale or, with `force`, a live run's lease), timed from `began` against the target."""
        from tminus.engine import kill_switch as ks

        began = time.monotonic() if began is None else began
        spec = self.doc.runbook.kill_switch
        if spec is None:
            raise ResumeRefused(f"the runbook '{self.doc.runbook.name}' has no kill_switch section")
        self.run_id = new_run_id()
        live = ks.live_of(self.ledger, self.doc.runbook.name, self.opts.environment)
        taken = ks.take_over(self.ledger, lease_key(self.doc, self.opts.environment), force=force,
                             by=self.opts.operator, reason=reason or "no reason given")
        self._plain_policy = True  # no deadlines: they watch phases, and a kill switch never rolls back
        extra = {"action": "kill_switch", "target": spec.target, "reason": reason, "forced": force,
                 "live_run": live.run_id if live else None, "live_release": live.release if live else None,
                 "took_over": taken.to_dict() if taken else None}
        with self._lease() as fence:
            self._create_run("kill_switch")
            return self._drive(Prior(), lambda r: r.kill_switch(began), started=ev.RUN_STARTED, extra=extra,
                               fence=fence)

    def resume(self, run: RunRecord, *, choice: str | None = None, reason: str | None = None) -> RunResult:
        """Continue an interrupted run. `choice` answers for an interrupted non-idempotent step; one
        whose process group still runs is waited for and adopted unless the operator chose otherwise."""
        refuse_to_reverse(run, "resumed")
        if run.status not in RESUMABLE:
            raise ResumeRefused(f"run {run.id} ended as '{run.status}'; only {', '.join(RESUMABLE)} runs resume")
        self.run_id = run.id
        self._refuse_an_unready_shell()
        history = _history(self.ledger, run.id)
        prior = history.prior
        steps_by_key = history.steps_by_key(self.doc)
        transport = LocalTransport()
        survivors = find_survivors(steps_by_key, history.interrupted, prior.executions, prior.effects, transport)
        ran = ended_unwatched(history.interrupted, prior.executions, prior.effects, transport.target, survivors)
        if choice is None and (survivors or ran):
            # never a second copy beside the first, nor a second run of one that ran to its end
            # while no tminus watched: its exit status and output are known, so it is adopted
            choice = "wait"
        # without waiting, refused before the lease is taken, as any resume missing a choice; going
        # back (--rollback) still adopts what ran to its end: an undo that completed is not run again
        adopt = {key: ENDED for key in ran} if choice == "rollback" else None
        decisions = None if choice == "wait" else history.choose(self.doc, choice, reason, adopted=adopt,
                                                                 ran_to_end=ran)
        gates_only = run.kind == "gate"  # a resumed gate run stays a gate run: it changes nothing
        self._recorded_times(run.id)  # and a stage run stays that stage's, towards the same cutover

        def body(r: Runner) -> RunResult:
            ended = r.rollback_ended()
            if ended is not None:
                return ended
            if run.kind == "monitor" and not prior.in_rollback:
                return r.watch_only(baseline=None, duration=None)  # a resumed watch goes on where it stopped
            return r.run(gates_only=gates_only)

        with self._lease() as fence:
            if decisions is None:  # under the lease: no other resume acts on the group meanwhile
                decisions = self._wait_for(history, survivors, steps_by_key, transport, reason)
            extra: dict[str, Any] = {"interrupted": decisions, "reason": reason}
            if survivors:
                extra["survivors"] = {key: s.to_dict() for key, s in survivors.items()}
            return self._drive(prior, body, started=ev.RUN_RESUMED, extra=extra, fence=fence)

    def _wait_for(self, history: History, survivors: dict[str, Survivor], steps_by_key: dict[str, Any],
                  transport: LocalTransport, reason: str | None) -> dict[str, str]:
        """`--wait`: each surviving group waited for; an execution that left its exit status (here or
        while no tminus watched) is adopted; one killed before it wrote one falls back to the usual choice."""
        prior = history.prior
        how = await_survivors(survivors, steps_by_key, transport, self.notice)
        adopted: dict[str, str] = {}
        for key in history.interrupted:
            execution = interrupted_execution(key, prior.executions, prior.effects, transport.target)
            if how.get(key) == TIMEOUT or left_status(execution):
                adopted[key] = how.get(key, ENDED)
        return history.choose(self.doc, None, reason, adopted=adopted, lost=set(how) - set(adopted))

    def rollback(self, run: RunRecord, *, reason: str) -> RunResult:
        """Undo a completed run, or one that stopped before it ended (interrupted, crashed, waiting
        for an operator, inside its monitor window, its rollback failed): the same undo path an
        automatic rollback takes. A run still held by a live process is refused by its lease."""
        refuse_to_reverse(run, "rolled back")
        if run.status not in ("completed", *RESUMABLE):
            raise ResumeRefused(f"run {run.id} ended as '{run.status}'; only a completed run or one that has "
                                f"not ended ({', '.join(RESUMABLE)}) can be rolled back")
        self.run_id = run.id
        self._refuse_an_unready_shell()
        history = _history(self.ledger, run.id)
        asked = f"operator {self.opts.operator} asked for a rollback: {reason}"
        prior = history.prior
        transport = LocalTransport()
        for key in ended_unwatched(history.interrupted, prior.executions, prior.effects, transport.target, {}):
            prior.interrupted[key], prior.adopted[key] = "wait", ENDED  # ran to its end: adopted, not run again
        history.roll_back(asked)
        prior = history.prior

        def body(r: Runner) -> RunResult:
            ended = r.rollback_ended()  # a rollback had finished before a crash: honour it
            return ended if ended is not None else r.run_rollback(prior.rollback_reason or asked)

        with self._lease() as fence:
            return self._drive(prior, body, started=ev.RUN_RESUMED, extra={"action": "rollback", "reason": reason},
                               fence=fence)

    # --- machinery ----------------------------------------------------------------------------

    def _refuse_an_unready_shell(self) -> None:
        """Before a resume or a rollback acts: the environment's manifest (required variables set,
        forbidden values absent) and every declared secret. The gates checked them when the run
        began, but this is another shell: one missing a variable would fail a step of a healthy
        cutover and roll it back. Refused (exit 15), nothing recorded: the run stays resumable."""
        rb, environ = self.doc.runbook, self.opts.environ
        problems = manifest_problems(rb, self.opts.environment, environ) + [
            f"secret {name} is declared by the runbook but not set" for name in rb.secrets if not environ.get(name)]
        if problems:
            raise ResumeRefused(
                f"this shell cannot continue run {self.run_id}; nothing was done:\n  " + "\n  ".join(problems)
                + "\nset them as when the run began, then run the command again")

    def _create_run(self, kind: str) -> None:
        self.ledger.create_run(
            run_id=self.run_id,
            runbook_name=self.doc.runbook.name,
            runbook_path=str(self.doc.path.resolve()),
            content_hash=self.doc.content_hash,
            runbook_text=self.doc.text,
            environment=self.opts.environment,
            operator=self.opts.operator,
            host=socket.gethostname(),
            pid=os.getpid(),
            kind=kind,
        )

    def _lease(self) -> AbstractContextManager[Fence]:
        """Hold the run's lease; yields its fence, which every write of the run checks."""
        return hold_lease(self.ledger, lease_key(self.doc, self.opts.environment), run_id=self.run_id,
                          operator=self.opts.operator, wait=self.opts.lock_wait, on_broken=self._lease_broken,
                          on_reclaimed=self._lease_reclaimed)

    def _lease_reclaimed(self, reclaimed: Reclaimed) -> None:
        self.reclaimed = reclaimed

    def _lease_broken(self) -> None:
        """Someone broke our lease (`tminus unlock`): stop before another run acts beside us."""
        self.stop.request(INTERRUPT, LEASE_BROKEN, "lease")

    def _drive(
        self,
        prior: Prior,
        body: Callable[[Runner], RunResult],
        *,
        started: str,
        extra: dict[str, Any] | None = None,
        fence: Fence | None = None,
        release: bool = False,
    ) -> RunResult:
        """Run `body` with the run's writer on the bus: fenced by the lease (`fence`), or unfenced
        for a gate-only run, which holds no lease and changes nothing."""
        registry.preload(step.kind for step in self.doc.runbook.all_steps())
        writer = self.ledger.open_writer(self.run_id, fence=fence)
        bus = EventBus()
        bus.subscribe(LedgerRecorder(writer, self._lost))
        for sub in self.subscribers:
            bus.subscribe(sub)
        facts = {
            "id": self.run_id,
            "environment": self.opts.environment,
            "operator": self.opts.operator,
            "runbook": self.doc.runbook.name,
            "host": socket.gethostname(),
        }
        templater = build_templater(self.doc, self.opts, facts)
        deadlines = deadlines_of(self.doc.runbook)  # as rendered: what the reports measure against
        recorded: dict[str, Any] = {"deadlines": [d.to_dict() for d in deadlines]} if deadlines else {}
        if release and self.doc.runbook.release is not None:  # what `tminus releases` reads back
            recorded.update(release_facts(self.doc.runbook.release, templater))
        steps = StepRunner(
            self.doc, templater, bus, self.run_id, environ=self.opts.environ, approvals=None, stop=self.stop
        )
        steps.started_at = _started_epoch(self.ledger, self.run_id)
        steps.operator = self.opts.operator
        steps.environment = self.opts.environment
        steps.approvals = OperatorChannel(
            ledger=self.ledger, run_id=self.run_id, operator=self.opts.operator, emit=steps.emit,
            stop=self.stop, yes=self.opts.yes, no_input=self.opts.no_input,
            interactive=self.opts.interactive, pause_display=self.pause_display,
        )
        try:
            steps.emit(
                started,
                runbook=self.doc.runbook.name,
                path=str(self.doc.path),
                environment=self.opts.environment,
                operator=self.opts.operator,
                host=facts["host"],
                pid=os.getpid(),
                content_hash=self.doc.content_hash,
                vars=templater.masker.mask_obj(effective_vars(self.doc, self.opts.environment, self.opts.overrides)),
                phases=[{"name": p.name, "budget": p.budget} for p in self.doc.runbook.phases],
                **recorded,
                overrides=self.opts.overrides,  # --var values, so resume and rollback use the same ones
                **(extra or {}),
            )
            if self.reclaimed is not None:  # where `show` and `status` see it, the ended run has a note too
                steps.emit(ev.NOTE, action="lease-reclaimed", message=f"took over the lease: {self.reclaimed.why}",
                           **self.reclaimed.to_dict())
            writer.set_status("running")
        except (LeaseLost, Stopped) as exc:  # the lease was broken before the run began: nothing ran
            self.stop.close()
            result = RunResult("interrupted", Exit.INTERRUPTED, str(exc))
        else:
            result = self._body(steps, prior, body)
        # Everything that leaves the session is masked: printed reasons, JSON, the ledger.
        result.reason = templater.masker.mask(result.reason)
        result.failures = templater.masker.mask_obj(result.failures)
        # The status and run.finished land together (the recorder calls writer.finish). A lost lease:
        # nothing more is recorded, and the run stays resumable.
        with suppress(Stopped):
            steps.emit(ev.RUN_FINISHED, status=result.status, exit_code=int(result.exit), reason=result.reason)
        return result

    def _body(self, steps: StepRunner, prior: Prior, body: Callable[[Runner], RunResult]) -> RunResult:
        """The run itself, with the stop channel recording into the ledger and the policy started."""

        def record(request: StopRequest, accepted: bool, note: str) -> None:
            extra = {"note": note} if note else {}
            with suppress(Stopped):  # the lease is gone: the stop is still obeyed, just not recorded
                steps.emit(ev.STOP_REQUESTED, **request.to_event_data(), accepted=accepted, **extra)

        self.stop.attach(record)
        pre = Preconditions(self.ledger, cutover=self.opts.at, stage=self.opts.stage,
                            started=steps.started_at or time.time(), doc=self.loaded)
        runner = Runner(steps, self.opts.environment, prior, policy=self._policy(steps), preconditions=pre)
        runner.policy.start(self.stop)  # the session's policy, the deadlines and the runbook's guards
        with signals_stop(self.stop):
            try:
                return body(runner)
            except Stopped as exc:  # a refused write (the lease is gone) outside any section
                return RunResult("interrupted", Exit.INTERRUPTED, str(exc) or "interrupted")
            finally:
                self.stop.close()  # the run has ended: a late request stops nothing
                runner.policy.finish()
                # the per-run resources (HTTP clients, database pools) the kinds that ran opened
                close_resources(steps.shared, sorted(steps.kinds_used))
                steps.tidy_spool()

    def _policy(self, steps: StepRunner) -> Policy:
        """The session's policy, and the deadline watch when the runbook sets deadlines (its clocks
        read from the ledger: a resumed run keeps them)."""
        specs = deadlines_of(self.doc.runbook)
        if not specs or self._plain_policy:
            return self.policy
        from tminus.engine.deadlines import DeadlineWatch

        watch = DeadlineWatch(steps, specs, self.ledger.events(self.run_id))
        steps.bus.subscribe(watch.observe)
        return Policies([watch, self.policy])

    def _lost(self, exc: LeaseLost) -> StopRequest:
        """A write was refused because the lease is gone: stop, as when the heartbeat notices. The
        request is made from a thread of its own: the event bus is busy delivering the refused event."""
        threading.Thread(target=self._lease_broken, name="tminus-lease-lost", daemon=True).start()
        return StopRequest(INTERRUPT, LEASE_BROKEN, "lease")


def refuse_to_reverse(run: RunRecord, what: str) -> None:
    """What is never resumed nor rolled back, by its kind (the CLI asks first, before loading anything).
    A kill switch is run again, never resumed or reversed: its steps restore the old path. A
    rehearsal record neither: it changed nothing itself (each cycle's run was rolled back by it)."""
    if run.kind == "kill_switch":
        raise ResumeRefused(f"run {run.id} is a kill switch; it is not {what}: run `tminus kill-switch` again "
                            "(the old path), or `tminus run` a release (the new one)")
    if run.kind == "rehearsal":
        raise ResumeRefused(f"{run.id} is a rehearsal record, not a run; it is not {what}: it changed nothing "
                            "itself and each of its cycles was rolled back by the rehearsal. Rehearse again "
                            f"(`tminus rehearse`), or give a cycle's run id (`tminus show {run.id}` lists them)")


def release_facts(text: str, templater: Any) -> dict[str, Any]:
    """The runbook's `release:` rendered with the run's vars (secrets masked), for `run.started`; a
    template that does not render is recorded as such rather than stop a cutover over a label."""
    from tminus.errors import TemplateError

    try:
        return {"release": templater.masker.mask(templater.render(text).strip())}
    except TemplateError as exc:
        return {"release_error": templater.masker.mask(str(exc))}


def _history(ledger: Ledger, run_id: str) -> History:
    """What the run did so far, folded from its events (imported here: a new run never needs it)."""
    from tminus.engine.resume import history_from_events

    return history_from_events(ledger.events(run_id))


def _started_epoch(ledger: Ledger, run_id: str) -> float:
    """T+0 of the run: when it was first created (a resumed run keeps its original clock)."""
    record = ledger.get_run(run_id)
    try:
        return datetime.fromisoformat(record.started_at).timestamp() if record else time.time()
    except (TypeError, ValueError):
        return time.time()


__all__ = ["Exit", "Session", "new_run_id"]
