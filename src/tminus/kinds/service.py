"""`service`: start, stop or restart a release, a start gated on its health check.

What it acts on is recorded before it acts (`service_found`: what ran before a stop or restart;
`service_started`: the new pid and start time, unit invocation or container id, recorded the moment
it exists, before the health wait; `service_healthy` once the check passed), so the derived undo,
resume and rollback act on that exact process, never on a name match.

A started service is *meant* to outlive tminus, so it is no `survivor` (resume would wait for it
to end). An interrupted start or restart whose health was never proven is ended by `recover` before
the step is retried or rolled back (a retry must not start a second copy beside it); one proven
healthy is left running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tminus.kinds.base import AUTO_UNDO, Effect, Execution, Observation, Refusal, StepContext
from tminus.kinds.registry import register
from tminus.kinds.service_backends import Backend, ServiceError, backend_for
from tminus.kinds.service_backends.base import Identity
from tminus.kinds.transport import Transport
from tminus.runbook.models import Step, nested_checks
from tminus.runbook.service_spec import ServiceSpec

STARTED, FOUND, HEALTHY = "service_started", "service_found", "service_healthy"
STARTING = "service_starting"  # systemd, docker: about to ask the tool (its answer carries the identity)


def _what(c: ServiceSpec) -> str:
    if c.backend == "systemd":
        return f"unit {c.unit}"
    if c.backend == "docker":
        return f"container {c.container_name}" + (f" ({c.image})" if c.image else "")
    return f"process {c.name}" + (f" ($ {c.command.strip()})" if c.command else "")


def describe(c: ServiceSpec, step: Step, nested: Callable[[Step], str]) -> str:
    from tminus.durations import format_duration

    if c.target is not None:
        return f"stop exactly the recorded {_what(c)}: {_identity_words(c.target)}"
    line = f"{c.action} {_what(c)}"
    if c.action == "stop" or c.action == "restart":
        line += f", TERM then KILL after {format_duration(c.stop_timeout)}"
    if c.health is not None and c.action != "stop":
        line += f"; healthy within {format_duration(c.health_timeout)}: {nested(c.health)}"
    if c.action == "restart" and c.previous is None:
        line += " (no derived undo: give 'previous:')"
    return line


def _identity_words(identity: Identity) -> str:
    keys = ("pid", "unit", "invocation_id", "container", "id")
    return ", ".join(f"{k} {identity[k]}" for k in keys if identity.get(k) is not None) or "nothing"


def validate(c: ServiceSpec) -> list[Refusal]:
    out: list[Refusal] = []
    starts = c.action in ("start", "restart")
    if starts and c.health is None:
        out.append(Refusal("health", f"a service {c.action} needs a health check: it succeeds only once the "
                                     "release answers", "add health: with any check step, e.g. "
                                     "health: {http: {url: 'http://127.0.0.1:8000/healthz'}}"))
    if c.backend == "process" and starts and not c.command:
        out.append(Refusal("command", f"the process backend needs 'command' to {c.action} {c.name}",
                           "add command: the shell command that serves the release (it runs in the foreground)"))
    if c.backend == "systemd" and not c.unit:
        out.append(Refusal("unit", "the systemd backend needs 'unit'", "add unit: e.g. myapp-green.service"))
    if c.backend == "docker" and starts and not c.image:
        out.append(Refusal("image", f"the docker backend needs 'image' to {c.action} a container",
                           "add image: e.g. myapp:v2"))
    if c.action == "restart" and c.previous is None:
        out.append(Refusal("action", "a restart without 'previous' has no derived undo: a rollback cannot bring "
                                     "the previous version back by itself",
                           "add previous: with what differs for the previous version (e.g. {env: {RELEASE: v1}}), "
                           "or an undo: of your own", warning=True))
    if c.previous is not None and c.action != "restart":
        out.append(Refusal("previous", f"'previous' is the undo of a restart; this step is a {c.action}",
                           "remove previous: (a start's undo stops it, a stop's undo starts it again)"))
    wrong = {"process": ("unit", "image", "container"), "systemd": ("command", "image", "container", "pid_file"),
             "docker": ("unit", "pid_file", "cwd")}[c.backend]
    for name in wrong:
        if getattr(c, name):
            out.append(Refusal(name, f"'{name}' has no meaning for the {c.backend} backend",
                               "remove it, or set backend: to the one it belongs to"))
    return out


def effect(c: ServiceSpec) -> Effect:
    """Reversible when the kind can derive the undo: a start (stop it), a stop that can start it again
    (a health check, and the command, image or unit), a restart that says how to bring `previous` back.
    Otherwise the runbook's own `undo:` is needed (irreversible)."""
    if c.action == "start" or (c.action == "restart" and c.previous is not None):
        return Effect.REVERSIBLE
    if c.action == "stop" and c.health is not None and _startable(c):
        return Effect.REVERSIBLE
    return Effect.IRREVERSIBLE


