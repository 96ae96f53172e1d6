"""The contract between the engine and a step kind."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tminus.runbook.models import Step


OUTPUT_TAIL = 4000  # characters of command output kept as evidence


def tail(text: str, limit: int = OUTPUT_TAIL) -> str:
    """The end of a long output, marked as truncated."""
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters truncated ...]\n" + text[-limit:]


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
    render: Callable[[str, Mapping[str, Any]], str] | None = None


class Executor(Protocol):
    def __call__(self, config: Any, ctx: StepContext) -> Observation: ...


@dataclass(frozen=True)
class Kind:
    name: str
    execute: Executor
    default_expect: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()  # what expectations can ask of it, for docs and validation
