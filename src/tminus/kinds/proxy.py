"""`proxy`: move traffic behind a real proxy (switch, weights, maintenance, drain, preview), then
prove the result through it. The routing state found before acting is recorded first; the derived
undo restores exactly it (a `restore` step), so a rollback puts the previous routing back."""

from __future__ import annotations

import time
from typing import Any

from tminus.errors import ExpectationSyntaxError
from tminus.kinds.base import AUTO_UNDO, Effect, Execution, Observation, Refusal, StepContext
from tminus.kinds.proxy_drivers.base import ProxyDriver, ProxyError, RoutingState, load
from tminus.kinds.registry import register
from tminus.runbook.models import Step
from tminus.runbook.proxy_spec import DRIVER_FIELDS, REQUIRED_FIELDS, ProxySpec
from tminus.runbook.roots import OutsideRoots, confine
from tminus.templating.templater import has_template

STATE = "proxy_state"  # the effect recorded before acting: {before, wanted}; the undo restores `before`
APPLIED = "proxy_applied"  # recorded once the proxy took the target: the ledger says what serves
_PATHS = {"config": "the nginx include", "page": "the maintenance page", "template": "the template",
          "output": "the proxy configuration"}
_DRAIN_POLL = 0.1


def effect(c: ProxySpec) -> Effect:
    return Effect.NONE if c.action == "drain" else Effect.REVERSIBLE


def describe(c: ProxySpec, step: object, nested: object) -> str:
    what = {
        "switch": f"switch all traffic to {c.to}",
        "weights": "set weights " + ", ".join(f"{k}={v}" for k, v in (c.weights or {}).items()),
        "maintenance": f"maintenance {'on' if c.maintenance else 'off'}",
        "drain": f"wait until {c.from_ or 'every upstream without weight'} holds no connection",
        "preview": f"route the preview to {c.to}" if c.to else "stop routing the preview",
        "restore": "restore the routing recorded before",
    }[c.action]
    proof = f", proven by {c.prove.requests} requests to {c.prove.url}" if c.prove else ""
    return f"{c.driver}: {what}{proof}"


def validate(c: ProxySpec) -> list[Refusal]:
    """What a runbook gets wrong before anything runs; templated values wait for the run."""
    out: list[Refusal] = []
    given = c.model_fields_set
    for driver, fields in DRIVER_FIELDS.items():
        for name in fields:
            if driver != c.driver and _field(name) in given:
                out.append(Refusal(name, f"'{name}' is for driver {driver}, this step's driver is {c.driver}",
                                   f"remove it, or set driver: {driver}"))
    if c.driver == "haproxy":  # HAProxy's maintenance answer is its haproxy.cfg's (docs/proxy-haproxy.md)
        for name in ("page", "retry_after", "exempt"):
            if name in given:
                out.append(Refusal(name, f"'{name}' is set in haproxy.cfg for driver haproxy, not per step",
                                   "see docs/proxy-haproxy.md for the maintenance config; remove it here"))
    for name in REQUIRED_FIELDS[c.driver]:
        if not getattr(c, _field(name)):
            out.append(Refusal(name, f"driver {c.driver} needs '{name}'", _HINTS.get(name)))
    known = c.names()
    if any(has_template(n) for n in known):
        known = []  # names decided at run time: checked then
    listing = ", ".join(known) or "none"

    def check_name(field: str, name: str | None) -> None:
        if name is not None and known and not has_template(name) and name not in known:
            out.append(Refusal(field, f"unknown upstream {name!r}; the step knows: {listing}",
                               "name one of `upstreams` (haproxy: `servers`), or add it there"))

    if c.action in ("switch",) and c.to is None:
        out.append(Refusal("action", "switch needs 'to': the upstream that gets all traffic"))
    if c.action in ("switch", "preview"):
        check_name("to", c.to)
    if c.action == "drain":
        check_name("from", c.from_)
    if c.action == "maintenance" and c.maintenance is None:
        out.append(Refusal("action", "maintenance needs 'maintenance: true' (on) or 'false' (off)"))
    if c.action == "restore" and c.state is None:
        out.append(Refusal("action", "restore needs 'state': a routing state recorded before"))
    if c.action == "weights":
        out += _weights(c, check_name)
    elif c.weights is not None:
        out.append(Refusal("weights", f"'weights' is for action weights, this step's action is {c.action}"))
    if c.prove is not None:
        for text in c.prove.expect or []:
            if has_template(text):
                continue
            try:
                from tminus.expect import parse

                parse(text)
            except ExpectationSyntaxError as exc:
                out.append(Refusal("prove", f"bad expectation {text!r}: {exc}"))
    return out


