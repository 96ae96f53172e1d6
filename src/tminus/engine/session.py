"""A session wraps the runner with what a real run needs: a run id, the ledger, the lease,
signal handling and subscribers. `tminus run`, `gate`, `resume` and `rollback` all go through it.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tminus import events as ev
from tminus.engine.approvals import OperatorChannel
from tminus.engine.exitcodes import Exit
from tminus.engine.resume import history_from_events
from tminus.engine.runner import Prior, Runner, RunResult
from tminus.engine.steps import StepRunner
from tminus.errors import ResumeRefused, TminusError
from tminus.events import EventBus, Subscriber
from tminus.runbook.document import RunbookDocument
from tminus.templating.templater import Templater

RESUMABLE = ("running", "interrupted", "rollback_failed", "needs_operator")


@dataclass
class Options:
    environment: str
    overrides: dict[str, Any] = field(default_factory=dict)
    operator: str = ""
    yes: bool = False
    no_input: bool = False
    interactive: bool = False
    lock_wait: float = 0.0
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))


def new_run_id() -> str:
    """Sortable and short: 20261123-094512-3fa9."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def resolve_environment(doc: RunbookDocument, name: str | None) -> str:
    envs = doc.runbook.environments
    if name is None:
        if not envs:
            return "default"
        if len(envs) == 1:
            return next(iter(envs))
        raise TminusError(f"choose an environment with -e: {', '.join(envs)}")
    if envs and name not in envs:
        raise TminusError(f"unknown environment '{name}'; the runbook defines: {', '.join(envs)}")
    return name


