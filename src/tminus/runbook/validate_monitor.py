"""Whole-runbook checks of the monitor section, the phases' guards and the notification channels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tminus.runbook.document import PathKey
from tminus.runbook.models import GuardSpec, MonitorSpec, Runbook, Step, WatchSpec
from tminus.runbook.types import is_template

Add = Callable[..., None]
Closest = Callable[[str, list[str]], str | None]
_PROBE_KINDS = "http (GET), sql (without write), run, tcp, file, env, prometheus, redis"


_NOT_PROBES = ("wait", "fingerprint", "migration_lint", "manual", "watch")  # checks that make no sense every interval


def monitor_problems(rb: Runbook, add: Add, *, closest: Closest, warn: Add | None = None) -> None:
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
    for step in rb.all_steps():
        if step.watch is not None:
            _watch_problems(step, step.watch, add, closest=closest, channel_refs=channel_refs)
    for p_index, phase in enumerate(rb.phases):
        if phase.guard is not None:
            _guard_problems(phase.guard, phase.budget, ("phases", p_index, "guard"), add, warn,
                            closest=closest, channel_refs=channel_refs)
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
    watched_problems(mon, base, add, closest=closest, channel_refs=channel_refs, watcher="monitor")
    for i, rule in enumerate(mon.rules):
        if rule.ratio is not None and not mon.baseline:
            add(f"rule '{rule.name}' compares with a baseline, but the monitor takes none",
                (*base, "rules", i, "ratio"),
                "set monitor.baseline (e.g. baseline: 5m): probes taken that long before the first phase; "
                "without one every probe would count as no data")


def _guard_problems(guard: GuardSpec, budget: float | None, base: PathKey, add: Add, warn: Add | None, *,
                    closest: Closest, channel_refs: Callable[[list[str], PathKey], None]) -> None:
    """A phase's guard: the monitor's probe and rule checks, and what a guard cannot do."""
    channel_refs(guard.notify, (*base, "notify"))
    if not is_template(guard.interval) and guard.interval <= 0:
        add("guard interval must be more than 0", (*base, "interval"), "e.g. interval: 1s")
    if guard.settle is not None and not is_template(guard.settle) and guard.settle < 0:
        add("guard settle cannot be negative", (*base, "settle"), "e.g. settle: 2s")
    watched_problems(guard, base, add, closest=closest, channel_refs=channel_refs, watcher="guard")
    for i, rule in enumerate(guard.rules):
        path = (*base, "rules", i)
        if rule.action == "pause":
            add(f"rule '{rule.name}': a guard cannot pause: the phase's steps would go on changing things "
                "while it waits for an answer", (*path, "action"),
                "use action: rollback (stop the step, undo the phase), abort (stop, undo nothing) or notify")
        if rule.ratio is not None:
            add(f"rule '{rule.name}' compares with a baseline, but a guard takes none", (*path, "ratio"),
                "use for, consecutive, increase or error_rate; ratio rules belong to the monitor (monitor.baseline)")
        span = rule.for_ or (rule.error_rate.window if rule.error_rate else None) or \
            (rule.increase.window if rule.increase else None)
        if warn is not None and budget is not None and span is not None and not is_template(span) \
                and not is_template(budget) and span > budget:
            key = "for" if rule.for_ is not None else ("error_rate" if rule.error_rate else "increase")
            warn(f"rule '{rule.name}' needs {span:g}s of samples, longer than the phase's budget ({budget:g}s): "
                 "if the phase keeps to its budget the rule cannot fire", (*path, key),
                 "shorten it, or add settle: to the guard so it watches after the last step")


def _watch_problems(step: Step, watch: WatchSpec, add: Add, *, closest: Closest,
                    channel_refs: Callable[[list[str], PathKey], None]) -> None:
    """A `watch` step: the monitor's probe and rule checks, a duration its interval fits in, and
    rules whose only action is to fail the step (its on_failure says what that does)."""
    base: PathKey = (*step.path, "watch")
    templated = is_template(watch.interval) or is_template(watch.duration)
    if not templated and watch.interval <= 0:
        add("watch interval must be more than 0", (*base, "interval"), "e.g. interval: 10s")
    elif not templated and watch.duration <= watch.interval:
        add(f"the watch's duration ({watch.duration:g}s) must be longer than its interval ({watch.interval:g}s)",
            (*base, "duration"), "e.g. duration: 5m with interval: 10s: the rules need several samples")
    if step.timeout is not None and not templated and not is_template(step.timeout) \
            and step.timeout <= watch.duration:
        add(f"the step's timeout ({step.timeout:g}s) would end the watch before its duration ({watch.duration:g}s)",
            (*step.path, "timeout"), "remove timeout: (a watch ends after its duration) or make it longer")
    watched_problems(watch, base, add, closest=closest, channel_refs=channel_refs, watcher="watch")
    for i, rule in enumerate(watch.rules):
        path = (*base, "rules", i)
        if "action" in rule.model_fields_set and rule.action != "rollback":
            add(f"rule '{rule.name}': a watch rule only fails the step (action: {rule.action} is not used)",
                (*path, "action"), "remove action:; the step's on_failure says what a failure does "
                "(rollback by default, abort, continue)")
        if rule.ratio is not None:
            add(f"rule '{rule.name}' compares with a baseline, but a watch takes none", (*path, "ratio"),
                "use for, consecutive, increase or error_rate")
        if rule.notify:
            add(f"rule '{rule.name}': a watch rule tells no channel", (*path, "notify"),
                "add a notify step after the watch, or in the phase's undo")


def watched_problems(spec: MonitorSpec | GuardSpec | WatchSpec, base: PathKey, add: Add, *, closest: Closest,
                     channel_refs: Callable[[list[str], PathKey], None], watcher: str) -> None:
    """Probes and rules, as the monitor and every guard write them."""
    names: dict[str, int] = {}
    for i, probe in enumerate(spec.probes):
        path = (*base, "probes", i)
        if not probe.name:
            add("a probe needs a name: rules refer to it", path, "add name: health (for example)")
        elif probe.name in names:
            add(f"duplicate probe name '{probe.name}'", (*path, "name"), "give each probe its own name")
        else:
            names[probe.name] = i
        if not (probe.is_check or probe.kind == "run") or probe.kind in _NOT_PROBES:
            add(f"a probe must be a check, not a '{probe.kind}' step: it runs every interval",
                (*path, probe.kind), f"use one of: {_PROBE_KINDS}")
        if probe.undo:
            add("a probe cannot have undo: it changes nothing", (*path, "undo"), "remove 'undo:'")
        if probe.expect:  # silently ignored, it would read as a threshold that holds
            add(f"a probe's expect is not used: the {watcher}'s rules judge its samples", (*path, "expect"),
                f"write it as a rule, e.g. rules: [{{name: ..., probe: {probe.name or 'NAME'}, "
                f"when: 'not ({probe.expect[0]})', consecutive: 3}}], and remove 'expect:'")
    rule_names: set[str] = set()
    for i, rule in enumerate(spec.rules):
        path = (*base, "rules", i)
        if rule.name in rule_names:
            add(f"duplicate rule name '{rule.name}'", (*path, "name"),
                "give each rule its own name: replay --set RULE.FIELD and the ledger refer to it")
        rule_names.add(rule.name)
        channel_refs(rule.notify, (*path, "notify"))
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
