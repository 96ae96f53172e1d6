"""`notify`: announce something to a webhook (maintenance starting, cutover done, rollback begun)."""

from __future__ import annotations

from typing import Any

from tminus.kinds.base import Effect, Observation, StepContext
from tminus.kinds.http import HTTP_CLIENTS
from tminus.kinds.registry import register
from tminus.runbook.models import NotifySpec
from tminus.runbook.monitor import Channel


def describe(c: NotifySpec, step: object, nested: object) -> str:
    where = f"channel {c.channel}" if c.channel is not None else (c.url or "")
    first = c.message.strip().splitlines()[0] if c.message.strip() else ""
    return f"notify {where}: {first}"


@register("notify", config=NotifySpec, effect=Effect.ADDITIVE, describe=describe, resources=(HTTP_CLIENTS,),
          on_failure="continue", queries=("status", "attempts", "delivered"), imports=("httpx", "tminus.notify"))
def execute(config: NotifySpec, ctx: StepContext) -> Observation:
    from tminus import notify
    from tminus.kinds.http import client_for

    if config.channel is not None:
        channel = ctx.channels.get(config.channel)
        if channel is None:
            known = ", ".join(sorted(ctx.channels)) or "none are defined"
            return Observation(
                error=f"no channel named '{config.channel}' under channels: (known: {known})",
                evidence={"channel": config.channel},
            )
        render = ctx.render
    else:
        assert config.url is not None  # NotifySpec requires exactly one of channel and url
        channel = Channel(url=config.url)
        render = None  # the step's url was rendered with the step; rendering twice could mangle it
    if ctx.cancel.is_set():
        return Observation(error="not sent: the run was cancelled")
    channel = _within(channel, ctx.timeout)
    delivery = notify.send(
        channel,
        config.message,
        render=render,
        extra={},
        cancel=ctx.cancel,
        client=client_for(ctx.shared, verify=True),
    )
    values: dict[str, Any] = {"attempts": len(delivery.attempts), "delivered": delivery.ok}
    if delivery.status is not None:  # unreachable: no status at all, rather than an invented one
        values["status"] = delivery.status
    evidence: dict[str, Any] = {"url": delivery.url, "attempts": delivery.attempts, "body": delivery.body}
    if config.channel is not None:
        evidence["channel"] = config.channel
    return Observation(
        values=values,
        outputs={"status": delivery.status, "attempts": len(delivery.attempts)},
        evidence=evidence,
        error=None if delivery.ok else f"notification not delivered: {delivery.error}",
    )


def _within(channel: Channel, timeout: float | None) -> Channel:
    """The channel's timeouts, bounded by the step's own `timeout:`."""
    if timeout is None:
        return channel
    retry = channel.retry.model_copy(
        update={"timeout": timeout if channel.retry.timeout is None else min(timeout, channel.retry.timeout)}
    )
    return channel.model_copy(update={"timeout": min(channel.timeout, timeout), "retry": retry})
