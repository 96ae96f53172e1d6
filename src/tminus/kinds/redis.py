"""`redis`: one read-only command (LLEN jobs, GET key, PING), its reply judged as `value`.

A check (Effect.NONE): only the commands in READ_ONLY run, checked as written (validation) and
again once rendered. The command is split into words like a shell line and sent as RESP bulk
strings, each length-prefixed, so a word can never become a second command; control characters
(CR, LF, ...) are refused outright. The password of the URL never appears in what is shown.
redis-py is imported on first use, so start-up stays light.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tminus.kinds.base import Effect, Observation, Refusal, StepContext
from tminus.kinds.registry import register
from tminus.runbook.models import RedisSpec
from tminus.templating.templater import has_template

DEFAULT_TIMEOUT = 10.0
REPLY_EXCERPT = 2000  # characters of the reply kept as evidence
SCHEMES = ("redis", "rediss", "unix")
# Commands that read and never write, block or reconfigure (no SCAN cursors, no SUBSCRIBE).
READ_ONLY = ("PING", "GET", "MGET", "EXISTS", "LLEN", "LRANGE", "SCARD", "SISMEMBER", "HGET", "HGETALL",
             "HLEN", "ZCARD", "ZSCORE", "TTL", "PTTL", "TYPE", "STRLEN", "XLEN", "INFO", "DBSIZE")
_HINT = "a redis step is a check and runs read-only commands only: " + ", ".join(READ_ONLY)


class BadCommand(ValueError):
    """A command tminus will not send."""


def parse_command(text: str) -> list[str]:
    """The command's words (the first upper-cased); BadCommand for anything not read-only."""
    bad = next((c for c in text if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        raise BadCommand(f"the command holds a control character (U+{ord(bad):04X}); a command is one line "
                         "of words")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise BadCommand(f"cannot split the command into words: {exc}") from None
    if not words:
        raise BadCommand("the command is empty")
    name = words[0].upper()
    if name not in READ_ONLY:
        raise BadCommand(f"'{words[0]}' is not a read-only command tminus runs")
    return [name, *words[1:]]


def shown_url(url: str) -> str:
    """The URL without its password (in the user part or as ?password=)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        name, colon, _ = user.partition(":")
        netloc = f"{name}:***@{host}" if colon else f"***@{host}"
    query = parts.query
    if "password" in query.lower():
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(query)])
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def validate(config: RedisSpec) -> list[Refusal]:
    refusals: list[Refusal] = []
    text = config.command
    if has_template(text):
        # the name, when written out, is checked now; the whole command again once rendered
        first = text.split(None, 1)[0] if text.split() else ""
        text = "" if has_template(first) else first + "".join(c for c in text if ord(c) < 0x20 or ord(c) == 0x7F)
    if text or not has_template(config.command):
        try:
            parse_command(text)
        except BadCommand as exc:
            refusals.append(Refusal("command", str(exc), _HINT if "read-only" in str(exc) else
                                    "write the command and its arguments on one line, e.g. LLEN jobs"))
    if not has_template(config.url) and urlsplit(config.url).scheme not in SCHEMES:
        refusals.append(Refusal("url", f"expected a redis://, rediss:// or unix:// URL, got {shown_url(config.url)!r}",
                                "e.g. redis://127.0.0.1:6379/0 (the number is the database)"))
    return refusals


def describe(c: RedisSpec, step: object, nested: object) -> str:
    return f"redis {shown_url(c.url)}: {c.command}"


@register("redis", config=RedisSpec, effect=Effect.NONE, describe=describe, validate=validate,
          queries=("value", "json", "duration"), imports=("redis",))
def execute(config: RedisSpec, ctx: StepContext) -> Observation:
    shown = shown_url(config.url)
    evidence: dict[str, Any] = {"url": shown, "command": config.command}
    try:
        words = parse_command(config.command)
    except BadCommand as exc:
        return Observation(error=f"{exc}; {_HINT}", evidence=evidence)
    if urlsplit(config.url).scheme not in SCHEMES:
        return Observation(error=f"expected a redis://, rediss:// or unix:// URL, got {shown!r}", evidence=evidence)
    if ctx.cancel.is_set():
        return Observation(error="interrupted before the command (the run was cancelled)", evidence=evidence)
    timeout = ctx.timeout or DEFAULT_TIMEOUT
    start = time.perf_counter()
    reply, error, timed_out = _send(config.url, words, timeout)
    duration_ms = (time.perf_counter() - start) * 1000.0
    evidence["duration_ms"] = round(duration_ms, 1)
    if error is not None:
        message = f"redis at {shown}: {_without_secret(error, config.url)}"
        return Observation(error=ctx.masker.mask(message), timed_out=timed_out, evidence=evidence)
    evidence["reply"] = ctx.head(json.dumps(reply, ensure_ascii=False, default=str), REPLY_EXCERPT)
    values: dict[str, Any] = {"value": reply, "duration": duration_ms}
    outputs: dict[str, Any] = {"value": reply}
    parsed = _as_json(reply)
    if parsed is not None:
        values["json"] = outputs["json"] = parsed
    return Observation(values=values, outputs=outputs, evidence=evidence)


def _send(url: str, words: list[str], timeout: float) -> tuple[Any, str | None, bool]:
    """(reply, error, timed out): one connection, one command, closed."""
    import redis
    from redis import exceptions as rx

    try:
        client = redis.Redis.from_url(url, decode_responses=True, encoding_errors="replace",
                                      socket_timeout=timeout, socket_connect_timeout=timeout,
                                      retry_on_timeout=False)
    except (ValueError, TypeError) as exc:
        return None, f"cannot use the URL: {exc}", False
    try:
        return _plain(client.execute_command(*words)), None, False
    except rx.TimeoutError:
        return None, f"no answer within {timeout:g}s (timed out)", True
    except rx.AuthenticationError as exc:
        return None, f"authentication failed: {exc}", False
    except rx.ConnectionError as exc:
        return None, f"cannot connect: {exc}", False
    except rx.ResponseError as exc:
        return None, f"Redis refused {words[0]}: {exc}", False
    except rx.RedisError as exc:
        return None, f"{type(exc).__name__}: {exc}", False
    finally:
        client.close()


def _plain(reply: Any) -> Any:
    """The reply as JSON-able values: bytes as text, sets and tuples as lists."""
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    if isinstance(reply, dict):
        return {str(_plain(k)): _plain(v) for k, v in reply.items()}
    if isinstance(reply, list | tuple | set):
        return [_plain(v) for v in reply]
    return reply


def _as_json(reply: Any) -> Any:
    """A mapping or list reply as it is; a text reply that is a JSON document, parsed; else None."""
    if isinstance(reply, dict | list):
        return reply
    if isinstance(reply, str) and reply.strip()[:1] in ("{", "["):
        try:
            return json.loads(reply)
        except (ValueError, RecursionError):
            return None
    return None


def _without_secret(text: str, url: str) -> str:
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text