def effective_vars(doc: RunbookDocument, environment: str, overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(doc.runbook.vars)
    env = doc.runbook.environments.get(environment)
    if env is not None:
        merged.update(env.vars)
    merged.update(overrides)
    return merged


def build_templater(
    doc: RunbookDocument, opts: Options, facts: dict[str, Any], *, plan_mode: bool = False
) -> Templater:
    return Templater(
        vars=effective_vars(doc, opts.environment, opts.overrides),
        environ=opts.environ,
        secrets=doc.runbook.secrets,
        run=facts,
        plan_mode=plan_mode,
    )


def lease_key(doc: RunbookDocument, environment: str) -> str:
    return f"{doc.runbook.name}@{environment}"


class Session:
    def __init__(
        self,
        doc: RunbookDocument,
        ledger: Any,
        opts: Options,
        subscribers: list[Subscriber] | None = None,
        pause_display: Callable[[], Any] | None = None,
    ) -> None:
        self.doc = doc
        self.ledger = ledger
        self.opts = opts
        self.subscribers = subscribers or []
        self.pause_display = pause_display
        self.cancel = threading.Event()
        self.run_id = ""
        self.lease_lost = False

    # --- public operations ------------------------------------------------------------------

    def run(self, *, gates_only: bool = False) -> RunResult:
        self.run_id = new_run_id()
        if gates_only:  # gates change nothing: no lease needed, re-runnable at any time
            self._create_run("gate")
            return self._drive(Prior(), lambda r: r.run(gates_only=True), started=ev.RUN_STARTED)
        # The lease first: a refused run must not leave a phantom "running" record behind.
        with self._lease():
            self._create_run("run")
            return self._drive(Prior(), lambda r: r.run(), started=ev.RUN_STARTED)

    def watch(self, *, baseline: float | None = None, duration: float | None = None) -> RunResult:
        """`tminus monitor`: only the monitor section, against a service deployed by other means.
        It holds the lease: a firing rule may run the rollback steps."""
        self.run_id = new_run_id()
        with self._lease():
            self._create_run("monitor")
            return self._drive(
                Prior(), lambda r: r.watch_only(baseline=baseline, duration=duration), started=ev.RUN_STARTED,
                extra={"action": "monitor", "baseline": baseline, "duration": duration},
            )

    def resume(self, run: Any, *, choice: str | None = None, reason: str | None = None) -> RunResult:
        """Continue an interrupted run. `choice` answers for an interrupted non-idempotent step."""
        if run.status not in RESUMABLE:
            raise ResumeRefused(f"run {run.id} ended as '{run.status}'; only {', '.join(RESUMABLE)} runs resume")
        self.run_id = run.id
        history = history_from_events(self.ledger.events(run.id))
        prior = history.prior
        steps = history.steps_by_key(self.doc)  # derived undo steps of a recorded rollback too
        decisions: dict[str, str] = {}
        for key in history.interrupted:
            step = steps.get(key)
            if step is None:
                continue
            if StepRunner.is_rerunnable(step):
                decisions[key] = "retry"
            elif choice is None:
                raise ResumeRefused(
                    f"step '{step.title}' ({key}) was interrupted while it ran and is neither a check nor "
                    "idempotent: it may have half-acted.\nChoose: --retry (run it again), "
                    "--skip --reason '...' (it completed; go on), or --rollback (undo what was done)"
                )
            else:
                decisions[key] = choice
                if choice == "skip" and not reason:
                    raise ResumeRefused("--skip needs --reason: say why the step may be taken as done")
        prior.interrupted = decisions
        if "rollback" in decisions.values():
            prior.in_rollback = True
            prior.rollback_reason = "the operator chose to roll back after an interruption"
        gates_only = run.kind == "gate"  # a resumed gate run stays a gate run: it changes nothing

        def body(r: Runner) -> RunResult:
            if run.kind == "monitor" and not prior.in_rollback:
                return r.watch_only(baseline=None, duration=None)  # a resumed watch goes on where it stopped
            return r.run(gates_only=gates_only)

        with self._lease():
            return self._drive(prior, body, started=ev.RUN_RESUMED, extra={"interrupted": decisions, "reason": reason})

    def rollback(self, run: Any, *, reason: str) -> RunResult:
        """Undo a completed run: the same undo path an automatic rollback takes."""
        if run.status != "completed":
            raise ResumeRefused(f"run {run.id} is '{run.status}'; only a completed run can be rolled back")
        self.run_id = run.id
        prior = history_from_events(self.ledger.events(run.id)).prior
        with self._lease():
            return self._drive(
                prior, lambda r: r.rollback(f"operator {self.opts.operator} asked for a rollback: {reason}"),
                started=ev.RUN_RESUMED, extra={"action": "rollback", "reason": reason},
            )

    # --- machinery ----------------------------------------------------------------------------

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

    @contextmanager
    def _lease(self) -> Iterator[None]:
        lease = self.ledger.acquire_lease(
            lease_key(self.doc, self.opts.environment),
            run_id=self.run_id,
            operator=self.opts.operator,
            host=socket.gethostname(),
            pid=os.getpid(),
            wait=self.opts.lock_wait,
        )
        lease.start_heartbeat()
        done = threading.Event()

        def watch() -> None:
            # Someone broke our lease (`tminus unlock`): stop before another run acts beside us.
            while not done.is_set():
                if lease.lost.wait(0.5):
                    self.lease_lost = True
                    self.cancel.set()
                    return

        threading.Thread(target=watch, name="tminus-lease-watch", daemon=True).start()
        try:
            yield
        finally:
            done.set()
            lease.release()

    def _drive(
        self,
        prior: Prior,
        body: Callable[[Runner], RunResult],
        *,
        started: str,
        extra: dict[str, Any] | None = None,
    ) -> RunResult:
        bus = EventBus()
        bus.subscribe(self.ledger.append)
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
        steps = StepRunner(
            self.doc, templater, bus, self.run_id, environ=self.opts.environ, approvals=None, cancel=self.cancel
        )
        steps.started_at = _started_epoch(self.ledger, self.run_id)
        steps.operator = self.opts.operator
        steps.approvals = OperatorChannel(
            ledger=self.ledger, run_id=self.run_id, operator=self.opts.operator, emit=steps.emit,
            cancel=self.cancel, yes=self.opts.yes, no_input=self.opts.no_input,
            interactive=self.opts.interactive, pause_display=self.pause_display,
        )
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
            overrides=self.opts.overrides,  # --var values, so resume and rollback use the same ones
            **(extra or {}),
        )
        self.ledger.set_status(self.run_id, "running")
        runner = Runner(steps, self.opts.environment, prior)
        with _signals_set(self.cancel):
            try:
                result = body(runner)
            finally:
                _close_shared(steps)
        if self.lease_lost and result.status == "interrupted":
            result.reason = f"the lease was broken by `tminus unlock`; the run stopped. {result.reason}"
        # Everything that leaves the session is masked: printed reasons, JSON, the ledger.
        result.reason = templater.masker.mask(result.reason)
        result.failures = templater.masker.mask_obj(result.failures)
        finished = result.status != "interrupted"
        steps.emit(ev.RUN_FINISHED, status=result.status, exit_code=int(result.exit), reason=result.reason)
        self.ledger.set_status(
            self.run_id, result.status, exit_code=int(result.exit), reason=result.reason, finished=finished
        )
        return result


def _started_epoch(ledger: Any, run_id: str) -> float:
    """T+0 of the run: when it was first created (a resumed run keeps its original clock)."""
    record = ledger.get_run(run_id)
    try:
        return datetime.fromisoformat(record.started_at).timestamp()
    except (AttributeError, TypeError, ValueError):
        import time

        return time.time()


@contextmanager
def _signals_set(cancel: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM stop the current step (its process group is killed) and end the run resumably."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        cancel.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _close_shared(steps: StepRunner) -> None:
    """Close the per-run resources (HTTP clients, database pools) that the kinds which ran declared."""
    from tminus.kinds.registry import close_resources

    close_resources(steps.shared, sorted(steps.kinds_used))


__all__ = ["Exit", "Options", "Session", "effective_vars", "new_run_id", "resolve_environment"]
