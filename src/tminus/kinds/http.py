"""`http`: one request through the run's httpx client.

Two executors share everything but the request itself: `execute` (a thread-safe `httpx.Client`,
for a step run on its own) and `execute_async` (an `httpx.AsyncClient` on the run's event loop,
kinds/aio.py, for the checks the engine runs side by side: engine/checkgroup.py). Each client is
made once per run (one connection pool, HTTP keep-alive) and closed when the run ends; a second
one only for steps that disable TLS verification, since httpx fixes `verify` per client. Neither
keeps cookies: a `Set-Cookie` seen by one check is never sent by another.
"""

from __future__ import annotations

import json
import threading
import time
from http.cookiejar import CookiePolicy, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

from tminus.httperrors import describe_transport_error
from tminus.kinds.aio import RUN_LOOP, loop_of
from tminus.kinds.base import Effect, Observation, Resource, StepContext
from tminus.kinds.registry import register, register_async
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
_SYNC_KEYS = ("http.client", "http.client.insecure")
_ASYNC_KEYS = ("http.aclient", "http.aclient.insecure")


def effect(c: HttpSpec) -> Effect:
    """GET, HEAD and OPTIONS only read; any other method may change the service."""
    return Effect.NONE if c.method.upper() in _SAFE_METHODS else Effect.IRREVERSIBLE


def describe(c: HttpSpec, step: object, nested: object) -> str:
    return f"{c.method.upper()} {c.url}"


def close_shared(shared: dict[str, Any]) -> None:
    """Close the run's clients (the session does when the run ends); the async ones on the loop
    they were made for, if it still runs."""
    for key in _SYNC_KEYS:
        client = shared.pop(key, None)
        if client is not None:
            client.close()
    loop = loop_of(shared)
    for key in _ASYNC_KEYS:
        aclient = shared.pop(key, None)
        if aclient is not None and loop is not None:
            loop.run(aclient.aclose())


HTTP_CLIENTS = Resource("http.clients", close_shared)  # notify and prometheus share these clients


@register(
    "http",
    config=HttpSpec,
    effect=effect,
    describe=describe,
    resources=(HTTP_CLIENTS, RUN_LOOP),  # the clients first: the async ones close on the loop
    default_expect=("status < 400",),
    queries=("status", "headers", "body", "json", "duration"),
    imports=("httpx",),
)
def execute(config: HttpSpec, ctx: StepContext) -> Observation:
    import httpx

    evidence = _evidence(config)
    if ctx.cancel.is_set():
        return _cancelled(evidence)
    timeout = ctx.timeout or DEFAULT_TIMEOUT
    client = client_for(ctx.shared, verify=config.verify_tls)
    start = time.perf_counter()
    try:
        response = client.request(**_request(config, timeout))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _failed(config, timeout, exc, evidence)
    return _observed(config, ctx, response, (time.perf_counter() - start) * 1000.0, evidence)


@register_async("http")
async def execute_async(config: HttpSpec, ctx: StepContext) -> Observation:
    """As `execute`, on the run's event loop: the same request, the same Observation."""
    import httpx

    evidence = _evidence(config)
    if ctx.cancel.is_set():
        return _cancelled(evidence)
    timeout = ctx.timeout or DEFAULT_TIMEOUT
    client = async_client_for(ctx.shared, verify=config.verify_tls)
    start = time.perf_counter()
    try:
        response = await client.request(**_request(config, timeout))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _failed(config, timeout, exc, evidence)
    return _observed(config, ctx, response, (time.perf_counter() - start) * 1000.0, evidence)


def client_for(shared: dict[str, Any], *, verify: bool) -> httpx.Client:
    """The run's client; a second one only for steps that disable TLS verification."""
    key = _SYNC_KEYS[0] if verify else _SYNC_KEYS[1]
    client = shared.get(key)
    if client is None:
        with _client_lock:
            client = shared.get(key)
            if client is None:
                import httpx

                client = httpx.Client(verify=verify, timeout=DEFAULT_TIMEOUT)
                _keep_no_cookies(client.cookies)
                shared[key] = client
    return client


def async_client_for(shared: dict[str, Any], *, verify: bool) -> httpx.AsyncClient:
    """The run's async client (made on, and used from, the run's loop only)."""
    key = _ASYNC_KEYS[0] if verify else _ASYNC_KEYS[1]
    client = shared.get(key)
    if client is None:
        with _client_lock:
            client = shared.get(key)
            if client is None:
                client = _new_async_client(verify)
                _keep_no_cookies(client.cookies)
                shared[key] = client
    return client


def _new_async_client(verify: bool) -> httpx.AsyncClient:
    """On the lean loop transport (kinds/http_loop.py), unless the environment names a proxy: httpx
    honours those only on its own transport, so that client is kept (slower, same behaviour)."""
    from urllib.request import getproxies

    import httpx

    if getproxies():
        return httpx.AsyncClient(verify=verify, timeout=DEFAULT_TIMEOUT)
    from tminus.kinds.http_loop import new_client

    return new_client(verify=verify, timeout=DEFAULT_TIMEOUT)


# --- what both executors share ---------------------------------------------------------------------


class _NoCookies(DefaultCookiePolicy):
    """Each check is on its own: the run's client stores no cookie, so none leaks into another check
    (with concurrent checks, which one would see it would be a race)."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False


def _keep_no_cookies(cookies: httpx.Cookies) -> None:
    policy: CookiePolicy = _NoCookies()
    cookies.jar.set_policy(policy)
    # and skip the extraction itself: it builds urllib request objects for every response, only for
    # the policy to refuse what they carry
    setattr(cookies, "extract_cookies", _ignore)  # noqa: B010 (an instance attribute over the method)


def _ignore(response: httpx.Response) -> None:
    return None


def _evidence(config: HttpSpec) -> dict[str, Any]:
    return {"method": config.method.upper(), "url": config.url, "request_headers": _redact(config.headers)}


def _request(config: HttpSpec, timeout: float) -> dict[str, Any]:
    return {
        "method": config.method.upper(),
        "url": config.url,
        "headers": config.headers,
        "content": config.body,
        "json": config.json_body,
        "follow_redirects": config.follow_redirects,
        "timeout": timeout,
    }


def _cancelled(evidence: dict[str, Any]) -> Observation:
    return Observation(error="interrupted before the request (the run was cancelled)", evidence=evidence)


def _failed(config: HttpSpec, timeout: float, exc: Exception, evidence: dict[str, Any]) -> Observation:
    import httpx

    method = config.method.upper()
    if isinstance(exc, httpx.TimeoutException):
        return Observation(
            error=f"{method} {config.url} timed out after {timeout:.1f}s ({type(exc).__name__})",
            timed_out=True,
            evidence=evidence,
        )
    return Observation(error=f"{method} {config.url} failed: {describe_transport_error(exc)}", evidence=evidence)


def _observed(
    config: HttpSpec, ctx: StepContext, response: httpx.Response, duration_ms: float, evidence: dict[str, Any],
) -> Observation:
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
