"""The monitor's live table (probes and rule states), built from events; its plain lines are in lines.py."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tminus import events as ev
from tminus.cli.lines import sample_text
from tminus.durations import format_duration
from tminus.events import Event

STATE_STYLE = {"ok": "green", "pending": "yellow", "firing": "bold red", "inconclusive": "magenta"}


@dataclass
class MonitorBoard:
    """The state the live table shows, updated by every monitor event."""

    active: bool = False
    stage: str = ""
    probes: dict[str, tuple[str, float]] = field(default_factory=dict)  # name -> (text, monotonic)
    rules: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (state, reason)

    def update(self, e: Event) -> None:
        d = e.data
        if e.type == ev.MONITOR_STARTED:
            self.active, self.stage = True, str(d.get("stage"))
            for rule in d.get("rules") or []:
                self.rules.setdefault(rule["name"], ("ok", rule.get("text", "")))
        elif e.type == ev.MONITOR_SAMPLE:
            self.probes[str(d.get("probe"))] = (sample_text(d), e.monotonic)
        elif e.type == ev.MONITOR_TRANSITION:
            to = str(d.get("to"))
            self.rules[str(d.get("rule"))] = ("ok" if to == "resolved" else to, str(d.get("reason", "")))
        elif e.type == ev.MONITOR_FINISHED:
            self.active = False

    def table(self) -> Any:
        from rich.table import Table
        from rich.text import Text  # names and values are the runbook's text, never markup

        table = Table(title=f"monitor {self.stage}", expand=False, show_edge=False)
        table.add_column("probe / rule", style="bold")
        table.add_column("state")
        table.add_column("last value / reason", overflow="fold")
        now = time.monotonic()
        for name, (text, at) in self.probes.items():
            table.add_row(Text(name), f"{format_duration(now - at)} ago", Text(text))
        for name, (state, reason) in self.rules.items():
            table.add_row(Text(name), Text(state, style=STATE_STYLE.get(state, "")), Text(reason))
        return table
