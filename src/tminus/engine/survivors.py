"""Process groups an interrupted execution left running (tminus was SIGKILLed; the step, in its own
session, was not). Resume must not start a second copy beside one: it waits for it and adopts its
result (`--wait`, the default without a terminal), or kills it first (`--retry`, `--rollback`), or
leaves it running while taking the step as done (`--skip`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tminus.errors import ResumeRefused
from tminus.kinds import registry
from tminus.kinds.base import Execution, Survivor
from tminus.kinds.transport import Transport
from tminus.runbook.models import Step

ENDED, TIMEOUT = "ended", "timeout"


def interrupted_execution(key: str, executions: Mapping[str, int],
                          effects: Mapping[str, list[dict[str, Any]]], target: str) -> Execution:
    """The key's latest execution, with the effects it recorded (earlier executions' left out)."""
    number = executions.get(key)
    return Execution(key, target, [e for e in effects.get(key, []) if e.get("execution", number) == number])


def find_survivors(steps: Mapping[str, Step], keys: list[str], executions: Mapping[str, int],
                   effects: Mapping[str, list[dict[str, Any]]], transport: Transport) -> dict[str, Survivor]:
    """Step key -> its interrupted execution's process group, for those still running."""
    found: dict[str, Survivor] = {}
    for key in keys:
        step = steps.get(key)
        find = registry.get(step.kind).survivor if step is not None else None
        if find is None:
            continue
        survivor = find(interrupted_execution(key, executions, effects, transport.target), transport)
        if survivor is not None:
            found[key] = survivor
    return found


def await_survivors(survivors: Mapping[str, Survivor], steps: Mapping[str, Step], transport: Transport,
                    say: Callable[[str], None]) -> dict[str, str]:
    """Wait for each group to end, at most until its step's timeout counted from when it started
    (then it is killed: the step timed out). Step key -> ENDED | TIMEOUT. Ctrl-C stops waiting and
    refuses the resume, recording nothing: the group runs on, and `tminus resume` asks again."""
    how: dict[str, str] = {}
    for key, survivor in survivors.items():
        timeout = steps[key].timeout
        deadline = survivor.at + timeout if timeout is not None and survivor.at is not None else None
        bound = "" if deadline is None else f" (until its timeout, {max(0.0, deadline - time.time()):.0f}s from now)"
        say(f"waiting for process group {survivor.pgid} of step {key} to end{bound}; it is not run a second time")
        try:
            ended = transport.wait_group(survivor.pgid, survivor.identity, deadline, lambda: False)
        except KeyboardInterrupt:
            raise ResumeRefused(f"stopped waiting for process group {survivor.pgid} of step {key}; it still runs "
                                "and nothing was recorded: `tminus resume` again (or --retry to kill it)") from None
        if not ended:
            transport.stop_group(survivor.pgid, survivor.identity)
        how[key] = ENDED if ended else TIMEOUT
    return how


def left_status(execution: Execution) -> bool:
    """Whether the execution's last process wrote its exit status and so ran to its end. A status
    of 128+N (N a signal number, up to 31) says a signal ended the command (someone killed part of
    the group): it did not run to its end, and nothing tells whether it completed."""
    spawned = [e for e in execution.effects if e.get("effect") == "process"]
    status = spawned[-1].get("status") if spawned else None
    if not status:
        return False
    try:
        text = Path(status).read_text().strip()
    except OSError:
        return False
    return text != "" and not (text.isdigit() and 128 < int(text) <= 128 + 31)



def ended_unwatched(keys: list[str], executions: Mapping[str, int], effects: Mapping[str, list[dict[str, Any]]],
                    target: str, survivors: Mapping[str, Survivor]) -> list[str]:
    """Interrupted executions whose process ran to its end after tminus died (it wrote its exit
    status): adopted like a survivor resume waited for, never run a second time."""
    return [key for key in keys if key not in survivors
            and left_status(interrupted_execution(key, executions, effects, target))]


def survivors_of(doc: Any, events: Any, transport: Transport) -> tuple[dict[str, Survivor], list[str]]:
    """A recorded run's survivors, and its executions that ended unwatched (for `resume` to show)."""
    from tminus.engine.resume import history_from_events

    history = history_from_events(events)
    prior = history.prior
    alive = find_survivors(history.steps_by_key(doc), history.interrupted, prior.executions, prior.effects,
                           transport)
    return alive, ended_unwatched(history.interrupted, prior.executions, prior.effects, transport.target, alive)
