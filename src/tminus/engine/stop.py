"""The stop channel: how anything (a signal, a lost lease, a policy, a guard, another thread) stops
the current step and says what the run does next.

A request carries a mode:
- `interrupt`: the run ends interrupted and can be resumed (exit 130): SIGINT, SIGTERM, a lost lease;
- `rollback`: the run takes the undo path (exit 11); the stopped step counts as touched;
- `abort`: the run ends aborted (exit 13); nothing is undone;
- `kill_switch`: a rollback whose reason says it was the kill switch;
- `needs_operator`: nobody can answer what the run must ask (a deadline's pause under --no-input): it
  ends needing an operator (exit 15) and can be resumed.

The channel is a `threading.Event` to the kinds: they read `ctx.cancel.is_set()` and `.wait(t)`, and
the flag is up while an accepted request waits for the runner to act on it. The first request wins;
later ones are recorded and ignored. Once the rollback begins, the rollback's own trigger is consumed
(the undo steps must run) and the channel accepts one new request: `interrupt` stops the rollback
resumably, `abort` stops it where it is (the run ends `rollback_failed`: `tminus resume` continues it),
and `rollback` or `kill_switch` are ignored: the run is already rolling back.

Every request is recorded as a `run.stop` event, accepted or not, through the recorder the session
attaches (requests made before it is attached are recorded when it is).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tminus.events import utcnow

INTERRUPT = "interrupt"
ROLLBACK = "rollback"
ABORT = "abort"
KILL_SWITCH = "kill_switch"
NEEDS_OPERATOR = "needs_operator"
MODES = (INTERRUPT, ROLLBACK, ABORT, KILL_SWITCH, NEEDS_OPERATOR)
UNDOING = (ROLLBACK, KILL_SWITCH)  # the modes that take the undo path

# The stages of a run as the channel sees them.
RUNNING, ROLLING_BACK, CLOSED = "running", "rolling_back", "closed"


@dataclass(frozen=True)
class StopRequest:
    mode: str
    reason: str
    by: str
    at: str = field(default_factory=utcnow)

    def describe(self) -> str:
        what = "kill switch" if self.mode == KILL_SWITCH else f"{self.mode} requested"
        return f"{what} by {self.by}: {self.reason}" if self.reason else f"{what} by {self.by}"

    def to_event_data(self) -> dict[str, str]:
        return {"mode": self.mode, "reason": self.reason, "by": self.by, "requested_at": self.at}


class Stopped(Exception):
    """A stop request cut the current section short; `request.mode` says what the run does next.
    Raised by the runner's checks between steps, and by the ledger's recorder when a write is
    refused because the lease is gone (an interrupt)."""

    def __init__(self, request: StopRequest) -> None:
        super().__init__(request.describe())
        self.request = request


# recorder(request, accepted, note): note says why a request was not accepted
Recorder = Callable[[StopRequest, bool, str], None]


class StopChannel(threading.Event):
    """A `threading.Event` whose flag means "stop the current step", with the request behind it."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._stage = RUNNING
        self._accepted: StopRequest | None = None  # the request that won in the current stage
        self._pending: StopRequest | None = None  # accepted and not yet consumed by the runner
        self._recorder: Recorder | None = None
        self._unrecorded: list[tuple[StopRequest, bool, str]] = []
        self.history: list[StopRequest] = []  # every request, in order

    # --- asking ---------------------------------------------------------------------------------

    def request(self, mode: str, reason: str, by: str) -> bool:
        """Ask the run to stop. True if this request is the one the run acts on."""
        if mode not in MODES:
            raise ValueError(f"unknown stop mode {mode!r}: one of {', '.join(MODES)}")
        req = StopRequest(mode, reason, by)
        with self._lock:
            if self._stage == CLOSED:
                return False  # the run has ended: nothing is left to stop, nothing to record it in
            self.history.append(req)
            note = self._refusal(req)
            if not note:
                self._accepted = self._pending = req
                super().set()
            if self._recorder is None:
                self._unrecorded.append((req, not note, note))
            else:
                self._recorder(req, not note, note)
        return not note

    def set(self) -> None:
        """`threading.Event.set()` as kinds and older callers know it: an interrupt."""
        self.request(INTERRUPT, "interrupted; `tminus resume` continues", "set()")

    def _refusal(self, req: StopRequest) -> str:
        if self._accepted is not None:
            return f"a stop was already requested ({self._accepted.describe()})"
        if self._stage == ROLLING_BACK and req.mode in UNDOING:
            return "the run is already rolling back"
        return ""

    # --- the runner's side ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """The run goes forward: no rollback has begun and it has not ended (a guard acts only then)."""
        return self._stage == RUNNING

    @property
    def pending(self) -> StopRequest | None:
        """The accepted request the runner has not yet acted on."""
        return self._pending

    def enter_rollback(self) -> None:
        """The undo path begins: a pending rollback or kill switch is consumed (the flag drops, so undo
        steps run); a pending interrupt or abort stays and stops the rollback at its first step."""
        with self._lock:
            self._stage = ROLLING_BACK
            if self._pending is None or self._pending.mode in UNDOING:
                self._accepted = self._pending = None
                super().clear()

    def attach(self, recorder: Recorder) -> None:
        """Record requests from now on (and those made before) with `recorder`."""
        with self._lock:
            self._recorder = recorder
            for item in self._unrecorded:
                recorder(*item)
            self._unrecorded.clear()

    def close(self) -> None:
        """The run has ended: later requests are dropped (nothing is running that could stop)."""
        with self._lock:
            self._stage = CLOSED
            self._recorder = None


__all__ = ["ABORT", "INTERRUPT", "KILL_SWITCH", "MODES", "NEEDS_OPERATOR", "ROLLBACK", "StopChannel", "StopRequest",
           "Stopped"]
