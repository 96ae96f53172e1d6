"""Checks of the cutover sections a model cannot express: the kill switch runs unattended, at once."""

from __future__ import annotations

from collections.abc import Callable

from tminus.runbook.document import PathKey
from tminus.runbook.models import Runbook
from tminus.runbook.types import is_template

Add = Callable[..., None]


def kill_switch_problems(rb: Runbook, add: Add) -> None:
    """A kill switch is the emergency path: nothing in it may wait for a person."""
    ks = rb.kill_switch
    if ks is None:
        return
    for i, step in enumerate(ks.steps):
        path: PathKey = ("kill_switch", "steps", i)
        if step.kind == "manual":
            add("a kill switch step cannot wait for an operator (manual)", (*path, "manual"),
                "a kill switch runs at once, without gates or sign-offs: make it a run, http or proxy step")
        if step.timeout is not None and not is_template(step.timeout) and not is_template(ks.target) \
                and step.timeout > ks.target:
            add(f"this step's timeout ({step.timeout:g}s) is longer than the kill switch's target "
                f"({ks.target:g}s)", (*path, "timeout"),
                "lower the timeout or raise kill_switch.target: a step may not outlast the whole switch")
