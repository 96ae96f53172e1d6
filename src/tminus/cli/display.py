"""What the operator sees while a run goes: a live status on a TTY, timestamped plain lines in CI logs.

The display is an event subscriber, like the ledger; it never drives the run.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

from tminus import events as ev
from tminus.cli.lines import format_event, live_stamp
from tminus.cli.monitor_view import MonitorBoard
from tminus.durations import format_clock, format_duration
from tminus.events import Event

HEARTBEAT_ENV = "TMINUS_HEARTBEAT"
HEARTBEAT_DEFAULT = 30.0


def heartbeat_interval(environ: Mapping[str, str] | None = None) -> float:
    """Seconds of silence before a heartbeat line, from TMINUS_HEARTBEAT (a duration; 0 turns it off).
    Junk is a ValueError saying what was expected."""
    from tminus.durations import parse_duration

    text = (os.environ if environ is None else environ).get(HEARTBEAT_ENV, "").strip()
    if not text:
        return HEARTBEAT_DEFAULT
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{HEARTBEAT_ENV}={text!r}: {exc}") from None
    if 0 < seconds < 1:  # a line every few milliseconds would bury the log it keeps alive
        raise ValueError(f"{HEARTBEAT_ENV}={text!r}: at least 1s, or 0 to turn the heartbeat off")
    return seconds


class RunStatus:
    """What is going on, from the events: the section, the step and since when, the monitor's
    stage, samples and window. The live footer and the plain heartbeat both say it."""

    def __init__(self) -> None:
        self.section = ""
        self.step = ""
        self.step_started = 0.0
        self.phase_budget: float | None = None
        self.phase_started = 0.0
        self.monitor_samples = 0

    def update(self, event: Event) -> None:
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
            self.phase_started, self.monitor_samples = event.monotonic, 0
        elif event.type == ev.MONITOR_SAMPLE:
            self.monitor_samples += 1

    def heartbeat(self, now: float) -> str:
        """One line: the section, the step and for how long, or the monitor's samples and time left."""
        text = f"… still running: {self.section or 'starting'}"
        if self.section.startswith("monitor ") and self.phase_budget:
            left = max(0.0, self.phase_budget - (now - self.phase_started))
            text += f", {self.monitor_samples} sample(s), {format_duration(left)} left"
        elif self.phase_budget:
            text += f" ({format_duration(now - self.phase_started)} of {format_duration(self.phase_budget)})"
        if self.step:
            text += f", step '{self.step}' for {format_duration(now - self.step_started)}"
        return text


class PlainDisplay:
    """One timestamped line per event that matters; safe for CI logs and pipes. When nothing was
    printed for `heartbeat` seconds (a long step, a monitor baseline), a line says what is going on,
    so a CI log never looks hung."""

    def __init__(self, stream: TextIO | None = None, verbose: bool = False, heartbeat: float = 0.0) -> None:
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.t0: float | None = None
        self.lock = threading.Lock()
        self.status = RunStatus()
        self.last_output = time.monotonic()
        self.heartbeat = heartbeat
        self.stopped = threading.Event()
        self.beats: threading.Thread | None = None
        if heartbeat > 0:
            self.beats = threading.Thread(target=self._beat, name="tminus-heartbeat", daemon=True)
            self.beats.start()

    # subscribers receive every event
    def __call__(self, event: Event) -> None:
        line = self.format(event)
        with self.lock:  # the heartbeat reads the status and writes under the same lock
            self.status.update(event)
            if line is not None:
                self.write(line)
                self.last_output = time.monotonic()

    def write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def pause(self) -> None:
        """Nothing to pause: plain lines never redraw."""

    def close(self) -> None:
        self.stopped.set()
        if self.beats is not None and self.beats is not threading.current_thread():
            self.beats.join(timeout=2)

    def format(self, e: Event) -> str | None:
        if self.t0 is None:
            self.t0 = e.monotonic
        t0 = self.t0
        return format_event(e, lambda: live_stamp(e.at, e.monotonic - t0), verbose=self.verbose)

    def _beat(self) -> None:
        # Wake often enough to keep the interval to within a quarter of itself.
        while not self.stopped.wait(min(self.heartbeat / 4, 1.0)):
            with self.lock:
                now = time.monotonic()
                if self.t0 is None or now - self.last_output < self.heartbeat or self.stopped.is_set():
                    continue
                self.write(f"{live_stamp(ev.utcnow(), now - self.t0)} {self.status.heartbeat(now)}")
                self.last_output = now


class LiveDisplay(PlainDisplay):
    """On a TTY: the same lines in colour, under a live footer with phase, step and T+ clock."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True, highlight=False, emoji=False)
        self.board = MonitorBoard()
        self.live = Live(self, console=self.console, refresh_per_second=4, transient=True)
        self.live.start()
        self.paused = False

    def __rich__(self) -> Any:
        from rich.text import Text

        if self.t0 is None:
            return Text("")
        now, st = time.monotonic(), self.status
        text = Text(f"{format_clock(now - self.t0)} ", style="bold cyan")
        text.append(st.section or "starting", style="bold")
        if st.phase_budget:
            text.append(f" ({format_duration(now - st.phase_started)} of {format_duration(st.phase_budget)})")
        if st.step:
            text.append(f" · {st.step} {format_duration(now - st.step_started)}", style="yellow")
        if self.board.active:
            from rich.console import Group

            return Group(self.board.table(), text)
        return text

    def __call__(self, event: Event) -> None:
        self.board.update(event)
        if event.type == ev.MONITOR_SAMPLE:
            self.status.update(event)
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
    """The live footer on a terminal; plain lines with a heartbeat (TMINUS_HEARTBEAT) elsewhere. A
    TMINUS_HEARTBEAT that is not a duration is a usage error before anything runs."""
    if tty is None:
        tty = sys.stderr.isatty()
    if tty:
        return LiveDisplay()
    try:
        heartbeat = heartbeat_interval()
    except ValueError as exc:
        from tminus.cli.common import fail
        from tminus.engine.exitcodes import Exit

        fail(str(exc), Exit.USAGE, hint="a duration such as 30s or 1m, or 0 to turn the heartbeat off")
    return PlainDisplay(verbose=verbose, heartbeat=heartbeat)

