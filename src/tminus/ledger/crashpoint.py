"""Test-only crash points, for the crash sweep (tests/e2e/test_crash_sweep.py): inert unless
TMINUS_TEST_CRASH_AT or TMINUS_TEST_CRASH_LOG is set. After a committed append the process may
SIGKILL itself (or its whole process group), so a test can stop tminus between any two ledger
writes; the log names each append (its index in this process and its event type) so a test can
first count the points of a clean run. Read once per process, when the first writer is made."""

from __future__ import annotations

import os
import signal
from collections import Counter
from dataclasses import dataclass, field

CRASH_AT = "TMINUS_TEST_CRASH_AT"
CRASH_LOG = "TMINUS_TEST_CRASH_LOG"


@dataclass
class CrashPoint:
    """`at`: `N` (after the N-th append of this process) or `TYPE` / `TYPE:K` (after the K-th
    append of an event of that type, default the first); prefixed `group:` to kill the process
    group instead of the process alone."""

    index: int | None = None
    type_: str | None = None
    occurrence: int = 1
    group: bool = False
    log: str | None = None
    count: int = 0
    seen: Counter[str] = field(default_factory=Counter)

    def committed(self, type_: str) -> None:
        """Called after an append's transaction committed."""
        self.count += 1
        self.seen[type_] += 1
        if self.log:
            with open(self.log, "a", encoding="utf-8") as out:
                out.write(f"{self.count} {type_}\n")
        hit = (self.count == self.index) if self.index is not None else (
            type_ == self.type_ and self.seen[type_] == self.occurrence)
        if hit:
            if self.group:
                os.killpg(os.getpgid(0), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)


def parse(at: str | None, log: str | None) -> CrashPoint | None:
    if not at and not log:
        return None
    point = CrashPoint(log=log or None)
    spec = (at or "").strip()
    if spec.startswith("group:"):
        point.group, spec = True, spec[len("group:"):]
    if spec.isdigit():
        point.index = int(spec)
    elif spec:
        type_, _, k = spec.partition(":")
        point.type_, point.occurrence = type_, int(k) if k else 1
    return point


_loaded = False
_point: CrashPoint | None = None


def from_env() -> CrashPoint | None:
    """This process's crash point (one for all its writers, so the count is per process), or None."""
    global _loaded, _point
    if not _loaded:
        _loaded, _point = True, parse(os.environ.get(CRASH_AT), os.environ.get(CRASH_LOG))
    return _point


__all__ = ["CRASH_AT", "CRASH_LOG", "CrashPoint", "from_env", "parse"]
