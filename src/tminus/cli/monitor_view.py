"""The monitor's live table (probes and rule states) and its plain lines, built from events."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tminus import events as ev
from tminus.durations import format_duration
from tminus.events import Event

STATE_STYLE = {"ok": "green", "pending": "yellow", "firing": "bold red", "inconclusive": "magenta"}


def monitor_line(e: Any, stamp: str, verbose: bool) -> str | None:
    """The plain line for a monitor or notification event (None: nothing worth a line); `e` is a
    live Event or a ledger EventRecord."""
    d = e.data
    if e.type == ev.MONITOR_STARTED:
        probes, rules = len(d.get("probes") or []), len(d.get("rules") or [])
        return (f"{stamp} ▶ monitor {d.get('stage')}: {format_duration(d.get('duration') or 0)}, "
                f"every {format_duration(d.get('interval') or 0)}; {probes} probe(s), {rules} rule(s)")
    if e.type == ev.MONITOR_SAMPLE:
        return f"{stamp}   · {d.get('probe')} ({d.get('stage')}): {sample_text(d)}" if verbose else None
    if e.type == ev.MONITOR_TRANSITION:
        return f"{stamp}   ◎ {d.get('rule')}: {d.get('from')} → {d.get('to')}: {d.get('reason')}"
    if e.type == ev.MONITOR_ACTION:
        extra = f" ({d['outcome']})" if d.get("outcome") not in (None, d.get("action")) else ""
        return f"{stamp}   ! {d.get('rule')}: {d.get('action')}{extra}"
    if e.type == ev.MONITOR_FINISHED:
        verdict = "passed" if d.get("ok") else str(d.get("outcome"))
        return f"{stamp}   monitor {d.get('stage')} {verdict}: {d.get('samples')} samples"
    if e.type == ev.NOTIFY_SENT:
        tries = len(d.get("attempts") or [])
        return f"{stamp}   ✉ notified {d.get('channel')} ({tries} attempt{'s' if tries != 1 else ''})"
    if e.type == ev.NOTIFY_FAILED:
        return f"{stamp}   ✗ notify {d.get('channel')} failed: {d.get('error')}"
    return None


def sample_text(d: dict[str, Any]) -> str:
    if d.get("error"):
        return f"error: {d['error']}"
    values = d.get("values") or {}
    shown = [f"{k}={values[k]}" for k in ("status", "value", "scalar", "exit_code") if k in values]
    took = d.get("duration_ms")
    if took is not None:
        shown.append(f"{took:.0f}ms")
    return " ".join(shown) or "ok"


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

        table = Table(title=f"monitor {self.stage}", expand=False, show_edge=False)
        table.add_column("probe / rule", style="bold")
        table.add_column("state")
        table.add_column("last value / reason", overflow="fold")
        now = time.monotonic()
        for name, (text, at) in self.probes.items():
            table.add_row(name, f"{format_duration(now - at)} ago", text)
        for name, (state, reason) in self.rules.items():
            table.add_row(name, f"[{STATE_STYLE.get(state, '')}]{state}[/]", reason)
        return table