_HINTS = {"upstreams": 'e.g. upstreams: {blue: ["127.0.0.1:8001"], green: ["127.0.0.1:8002"]}',
          "config": "the include file tminus owns, e.g. /etc/nginx/tminus/routing.conf",
          "servers": "e.g. servers: {blue: b1, green: g1}"}


def _field(name: str) -> str:
    return {"validate": "validate_", "from": "from_"}.get(name, name)


def _weights(c: ProxySpec, check_name: Any) -> list[Refusal]:
    if not c.weights:
        return [Refusal("action", "weights needs 'weights': upstream -> weight, e.g. {blue: 90, green: 10}")]
    out: list[Refusal] = []
    total = 0
    for name, weight in c.weights.items():
        check_name("weights", name)
        if isinstance(weight, str) and has_template(weight):
            return out
        try:
            value = int(weight)
        except ValueError:
            out.append(Refusal("weights", f"the weight of {name!r} is not a whole number: {weight!r}"))
            continue
        if value < 0:
            out.append(Refusal("weights", f"the weight of {name!r} is negative: {value}"))
        total += max(value, 0)
    if not out and total <= 0:
        out.append(Refusal("weights", "the weights add up to 0: no upstream would get traffic",
                           "give at least one upstream a weight above 0"))
    return out


def derive_undo(step: Step, execution: Execution) -> list[Step] | None:
    """A `restore` of the state the step found before its first execution acted."""
    config = step.proxy
    assert config is not None
    recorded = execution.first(STATE)
    before = recorded.get("before") if recorded is not None else None
    if not before or not before.get("weights"):  # nothing was routed before: nothing to put back
        return None
    data = config.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"weights", "to", "from_"})
    data.update(action="restore", state=before)
    if config.action == "preview":  # its proof went to the preview, where nothing may be routed any more
        data.pop("prove", None)
    elif config.prove is not None:  # the step's own expectations describe the new state, not the old one
        data["prove"] = config.prove.model_dump(mode="json", exclude_none=True)
        data["prove"].pop("expect", None)
    undo = Step.model_validate({"name": f"restore routing: {step.title}", "proxy": data, "timeout": step.timeout})
    undo._path = step.path
    undo._key = f"{step.key}{AUTO_UNDO}"
    return [undo]


def target_of(c: ProxySpec, before: RoutingState) -> RoutingState:
    """The state the action asks for, from the state found. Raises ValueError when it makes no sense."""
    names = c.names()
    if c.action == "restore":
        assert c.state is not None
        return RoutingState.from_dict(c.state)
    if c.action in ("switch", "preview") and c.to is not None and c.to not in names:
        raise ValueError(f"unknown upstream {c.to!r}; the step knows: {', '.join(names)}")
    if c.action == "switch":
        return RoutingState({n: 100 if n == c.to else 0 for n in names}, before.maintenance, before.preview)
    if c.action == "weights":
        weights = {n: int((c.weights or {}).get(n, 0)) for n in names}
        unknown = set(c.weights or {}) - set(names)
        if unknown or sum(weights.values()) <= 0 or min(weights.values()) < 0:
            raise ValueError(f"weights {c.weights} must name known upstreams ({', '.join(names)}), "
                             "be 0 or more, and add up to more than 0")
        return RoutingState(weights, before.maintenance, before.preview)
    if not before.active():
        raise ValueError(f"the proxy routes no traffic yet ({before.to_dict()}): switch to an upstream first")
    if c.action == "maintenance":
        return RoutingState(dict(before.weights), bool(c.maintenance), before.preview)
    return RoutingState(dict(before.weights), before.maintenance, c.to)  # preview


