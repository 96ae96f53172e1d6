"""The proof of a `proxy` step: requests sent through the proxy once it changed, each answer judged
by the expectation grammar (tminus.expect), like any check."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tminus.expect import Assertion, parse
from tminus.httperrors import describe_transport_error
from tminus.kinds.proxy_drivers.base import RoutingState
from tminus.runbook.proxy_spec import ProveSpec

SHOWN_FAILURES = 5  # failed answers kept as evidence, the first ones


def default_expect(state: RoutingState) -> list[str]:
    """What every answer must meet when `prove.expect` says nothing: the maintenance page (503 with
    Retry-After) while in maintenance, else an answer that is not a server error."""
    if state.maintenance:
        return ["status == 503", 'header "Retry-After" exists']
    return ["status < 500"]


@dataclass
class Proof:
    requests: int = 0
    passed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    expect: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def failed(self) -> int:
        return self.requests - self.passed

    def evidence(self) -> dict[str, Any]:
        return {"requests": self.requests, "passed": self.passed, "failed": self.failed,
                "statuses": dict(self.statuses), "expect": self.expect, "failures": self.failures,
                "duration_ms": round(self.duration_ms, 1)}


def prove(spec: ProveSpec, state: RoutingState, cancel: threading.Event) -> Proof:
    """`spec.requests` GETs to `spec.url` on one fresh keep-alive client (a connection opened after
    the proxy changed); every answer judged; stops early only when cancelled."""
    import httpx

    expect = list(spec.expect) if spec.expect else default_expect(state)
    assertions: list[Assertion] = [parse(text) for text in expect]
    proof = Proof(expect=expect)
    start = time.perf_counter()
    with httpx.Client(timeout=spec.timeout, headers=spec.headers) as client:
        for i in range(spec.requests):
            if cancel.is_set():
                proof.failures.append("stopped: the run was cancelled")
                break
            proof.requests += 1
            reasons = _judge(client, spec.url, assertions, proof)
            if not reasons:
                proof.passed += 1
            elif len(proof.failures) < SHOWN_FAILURES:
                proof.failures.append(f"request {i + 1}: " + "; ".join(reasons))
    proof.duration_ms = (time.perf_counter() - start) * 1000.0
    return proof


def _judge(client: Any, url: str, assertions: list[Assertion], proof: Proof) -> list[str]:
    import httpx

    began = time.perf_counter()
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        proof.statuses["error"] += 1
        return [f"GET {url} failed: {describe_transport_error(exc)}"]
    proof.statuses[str(response.status_code)] += 1
    values: dict[str, Any] = {
        "status": response.status_code,
        "headers": {k.lower(): v for k, v in response.headers.items()},
        "body": response.text,
        "duration": (time.perf_counter() - began) * 1000.0,
    }
    with contextlib.suppress(ValueError):
        values["json"] = json.loads(response.text)
    out = []
    for assertion in assertions:
        verdict = assertion.evaluate(values)
        if verdict.passed is not True:
            out.append(f"{assertion.text}: {verdict.message}")
    return out
