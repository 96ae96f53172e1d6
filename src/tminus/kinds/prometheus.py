"""`prometheus`: an instant PromQL query through the HTTP API (GET /api/v1/query).

An empty vector is *no data*, never 0: "error rate < 1%" must not pass because the series is gone.
"""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tminus.kinds.base import Effect, Observation, StepContext
from tminus.kinds.http import HTTP_CLIENTS
from tminus.kinds.registry import register
from tminus.runbook.models import PrometheusSpec

DEFAULT_TIMEOUT = 30.0
EVIDENCE_SERIES = 5


def describe(c: PrometheusSpec, step: object, nested: object) -> str:
    return f"prometheus {c.url}: {c.query}"


@register("prometheus", config=PrometheusSpec, effect=Effect.NONE, describe=describe, resources=(HTTP_CLIENTS,),
          queries=("value", "series", "result_type", "json", "status"), imports=("httpx",))
def execute(config: PrometheusSpec, ctx: StepContext) -> Observation:
    import httpx

    from tminus.httperrors import describe_transport_error
    from tminus.kinds.http import BODY_EXCERPT, client_for

    endpoint = config.url.rstrip("/") + "/api/v1/query"
    shown = _without_userinfo(endpoint)
    evidence: dict[str, Any] = {"url": shown, "query": config.query}
    if ctx.cancel.is_set():
        return Observation(error="interrupted before the query (the run was cancelled)", evidence=evidence)
    timeout = ctx.timeout or DEFAULT_TIMEOUT
    start = time.perf_counter()
    try:
        response = client_for(ctx.shared, verify=True).get(
            endpoint, params={"query": config.query}, headers=config.headers, timeout=timeout
        )
    except httpx.TimeoutException:
        return Observation(
            error=f"Prometheus query at {shown} timed out after {timeout:g}s", timed_out=True, evidence=evidence
        )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Observation(
            error=f"Prometheus query at {shown} failed: {describe_transport_error(exc)}", evidence=evidence
        )
    evidence.update(status=response.status_code, duration_ms=round((time.perf_counter() - start) * 1000, 1))
    def _excerpt(text: str) -> str:  # secrets masked before the cut
        return ctx.head(text, BODY_EXCERPT)

    evidence["body"] = _excerpt(response.text)  # shown under a failed verdict: what Prometheus said

    status = response.status_code
    try:
        reply = response.json()
    except ValueError:
        return Observation(
            error=f"{shown} answered HTTP {status} with a body that is not JSON (is {config.url} a Prometheus "
            f"server?): {_excerpt(response.text.strip()) or '(empty)'}",
            evidence=evidence,
        )
    if not isinstance(reply, dict):
        return Observation(error=f"{shown} answered HTTP {status} with unexpected JSON", evidence=evidence)
    if reply.get("warnings"):
        evidence["warnings"] = reply["warnings"]
    if reply.get("status") == "error":
        kind = reply.get("errorType") or "error"
        return Observation(
            error=f"Prometheus rejected the query (HTTP {status}, {kind}): {reply.get('error')}", evidence=evidence
        )
    data = reply.get("data")
    if status >= 400 or reply.get("status") != "success" or not isinstance(data, dict):
        return Observation(
            error=f"{shown} answered HTTP {status} without a successful result: {_excerpt(response.text.strip())}",
            evidence=evidence,
        )
    try:
        result_type, series, value = _parse(data)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return Observation(
            error=f"cannot read Prometheus' {data.get('resultType')} result ({type(exc).__name__}: {exc})",
            evidence=evidence,
        )
    values: dict[str, Any] = {"series": series, "result_type": result_type, "json": reply, "status": status}
    outputs: dict[str, Any] = {"series": series, "result_type": result_type}
    if value is not _NO_DATA:
        values["value"] = value
        outputs["value"] = value
    evidence.update(result_type=result_type, series_count=len(series), series=series[:EVIDENCE_SERIES])
    if result_type in ("vector", "matrix") and not series:
        evidence["note"] = "the query returned no series (no data)"
    return Observation(values=values, outputs=outputs, evidence=evidence)


_NO_DATA = object()


def _parse(data: dict[str, Any]) -> tuple[str, list[dict[str, Any]], Any]:
    """(resultType, series, value); value is _NO_DATA when there is no series."""
    result_type = str(data["resultType"])
    result = data["result"]
    if result_type == "scalar":
        return result_type, [], _number(result[1])
    if result_type == "string":
        return result_type, [], str(result[1])
    series: list[dict[str, Any]] = []
    for item in result:
        labels = dict(item.get("metric") or {})
        if result_type == "vector":
            series.append({"labels": labels, "value": _number(item["value"][1])})
        else:  # matrix (a range selector): every sample, and the latest as `value`
            samples = [_number(v) for _, v in item["values"]]
            series.append({"labels": labels, "value": samples[-1] if samples else math.nan, "values": samples})
    return result_type, series, series[0]["value"] if series else _NO_DATA


def _number(text: Any) -> float:
    """Prometheus sends sample values as strings: "1.5", "NaN", "+Inf", "-Inf"."""
    return float(text)


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
