"""Delivering one notification to a webhook, with retries (the `notify` kind and the monitor use it).

Webhook URLs carry their credential in the path (Slack, Teams, Discord), so only the redacted form
`scheme://host/***` ever appears in a message, an attempt record or the ledger.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tminus.errors import TemplateError
from tminus.httperrors import describe_transport_error
from tminus.runbook.monitor import Channel

if TYPE_CHECKING:
    import httpx

Render = Callable[[str, Mapping[str, Any]], str]

RETRY_AFTER_CAP = 30.0  # a receiver asking for longer must not stall a cutover or its rollback
RESPONSE_EXCERPT = 200


@dataclass
class Delivery:
    ok: bool
    attempts: list[dict[str, Any]]  # per attempt: attempt, status, error, duration_ms
    status: int | None  # the last attempt's HTTP status
    error: str | None  # why it finally failed (None when ok)
    url: str  # redacted: "https://hooks.slack.com/***"
    body: str  # the payload sent


def redact_url(url: str) -> str:
    """`https://hooks.slack.com/***`: scheme and host only (user info, path and query hidden)."""
    parts = urlsplit(url.strip())
    host = parts.netloc.rpartition("@")[2]
    if not parts.scheme or not host:
        return "***"  # not a URL we can show safely
    return f"{parts.scheme}://{host}/***"


def send(
    channel: Channel,
    message: str,
    *,
    render: Render | None = None,
    extra: Mapping[str, Any] | None = None,
    cancel: threading.Event | None = None,
    client: httpx.Client | None = None,
) -> Delivery:
    """POST `message` to `channel`, retrying transient failures per `channel.retry`.

    The first attempt is always made, even when `cancel` is set: a rollback announcement after
    Ctrl-C matters. Only the waits between attempts are cut short by `cancel`.
    """
    names = {"message": message, **(extra or {})}
    rend: Render = render or (lambda text, _names: text)
    shown = redact_url(channel.url)
    try:
        url = rend(channel.url, names)
    except TemplateError as exc:
        reason = str(exc).replace(channel.url, shown)
        return Delivery(False, [], None, f"cannot render the channel url: {reason}", shown, "")
    shown = redact_url(url)
    part = "headers"
    try:
        headers = {name: rend(value, names) for name, value in channel.headers.items()}
        part = "template"
        body = _payload(channel, message, names, rend)
    except TemplateError as exc:
        return Delivery(False, [], None, _scrub(f"cannot render the channel {part}: {exc}", url, shown), shown, "")
    except _InvalidPayload as exc:
        return Delivery(False, [], None, _scrub(exc.reason, url, shown), shown, exc.body)
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    with ExitStack() as stack:
        if client is None:
            import httpx

            client = stack.enter_context(httpx.Client(timeout=channel.timeout))
        return _deliver(client, channel, url, shown, headers, body, cancel or threading.Event())


class _InvalidPayload(Exception):
    def __init__(self, reason: str, body: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.body = body


def _payload(channel: Channel, message: str, names: Mapping[str, Any], rend: Render) -> str:
    if channel.template is None:
        return json.dumps({"text": message}, ensure_ascii=False)
    body = rend(channel.template, names)
    try:
        json.loads(body)
    except ValueError as exc:
        # A receiver would answer 400 at best; fail before sending so the template gets fixed.
        raise _InvalidPayload(
            f"the channel template did not render valid JSON ({exc}); rendered: {_excerpt(body)} "
            "(hint: insert values with the tojson filter, e.g. {{ message | tojson }})",
            body,
        ) from None
    return body


def _deliver(
    client: httpx.Client,
    channel: Channel,
    url: str,
    shown: str,
    headers: dict[str, str],
    body: str,
    cancel: threading.Event,
) -> Delivery:
    import httpx

    retry = channel.retry
    method = channel.method.upper()
    interval = retry.interval
    started = time.monotonic()
    attempts: list[dict[str, Any]] = []
    status: int | None = None
    error = "no attempt made"
    for n in range(1, retry.attempts + 1):
        timeout = channel.timeout
        if retry.timeout is not None:
            timeout = max(0.1, min(timeout, retry.timeout - (time.monotonic() - started)))
        t0 = time.perf_counter()
        status, retry_after = None, None
        try:
            response = client.request(method, url, headers=headers, content=body.encode(), timeout=timeout)
        except httpx.TimeoutException:
            error, transient = f"{method} {shown} timed out after {timeout:g}s", True
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            error, transient = f"invalid webhook URL {shown}: {exc}", False
        except httpx.HTTPError as exc:
            error, transient = f"{method} {shown} failed: {describe_transport_error(exc)}", True
        else:
            status = response.status_code
            error, transient = _judge(response, shown)
            if status in (429, 503):
                retry_after = _retry_after(response.headers.get("retry-after"))
        error = _scrub(error, url, shown) if error else error
        attempts.append({
            "attempt": n,
            "status": status,
            "error": error or None,
            "duration_ms": round((time.perf_counter() - t0) * 1000, 1),
        })
        if not error:
            return Delivery(True, attempts, status, None, shown, body)
        if not transient:
            return Delivery(False, attempts, status, error, shown, body)
        if n == retry.attempts:
            break
        wait = interval if retry.max_interval is None else min(interval, retry.max_interval)
        if retry_after is not None:
            wait = retry_after  # the receiver knows best when it can take more
        if retry.timeout is not None and time.monotonic() - started + wait >= retry.timeout:
            error += f"; stopped after {n} attempts: the next would exceed the retry timeout of {retry.timeout:g}s"
            return Delivery(False, attempts, status, error, shown, body)
        if cancel.wait(wait):
            error += f"; stopped after {n} attempts: the run was cancelled"
            return Delivery(False, attempts, status, error, shown, body)
        interval *= retry.backoff
    error += f"; gave up after {len(attempts)} attempts"
    return Delivery(False, attempts, status, error, shown, body)


def _judge(response: httpx.Response, shown: str) -> tuple[str, bool]:
    """('', _) on success, else (why, whether another attempt may succeed)."""
    status = response.status_code
    if 200 <= status < 300:
        return "", False
    why = f"HTTP {status} from {shown}"
    text = response.text.strip()
    detail = f": {_excerpt(text)}" if text else ""
    if status in (408, 429) or status >= 500:
        return why + detail, True
    if 400 <= status < 500:
        return f"{why}: not retried (a client error will not fix itself){detail}", False
    return f"{why}: not retried (a webhook should answer 2xx, not redirect){detail}", False


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare for webhooks and ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def _scrub(text: str, url: str, shown: str) -> str:
    """Whatever a library or receiver echoed: never the URL's path or query (the credential)."""
    text = text.replace(url, shown)
    parts = urlsplit(url)
    secret = parts.path + (f"?{parts.query}" if parts.query else "")
    for piece in (secret, parts.path, parts.query):
        if len(piece) > 1:
            text = text.replace(piece, "/***")
    return text


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= RESPONSE_EXCERPT else text[:RESPONSE_EXCERPT] + "..."