def _startable(c: ServiceSpec) -> bool:
    return bool({"process": c.command, "docker": c.image, "systemd": c.unit}[c.backend])


# --- undo and recovery ---------------------------------------------------------------------


def _undo(step: Step, data: dict[str, Any], name: str) -> Step:
    undo = Step.model_validate({"name": name, "service": data, "timeout": step.timeout})
    undo._path = step.path
    undo._key = f"{step.key}{AUTO_UNDO}"
    for nested, below in nested_checks(undo):
        nested._path = (*step.path, *below)
        nested._key = f"{undo._key}.{'.'.join(map(str, below))}"
    return undo


def derive_undo(step: Step, execution: Execution) -> list[Step] | None:
    """start -> stop the recorded process; stop -> start it again; restart -> restart `previous`."""
    c = step.service
    assert c is not None
    data = c.model_dump(mode="json", by_alias=True, exclude_none=True)
    data.pop("previous", None)
    data.pop("target", None)
    if c.action == "start":
        started = [e for e in execution.effects if e.get("effect") == STARTED]
        if not started or execution.evidence.get("stopped_after_failure"):
            return None  # never started, or the failed start stopped it itself
        target = {k: v for k, v in started[-1].items() if k not in ("effect", "execution", "attempt")}
        data.update(action="stop", target=target)
        data.pop("health", None)
        return [_undo(step, data, f"stop: {step.title}")]
    if c.action == "stop":
        found = execution.first(FOUND)
        if found is None or found.get("running") is None or effect(c) != Effect.REVERSIBLE:
            return None  # nothing was running, or no way to start it again and prove it back
        data["action"] = "start"
        return [_undo(step, data, f"start again: {step.title}")]
    if c.previous is None:
        return None
    data.update(c.previous.model_dump(mode="json", by_alias=True, exclude_none=True))
    return [_undo(step, data, f"restart the previous version: {step.title}")]


def recover(execution: Execution, transport: Transport) -> str | None:
    """An interrupted start or restart whose health was never proven: end what it started (exactly
    the recorded one) before the step is retried or rolled back."""
    started = [e for e in execution.effects if e.get("effect") == STARTED]
    if not started:
        asked = execution.first(STARTING)
        if asked is None:
            return None
        what = f"unit {asked['unit']}" if asked.get("unit") else f"container {asked.get('container')}"
        return (f"the interrupted start of {asked.get('name')} asked {asked.get('backend')} to start {what}, but "
                "its identity was never recorded: nothing is stopped by name; check it by hand")
    if execution.first(HEALTHY) is not None:
        return None
    last = started[-1]
    spec = ServiceSpec(action="stop", backend=last.get("backend", "process"), name=str(last.get("name", "?")),
                       stop_timeout=float(last.get("stop_timeout", 10.0)))
    ctx = _bare_context(spec, transport)
    try:
        how = backend_for(spec.backend).stop(last, spec, ctx)
    except ServiceError as exc:
        return f"the interrupted start of {spec.name} could not be stopped: {exc}"
    return f"the interrupted start of {spec.name} was never proven healthy: {how}"


def _bare_context(spec: ServiceSpec, transport: Transport) -> StepContext:
    import os

    step = Step.model_validate({"service": spec.model_dump(mode="json", exclude_none=True)})
    return StepContext(step=step, base_dir=Path.cwd(), timeout=None, environ=dict(os.environ), transport=transport)


# --- executing -----------------------------------------------------------------------------


@register("service", config=ServiceSpec, effect=effect, describe=describe, derive_undo=derive_undo,
          recover=recover, validate=validate,
          queries=("pid", "id", "unit", "healthy", "attempts", "duration", "was_running", "stopped"))
def execute(config: ServiceSpec, ctx: StepContext) -> Observation:
    backend = backend_for(config.backend)
    evidence: dict[str, Any] = {"action": config.action, "backend": config.backend, "name": config.name}
    start = time.monotonic()
    try:
        if config.action == "stop":
            obs = _stop(config, ctx, backend, evidence)
            obs.values["duration"] = round((time.monotonic() - start) * 1000, 1)
            return obs
        return _start(config, ctx, backend, evidence, start)
    except ServiceError as exc:
        return Observation(error=f"{config.name}: {exc}", evidence=evidence)