@register("proxy", config=ProxySpec, effect=effect, describe=describe, derive_undo=derive_undo,
          validate=validate, queries=("before", "after", "count", "failed", "duration"),
          imports=("httpx", "tminus.kinds.proxy_proof"))
def execute(config: ProxySpec, ctx: StepContext) -> Observation:
    from tminus.kinds.proxy_proof import prove

    start = time.perf_counter()
    evidence: dict[str, Any] = {"driver": config.driver, "action": config.action}
    try:
        for field, what in _PATHS.items():
            if getattr(config, field) is not None:
                confine(getattr(config, field), ctx.base_dir, ctx.roots, what=what)
        driver = load(config, ctx.base_dir)
        before = driver.read()
    except (OutsideRoots, ProxyError) as exc:
        return Observation(error=str(exc), evidence=evidence)
    evidence["before"] = before.to_dict()
    if config.action == "drain":
        return _drain(config, ctx, driver, before, evidence, start)
    try:
        target = target_of(config, before)
    except ValueError as exc:
        return Observation(error=str(exc), evidence=evidence)
    evidence["target"] = target.to_dict()
    ctx.record_effect(STATE, before=before.to_dict(), wanted=target.to_dict(), driver=config.driver)
    try:
        evidence["applied"] = driver.apply(target)
    except ProxyError as exc:
        return Observation(error=f"the proxy refused the new routing; the previous one still serves: {exc}",
                           evidence=evidence)
    ctx.record_effect(APPLIED, state=target.to_dict())
    evidence["after"] = target.to_dict()
    values: dict[str, Any] = {"before": before.to_dict(), "after": target.to_dict(), "count": 0, "failed": 0}
    if config.prove is not None:
        spec = config.prove  # rendered with the step (ProveSpec.render_with_parent)
        proof = prove(spec, target, ctx.cancel)
        evidence["proof"] = proof.evidence()
        values.update(count=proof.passed, failed=proof.failed)
        if proof.failed:
            return Observation(values=values, evidence=evidence, error=(
                f"{proof.failed} of {proof.requests} requests to {spec.url} failed the proof: "
                + " | ".join(proof.failures)))
    values["duration"] = (time.perf_counter() - start) * 1000.0
    return Observation(values=values, outputs={"before": values["before"], "after": values["after"]},
                       evidence=evidence)


def _drain(config: ProxySpec, ctx: StepContext, driver: ProxyDriver, before: RoutingState,
           evidence: dict[str, Any], start: float) -> Observation:
    """Wait until the drained upstreams hold no connection through the proxy, or fail at the timeout."""
    names = [config.from_] if config.from_ else [n for n in config.names() if not before.weights.get(n)]
    deadline = time.monotonic() + config.drain_timeout
    counts: dict[str, int | None] = {}
    while True:
        counts = {name: driver.connections(name) for name in names}
        evidence["connections"] = counts
        unknown = [n for n, c in counts.items() if c is None]
        if unknown:
            return Observation(error=f"driver {config.driver} cannot count the connections to {', '.join(unknown)}",
                               evidence=evidence)
        if not any(counts.values()):
            break
        if time.monotonic() >= deadline or ctx.cancel.wait(_DRAIN_POLL):
            return Observation(error=f"connections remain after {config.drain_timeout:g}s: {counts}",
                               evidence=evidence)
    duration = (time.perf_counter() - start) * 1000.0
    evidence["drained_ms"] = round(duration, 1)
    return Observation(values={"before": before.to_dict(), "after": before.to_dict(), "count": 0,
                               "duration": duration}, evidence=evidence)
