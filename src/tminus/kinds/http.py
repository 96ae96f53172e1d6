"""`http`: one request through a per-run, thread-safe httpx client."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from tminus.httperrors import describe_transport_error
from tminus.kinds.base import Effect, Observation, Resource, StepContext
from tminus.kinds.registry import register
from tminus.runbook.models import HttpSpec

if TYPE_CHECKING:
    import httpx

DEFAULT_TIMEOUT = 30.0
BODY_EXCERPT = 2000
# Credentials often travel in headers that are not declared as runbook secrets: never record them.
_SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_client_lock = threading.Lock()  # gate checks run concurrently and may race to create the client


def effect(c: HttpSpec) -> Effect:
    """GET, HEAD and OPTIONS only read; any other method may change the service."""
    return Effect.NONE if c.method.upper() in _SAFE_METHODS else Effect.IRREVERSIBLE


def describe(c: HttpSpec, step: object, nested: object) -> str:
    return f"{c.method.upper()} {c.url}"


def close_shared(shared: dict[str, Any]) -> None:
    """Close the run's clients (the session does when the run ends)."""
    for key in ("http.client", "http.client.insecure"):
        client = shared.pop(key, None)
        if client is not None:
            client.close()


HTTP_CLIENTS = Resource("http.clients", close_shared)  # notify and prometheus share these clients


@register(
    "http",
    config=HttpSpec,
    effect=effect,
    describe=describe,
    resources=(HTTP_CLIENTS,),
    default_expect=("status < 400",),
    queries=("status", "headers", "body", "json", "duration"),
)
def execute(config: HttpSpec, ctx: StepContext) -> Observation:
    import httpx

    method = config.method.upper()
    evidence: dict[str, Any] = {
        "method": method,
        "url": config.url,
        "request_headers": _redact(config.headers),
    }
    if ctx.cancel.is_set():
        return Observation(error="interrupted before the request (the run was cancelled)", evidence=evidence)
    timeout = ctx.timeout or DEFAULT_TIMEOUT
    client = client_for(ctx.shared, verify=config.verify_tls)
    start = time.perf_counter()
    try:
        response = client.request(
            method,
            config.url,
            headers=config.headers,
            content=config.body,
            json=config.json_body,
            follow_redirects=config.follow_redirects,
            timeout=timeout,
        )
    except httpx.TimeoutException as exc:
        return Observation(
            error=f"{method} {config.url} timed out after {timeout:.1f}s ({type(exc).__name__})",
            timed_out=True,
            evidence=evidence,
        )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Observation(error=f"{method} {config.url} failed: {describe_transport_error(exc)}", evidence=evidence)
    duration_ms = (time.perf_counter() - start) * 1000.0

    body = response.text
    # items() merges repeated headers into one comma-separated value.
    headers = {name.lower(): value for name, value in response.headers.items()}
    values: dict[str, Any] = {
        "status": response.status_code,
        "headers": headers,
        "body": body,
        "duration": duration_ms,
    }
    outputs: dict[str, Any] = {"status": response.status_code, "headers": headers, "body": body}
    parsed = _parse_json(body, headers.get("content-type", ""))
    if parsed is not _NOT_JSON:
        values["json"] = parsed
        outputs["json"] = parsed
    evidence.update(
        status=response.status_code,
        response_headers=_redact(headers),
        body=ctx.head(body, BODY_EXCERPT),
        duration_ms=round(duration_ms, 1),
    )
    if str(response.url) != config.url:
        evidence["final_url"] = str(response.url)
    return Observation(values=values, outputs=outputs, evidence=evidence)


def client_for(shared: dict[str, Any], *, verify: bool) -> httpx.Client:
    """The run's client; a second one only for steps that disable TLS verification,
    since httpx fixes `verify` per client."""
    key = "http.client" if verify else "http.client.insecure"
    client = shared.get(key)
    if client is None:
        with _client_lock:
            client = shared.get(key)
            if client is None:
                import httpx

                client = httpx.Client(verify=verify, timeout=DEFAULT_TIMEOUT)
                shared[key] = client
    return client




def _redact(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if k.lower() in _SENSITIVE_HEADERS else v) for k, v in headers.items()}


_NOT_JSON = object()


def _parse_json(body: str, content_type: str) -> Any:
    stripped = body.lstrip()
    if "json" not in content_type and not stripped.startswith(("{", "[")):
        return _NOT_JSON
    try:
        return json.loads(body)
    except ValueError:
        return _NOT_JSON