def _stop(config: ServiceSpec, ctx: StepContext, backend: Backend, evidence: dict[str, Any]) -> Observation:
    found = config.target if config.target is not None else backend.running(config, ctx)
    ctx.record_effect(FOUND, backend=config.backend, name=config.name, running=found)
    evidence["was_running"] = found
    how = f"{config.name} was not running: nothing to stop" if found is None else backend.stop(found, config, ctx)
    evidence["stopped"] = how
    values = {"was_running": found is not None, "stopped": how}
    return Observation(values=values, outputs={"stopped": how}, evidence=evidence)


def _start(config: ServiceSpec, ctx: StepContext, backend: Backend, evidence: dict[str, Any],
           began: float) -> Observation:
    if config.health is None:
        raise ServiceError(f"a {config.action} needs 'health'")
    if ctx.run_nested is None:
        return Observation(error="service needs the engine's nested-step runner (StepContext.run_nested)")
    found = backend.running(config, ctx)
    if config.backend != "process" and not (config.action == "start" and found is not None):
        # systemctl and docker answer with the identity only once they acted: the intent goes first
        ctx.record_effect(STARTING, backend=config.backend, name=config.name,
                          **({"unit": config.unit} if config.unit else {"container": config.container_name}))
    if config.action == "start":
        if found is not None:
            raise ServiceError(f"already running ({_identity_words(found)}): a second copy would run beside "
                               "it; stop it first (action: stop) or use action: restart")
        identity = backend.start(config, ctx)
    else:
        ctx.record_effect(FOUND, backend=config.backend, name=config.name, running=found)
        evidence["was_running"] = found
        identity = backend.restart(found, config, ctx)
    try:
        ctx.record_effect(STARTED, backend=config.backend, name=config.name, stop_timeout=config.stop_timeout,
                          **identity)
    except BaseException:
        backend.stop(identity, config, ctx)  # unrecorded, it must not outlive this step
        raise
    written = getattr(backend, "written", None)
    if written is not None:
        written(identity)
    evidence["identity"] = identity
    ok, attempts, summary, last = _wait_healthy(config, ctx, backend, identity)
    values: dict[str, Any] = {"pid": identity.get("pid"), "id": identity.get("id") or identity.get("invocation_id"),
                              "unit": identity.get("unit"), "healthy": ok, "attempts": attempts,
                              "was_running": found is not None,
                              "duration": round((time.monotonic() - began) * 1000, 1)}
    evidence.update(attempts=attempts, health=summary)
    outputs = {k: values[k] for k in ("pid", "id", "unit")}
    if ok:
        ctx.record_effect(HEALTHY, backend=config.backend, name=config.name, attempts=attempts)
        return Observation(values=values, outputs=outputs, evidence=evidence)
    evidence["log_tail"] = ctx.tail(backend.logs(config, identity, ctx))
    evidence["last_check"] = last.evidence
    if config.action == "start":
        # a failed start leaves nothing behind: its undo is then nothing (no second stop)
        evidence["stopped_after_failure"] = backend.stop(identity, config, ctx)
    return Observation(values=values, evidence=evidence,
                       error=f"{config.name} ({_identity_words(identity)}) not healthy: {summary}")


def _wait_healthy(config: ServiceSpec, ctx: StepContext, backend: Backend,
                  identity: Identity) -> tuple[bool, int, str, Observation]:
    assert config.health is not None and ctx.run_nested is not None
    limit = config.health_timeout if ctx.timeout is None else min(config.health_timeout, ctx.timeout)
    deadline = time.monotonic() + limit
    attempts, last, summary = 0, Observation(), "no attempt made"
    while True:
        gone = backend.exited(identity, ctx)
        if gone is not None:
            return False, attempts, f"it {gone} before its health check passed (last: {summary})", last
        attempts += 1
        passed, summary, last = ctx.run_nested(config.health, max(deadline - time.monotonic(), 0.0))
        if passed:
            return True, attempts, summary, last
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, attempts, f"not healthy after {attempts} checks in {limit:g}s; last: {summary}", last
        if ctx.cancel.wait(min(config.health_interval, remaining)):
            return False, attempts, f"interrupted after {attempts} checks (the run was cancelled)", last
