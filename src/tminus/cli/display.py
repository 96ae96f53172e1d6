"""What the operator sees while a run goes: a live status on a TTY, timestamped plain lines in CI logs.

The display is an event subscriber, like the ledger; it never drives the run.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from tminus import events as ev
from tminus.cli.lines import format_event, live_stamp
from tminus.cli.monitor_view import MonitorBoard
from tminus.durations import format_clock, format_duration
from tminus.events import Event


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

    def format(self, e: Event) -> str | None:
        if self.t0 is None:
            self.t0 = e.monotonic
        return format_event(e, live_stamp(e.at, e.monotonic - self.t0), verbose=self.verbose)


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

