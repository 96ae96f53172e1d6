"""Whole-runbook checks of the monitor section and the notification channels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tminus.runbook.document import PathKey
from tminus.runbook.models import Runbook
from tminus.runbook.types import is_template

Add = Callable[..., None]
_PROBE_KINDS = "http (GET), sql (without write), run, tcp, file, env, prometheus"


def monitor_problems(rb: Runbook, add: Add, *, closest: Callable[[str, list[str]], str | None]) -> None:
    channels = list(rb.channels)

    def channel_refs(names: list[str], path: PathKey) -> None:
        for i, name in enumerate(names):
            if name not in rb.channels:
                near = closest(name, channels)
                add(f"unknown channel '{name}'", (*path, i),
                    near if near else _define_channel(channels))

    for step in rb.all_steps():
        if step.notify is not None and step.notify.channel is not None and step.notify.channel not in rb.channels:
            near = closest(step.notify.channel, channels)
            add(f"unknown channel '{step.notify.channel}'", (*step.path, "notify", "channel"),
                near if near else _define_channel(channels))
    mon = rb.monitor
    if mon is None:
        return
    base: PathKey = ("monitor",)
    channel_refs(mon.notify, (*base, "notify"))
    templated = is_template(mon.interval) or is_template(mon.duration)  # compared once rendered
    if not templated and mon.interval <= 0:
        add("monitor interval must be more than 0", (*base, "interval"), "e.g. interval: 15s")
    if not templated and mon.interval > mon.duration:
        add(f"the interval ({mon.interval:g}s) is longer than the window ({mon.duration:g}s): no probe would run",
            (*base, "interval"), "shorten the interval or lengthen the duration")
    names: dict[str, int] = {}
    for i, probe in enumerate(mon.probes):
        path = (*base, "probes", i)
        if not probe.name:
            add("a probe needs a name: rules refer to it", path, "add name: health (for example)")
        elif probe.name in names:
            add(f"duplicate probe name '{probe.name}'", (*path, "name"), "give each probe its own name")
        else:
            names[probe.name] = i
        if not (probe.is_check or probe.kind == "run") or probe.kind in ("wait", "fingerprint", "migration_lint"):
            add(f"a probe must be a check, not a '{probe.kind}' step: it runs every interval",
                (*path, probe.kind), f"use one of: {_PROBE_KINDS}")
        if probe.undo:
            add("a probe cannot have undo: it changes nothing", (*path, "undo"), "remove 'undo:'")
        if probe.expect:  # silently ignored, it would read as a threshold that holds
            add("a probe's expect is not used: the monitor's rules judge its samples", (*path, "expect"),
                f"write it as a rule, e.g. rules: [{{name: ..., probe: {probe.name or 'NAME'}, "
                f"when: 'not ({probe.expect[0]})', consecutive: 3}}], and remove 'expect:'")
    rule_names: set[str] = set()
    for i, rule in enumerate(mon.rules):
        path = (*base, "rules", i)
        if rule.name in rule_names:
            add(f"duplicate rule name '{rule.name}'", (*path, "name"),
                "give each rule its own name: replay --set RULE.FIELD and the ledger refer to it")
        rule_names.add(rule.name)
        channel_refs(rule.notify, (*path, "notify"))
        if rule.ratio is not None and not mon.baseline:
            add(f"rule '{rule.name}' compares with a baseline, but the monitor takes none", (*path, "ratio"),
                "set monitor.baseline (e.g. baseline: 5m): probes taken that long before the first phase; "
                "without one every probe would count as no data")
        if rule.probe is None:
            if len(names) > 1:
                add(f"rule '{rule.name}' must name its probe: there are {len(names)}", path,
                    f"add probe: one of {', '.join(names)}")
        elif rule.probe not in names:
            near = closest(rule.probe, list(names))
            add(f"rule '{rule.name}' reads probe '{rule.probe}', which is not defined", (*path, "probe"),
                near if near else f"probes: {', '.join(names) or 'none'}")


def _define_channel(channels: list[Any]) -> str:
    if channels:
        return f"channels: {', '.join(channels)}"
    return "define it under channels:, e.g. channels: {ops: {url: 'https://hooks.example/...'}}"
