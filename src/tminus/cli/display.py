"""What the operator sees while a run goes: a live status on a TTY, timestamped plain lines in CI logs.

The display is an event subscriber, like the ledger; it never drives the run.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from tminus import events as ev
from tminus.cli.monitor_view import MonitorBoard, monitor_line
from tminus.durations import format_clock, format_duration, format_tplus
from tminus.events import Event

MARK = {"ok": "✓", "failed": "✗", "skipped": "-"}


class PlainDisplay:
    """One timestamped line per event that matters; safe for CI logs and pipes."""

    def __init__(self, stream: TextIO | None = None, verbose: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.t0: float | None = None
        self.lock = threading.Lock()

    # subscribers receive every event
    def __call__(self, event: Event) -> None:
        line = self.format(event)
        if line is not None:
            with self.lock:
                self.write(line)

    def write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def pause(self) -> None:
        """Nothing to pause: plain lines never redraw."""

    def close(self) -> None:
        pass

    def tplus(self, event: Event) -> str:
        if self.t0 is None:
            self.t0 = event.monotonic
        return format_clock(event.monotonic - self.t0)

    def format(self, e: Event) -> str | None:
        d = e.data
        stamp = f"{e.at[11:23]} {self.tplus(e):>9}"
        if e.type in (ev.RUN_STARTED, ev.RUN_RESUMED):
            verb = "resumed" if e.type == ev.RUN_RESUMED else "started"
            return (f"{stamp} run {e.run_id} {verb}: {d.get('runbook')} in {d.get('environment')} "
                    f"by {d.get('operator')}@{d.get('host')}")
        if e.type == ev.SECTION_STARTED:
            section = d.get("section", "")
            extra = ""
            if d.get("budget") is not None:
                extra = f" (budget {format_duration(d['budget'])}, planned {format_tplus(d.get('planned_start') or 0)})"
            return f"{stamp} ▶ {section}{extra}"
        if e.type == ev.SECTION_FINISHED and str(d.get("section", "")).startswith("phase:") and d.get("ok"):
            actual, budget = d.get("actual"), d.get("budget")
            if actual is not None:
                vs = f" vs budget {format_duration(budget)}" if budget else ""
                return f"{stamp}   {d['section']} done in {format_duration(actual)}{vs}"
            return None
        if e.type == ev.STEP_STARTED:
            return f"{stamp}   … {d.get('name')}" if self.verbose else None
        if e.type == ev.STEP_FINISHED:
            status = d.get("status", "")
            took = format_duration((d.get("duration_ms") or 0) / 1000)
            tries = f", {d['attempts']} attempts" if (d.get("attempts") or 0) > 1 else ""
            line = f"{stamp}   {MARK.get(status, '?')} {d.get('name')} ({took}{tries})"
            if status == "failed" and d.get("message"):
                line += "\n" + _indent(d["message"], 6)
            return line
        if e.type == ev.STEP_ATTEMPT:
            first = str(d.get("message", "")).splitlines()[:1]
            return f"{stamp}     attempt {d.get('attempt')} failed: {first[0] if first else ''}"
        if e.type == ev.STEP_SKIPPED:
            return f"{stamp}   - {d.get('name')} skipped: {d.get('message')}"
        if e.type == ev.APPROVAL_REQUESTED:
            return f"{stamp}   ? waiting for an operator: {d.get('prompt')}\n      approve: {d.get('approve_with')}"
        if e.type == ev.APPROVAL_GIVEN:
            verdict = "approved" if d.get("approved") else "refused"
            why = f": {d['reason']}" if d.get("reason") else ""
            return f"{stamp}   {verdict} by {d.get('by')} ({d.get('how')}){why}"
        if e.type == ev.DECISION:
            return f"{stamp} ◆ decision ({d.get('mode')}): {str(d.get('verdict', '')).upper()}"
        if e.type == ev.ROLLBACK_STARTED:
            return f"{stamp} ↺ rollback: {str(d.get('reason', '')).splitlines()[0]}"
        if e.type == ev.ROLLBACK_FINISHED:
            return f"{stamp} ↺ rollback {'complete' if d.get('ok') else 'FAILED'}"
        if e.type == ev.NOTE and d.get("message"):
            return f"{stamp}   note: {d['message']}"
        if e.type == ev.RUN_FINISHED:
            return f"{stamp} run {e.run_id} {d.get('status')} (exit {d.get('exit_code')})"
        return monitor_line(e, stamp, self.verbose)


class LiveDisplay(PlainDisplay):
    """On a TTY: the same lines in colour, under a live footer with phase, step and T+ clock."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True, highlight=False, emoji=False)
        self.section = ""
        self.step = ""
        self.step_started = 0.0
        self.phase_budget: float | None = None
        self.phase_started = 0.0
        self.board = MonitorBoard()
        self.live = Live(self, console=self.console, refresh_per_second=4, transient=True)
        self.live.start()
        self.paused = False

    def __rich__(self) -> Any:
        from rich.text import Text

        if self.t0 is None:
            return Text("")
        now = time.monotonic()
        text = Text(f"{format_clock(now - self.t0)} ", style="bold cyan")
        text.append(self.section or "starting", style="bold")
        if self.phase_budget:
            text.append(f" ({format_duration(now - self.phase_started)} of {format_duration(self.phase_budget)})")
        if self.step:
            text.append(f" · {self.step} {format_duration(now - self.step_started)}", style="yellow")
        if self.board.active:
            from rich.console import Group

            return Group(self.board.table(), text)
        return text

    def __call__(self, event: Event) -> None:
        d = event.data
        if event.type == ev.SECTION_STARTED:
            self.section = str(d.get("section", ""))
            self.phase_budget = d.get("budget")
            self.phase_started = event.monotonic
        elif event.type == ev.STEP_STARTED:
            self.step, self.step_started = str(d.get("name", "")), event.monotonic
        elif event.type in (ev.STEP_FINISHED, ev.STEP_SKIPPED):
            self.step = ""
        elif event.type == ev.MONITOR_STARTED:
            self.section, self.phase_budget = f"monitor {d.get('stage')}", d.get("duration")
            self.phase_started = event.monotonic
        self.board.update(event)
        if event.type == ev.MONITOR_SAMPLE:
            return  # the table shows samples; a line per probe would flood the screen
        super().__call__(event)

    def write(self, text: str) -> None:
        style = "red" if "✗" in text or "FAILED" in text else ("green" if "✓" in text else None)
        self.console.print(text, style=style, markup=False)

    def pause(self) -> None:
        if not self.paused:
            self.live.stop()
            self.paused = True

    def close(self) -> None:
        if not self.paused:
            self.live.stop()


def make_display(*, tty: bool | None = None, verbose: bool = False) -> PlainDisplay:
    if tty is None:
        tty = sys.stderr.isatty()
    return LiveDisplay() if tty else PlainDisplay(verbose=verbose)


def _indent(text: str, n: int) -> str:
    pad = " " * n
    return "\n".join(pad + line for line in text.splitlines())
