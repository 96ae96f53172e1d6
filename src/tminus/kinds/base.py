"""The contract between the engine and a step kind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tminus.kinds.transport import LocalTransport, Transport
from tminus.templating.masking import Masker

if TYPE_CHECKING:
    from tminus.runbook.models import Step


AUTO_UNDO = ".undo[auto]"  # the key suffix of an undo step a kind derived (step key + suffix)
OUTPUT_TAIL = 4000  # characters of command output kept as evidence


def tail(text: str, limit: int = OUTPUT_TAIL, masker: Masker | None = None) -> str:
    """The end of a long output, marked as truncated; with a masker, secrets are masked before the
    cut (cut first, half a secret at the cut would survive the masking of the event)."""
    return (masker or _NO_SECRETS).tail(text, limit)


_NO_SECRETS = Masker()


# What a kind on SQLAlchemy imports as it runs (`Kind.imports`): the package, the SQLite and PostgreSQL
# dialects and psycopg (its driver); another database's dialect loads when first used.
SQLALCHEMY_IMPORTS = ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.exc", "sqlalchemy.dialects.sqlite.pysqlite",
                      "sqlalchemy.dialects.postgresql.psycopg", "psycopg")

@dataclass
class Observation:
    """What a kind saw.

    `values` are what expectations query (`status`, `headers`, `json`, `stdout`, `exit_code`,
    `duration` in milliseconds, ...); `outputs` are offered to later steps as
    `steps.<id>.<name>`; `evidence` goes into the ledger as proof of the verdict. `error` is set
    when the kind could not observe at all (connection refused, command not found, timeout):
    the step then fails whatever its expectations say.
    """

    values: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    timed_out: bool = False
    # A kind that judges by itself (env, file, manual) puts its failures here.
    failures: list[str] = field(default_factory=list)


class Approvals(Protocol):
    """How a `manual` step obtains a decision (a TTY prompt, another terminal, or --yes)."""

    def request(
        self,
        step_key: str,
        prompt: str,
        instructions: str | None,
        timeout: float | None,
        *,
        second_person_of: str | None = None,
    ) -> Approval: ...


@dataclass
class Approval:
    approved: bool
    by: str
    how: str  # "tty", "approve-command", "--yes", "no-input", "timeout"
    reason: str | None = None
    at: str | None = None


@dataclass
class StepContext:
    """Everything a kind may use while executing one attempt of one step."""

    step: Step
    base_dir: Path
    timeout: float | None
    cancel: threading.Event = field(default_factory=threading.Event)
    environ: Mapping[str, str] = field(default_factory=dict)
    approvals: Approvals | None = None
    # Runs a nested step (a `wait` kind's check) through the same machinery as any step,
    # returning whether it passed and a one-line summary.
    run_nested: Callable[[Step, float | None], tuple[bool, str, Observation]] | None = None
    shared: dict[str, Any] = field(default_factory=dict)  # per-run cache (HTTP client, engines)
    # The runbook's notification channels (name -> tminus.runbook.monitor.Channel, not yet rendered),
    # and a renderer for their templates: render(text, extra_names) with the run's context.
    channels: Mapping[str, Any] = field(default_factory=dict)
    operator: str = ""  # who runs this run (--operator): recorded by kinds that keep their own history
    environment: str = ""  # the run's environment (-e): a `docs` check renders its page for it
    runbook_path: Path | None = None  # the runbook being run, as loaded; None outside a run
    render: Callable[[str, Mapping[str, Any]], str] | None = None
    # Where the step acts: the local host now; SSH hosts and containers later (same step keys).
    transport: Transport = field(default_factory=LocalTransport)
    # Writes a `step.effect` event durably; the engine sets it. None outside a run (tests, tools).
    effect_sink: Callable[[str, dict[str, Any]], None] | None = None
    # A probe (a `watch` step's): the step rendered and observed, not judged (the rules judge it).
    probe: Callable[[Step, float | None], Observation] | None = None
    # Records an event of the step's own (a `watch` step's samples and transitions: watch.*), under
    # its key, in the ledger; the engine sets it for a recorded execution. None outside a run.
    event_sink: Callable[[str, dict[str, Any]], None] | None = None
    # The runbook's `roots:` as written: folders besides base_dir that paths may lie in.
    roots: tuple[str, ...] = ()
    # The run's secrets: what a kind cuts (an output's tail) it masks first, through `tail`.
    masker: Masker = field(default_factory=Masker)
    # Where this attempt's output files go (`<prefix>.out`, `.err`, `.status`), set by the engine for
    # an execution it records; None: the kind uses a private temporary folder.
    spool: Path | None = None

    def tail(self, text: str, limit: int = OUTPUT_TAIL) -> str:
        """The end of a long output, secrets masked before it is cut."""
        return tail(text, limit, self.masker)

    def head(self, text: str, limit: int) -> str:
        """The start of a long output, secrets masked before it is cut."""
        return self.masker.head(text, limit)

    def record_effect(self, kind: str, **details: Any) -> None:
        """Record what this step is about to change, *before* changing it: a crash after this line
        leaves a record that resume and rollback act on (a process group to stop, a version to
        revert to). Returns once the ledger holds it."""
        if self.effect_sink is not None:
            self.effect_sink(kind, details)


class Executor(Protocol):
    def __call__(self, config: Any, ctx: StepContext) -> Observation: ...


class AsyncExecutor(Protocol):
    """The same observation as the kind's executor, awaited on the run's event loop (kinds/aio.py):
    the engine runs side-by-side checks of such a kind concurrently on one loop, not in threads."""

    def __call__(self, config: Any, ctx: StepContext) -> Coroutine[Any, Any, Observation]: ...


class Effect(StrEnum):
    """What a step does to the world, by kind and configuration."""

    NONE = "none"  # a check: safe to repeat after a crash, needs no undo
    REVERSIBLE = "reversible"  # the kind derives its own undo from what it recorded (migrate)
    ADDITIVE = "additive"  # adds and changes nothing (a backup file), or cannot be taken back (a message)
    IRREVERSIBLE = "irreversible"  # changes the world: reversed only by the runbook's `undo`


@dataclass
class Execution:
    """What the ledger knows of one step's executions in a run: the effects each recorded before it
    acted (oldest first, each with its `execution` number) and how the latest one ended, if it did."""

    key: str
    target: str = "local"
    effects: list[dict[str, Any]] = field(default_factory=list)
    status: str | None = None  # None: started, never finished (a crash or a kill)
    outputs: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)

    def first(self, effect: str) -> dict[str, Any] | None:
        return next((e for e in self.effects if e.get("effect") == effect), None)


@dataclass(frozen=True)
class Survivor:
    """A process group an interrupted execution started that still runs (tminus was killed, not the
    step): resume waits for it, or kills it, as the operator chooses."""

    key: str
    pgid: int
    pid: int
    identity: str | None  # the leader's start time: tells it from a later process with its pid
    command: str
    at: float | None  # when it started (epoch seconds)
    status: str | None  # where its exit status lands once it ends (None: nowhere, it cannot be adopted)

    def describe(self) -> str:
        when = "at an unknown time" if self.at is None else time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                                          time.gmtime(self.at))
        return (f"step {self.key}: process group {self.pgid} (pid {self.pid}) is still running "
                f"{self.command!r}, started {when}")

    def to_dict(self) -> dict[str, Any]:
        return {"pgid": self.pgid, "pid": self.pid, "command": self.command, "at": self.at}


@dataclass(frozen=True)
class Resource:
    """A per-run resource a kind keeps in `StepContext.shared` (an HTTP client, database pools);
    the session closes each one once, at the end of the run, if a kind that ran declared it."""

    name: str
    close: Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Refusal:
    """What a kind refuses in a configuration before anything runs: the field at fault, why, what to do."""

    field: str
    message: str
    hint: str | None = None
    warning: bool = False  # reported by `tminus validate` as a warning: the runbook still runs


# (config rendered for plan, the step, describe a nested step) -> one line
Describe = Callable[[Any, "Step", Callable[["Step"], str]], str]
DeriveUndo = Callable[["Step", Execution], "list[Step] | None"]
# Before an interrupted execution is retried, skipped or rolled back: end what it left running
# (a process group); returns a note for the ledger, or None when nothing was left.
Recover = Callable[[Execution, Transport], "str | None"]
# An interrupted execution's process group that still runs (same start-time identity), or None.
FindSurvivor = Callable[[Execution, Transport], "Survivor | None"]
# The interrupted execution, judged from what its survivor left once it ended (output, exit status);
# None when it left no exit status (it was killed): it then counts as interrupted.
Adopt = Callable[[Execution, StepContext], "Observation | None"]
# At validation: the configuration as written (templates unrendered) -> what the kind refuses in it.
Validate = Callable[[Any], "list[Refusal]"]


@dataclass(frozen=True)
class Kind:
    """A kind's descriptor: everything the engine, plan and validation need to know of it."""

    name: str
    execute: Executor
    default_expect: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()  # what expectations can ask of it, for docs and validation
    config: type | None = None  # its pydantic model (defined in tminus.runbook.models)
    effect: Effect | Callable[[Any], Effect] = Effect.IRREVERSIBLE  # or a function of its config
    describe: Describe | None = None  # how `tminus plan` says what it will do
    derive_undo: DeriveUndo | None = None  # the undo of what an execution did (Effect.REVERSIBLE)
    resources: tuple[Resource, ...] = ()
    on_failure: str = "rollback"  # the failure policy when the step sets no on_failure
    recover: Recover | None = None
    validate: Validate | None = None  # refusals validation reports with the runbook's position
    survivor: FindSurvivor | None = None  # what an interrupted execution left running (resume)
    adopt: Adopt | None = None  # judge that execution once its survivor ended (resume --wait)
    execute_async: AsyncExecutor | None = None  # the executor on the run's loop, when the kind has one
    # Libraries its executor imports lazily (sqlalchemy, httpx, ...): imported by `registry.preload` in
    # one thread as a run starts, since two threads importing one package at once may each see it half
    # initialised ("cannot import name ... partially initialized module").
    imports: tuple[str, ...] = ()

    def effect_of(self, config: Any) -> Effect:
        return self.effect if isinstance(self.effect, Effect) else self.effect(config)

    def summary(self, config: Any, step: Step, nested: Callable[[Step], str]) -> str:
        return self.describe(config, step, nested) if self.describe is not None else self.name
