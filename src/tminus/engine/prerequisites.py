"""Whether the ledger holds a run that ended a certain way: `requires:` checks it before anything
changes, and a rehearsal requirement can ask the same question.

Kind-free and section-free: `find_run(reader, Wanted(...), now=...)` reads the ledger through its
reader and each run through the projection, and returns a `Verdict` with the satisfying run (its id,
outcome and end) as evidence, or a message naming what was found instead.

What satisfies: the newest run of the runbook (by name) in the environment, of the given run kinds
(`run` by default: not gate-only or monitor-only runs), that has *ended* with the outcome, and ended at
most `within` before `now`. A later run that ended otherwise does not undo it (a rehearsal that
completed stays done when someone rolls back a later try); the message names the latest ended run either way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tminus.ledger.interfaces import LedgerReader
from tminus.ledger.records import RunRecord
from tminus.projection import project
from tminus.runbook.timing import format_at

SCAN = 50  # runs looked at per question: the newest are the ones that matter


@dataclass(frozen=True)
class Wanted:
    runbook: str
    environment: str
    outcome: str = "completed"
    within: float | None = None  # seconds before `now`; None: any age
    content_hash: str | None = None  # only a run of this runbook text
    kinds: tuple[str, ...] = ("run",)

    def describe(self) -> str:
        within = f" within {format_age(self.within)}" if self.within is not None else ""
        same = ", same runbook text" if self.content_hash else ""
        return f"{self.runbook} in {self.environment}: {self.outcome}{within}{same}"


@dataclass(frozen=True)
class Found:
    """A run that has ended, as the projection of its events says."""

    run_id: str
    outcome: str
    ended_at: float
    content_hash: str
    kind: str

    def describe(self, now: float) -> str:
        return f"{self.outcome} {format_age(now - self.ended_at)} ago, run {self.run_id}"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    wanted: Wanted
    message: str
    satisfied_by: Found | None = None
    latest: Found | None = None  # the newest ended run of the runbook in the environment

    def evidence(self) -> dict[str, Any]:
        """JSON-safe, for the ledger: what was asked, which run answered (id, outcome, end)."""
        def found(f: Found | None) -> dict[str, Any] | None:
            return None if f is None else {**asdict(f), "ended": format_at(f.ended_at)}

        wanted = {k: v for k, v in asdict(self.wanted).items() if k != "kinds"}
        return {"ok": self.ok, "wanted": wanted, "message": self.message,
                "run_id": self.satisfied_by.run_id if self.satisfied_by else None,
                "satisfied_by": found(self.satisfied_by), "latest": found(self.latest)}


def find_run(reader: LedgerReader, wanted: Wanted, *, now: float) -> Verdict:
    """The newest ended run satisfying `wanted`, or why there is none."""
    latest = _newest_ended(reader, wanted, outcome=None)
    match = _newest_ended(reader, wanted, outcome=wanted.outcome)
    where = f"{wanted.runbook} in {wanted.environment}"
    if match is not None and (wanted.within is None or now - match.ended_at <= wanted.within):
        return Verdict(True, wanted, f"{where}: {match.describe(now)}", match, latest)
    if latest is None:
        message = f"no run of {where} has ended (the ledger holds none)"
    else:
        message = f"latest {where}: {latest.describe(now)}"
        if match is not None and match.run_id != latest.run_id:
            message += f"; latest {wanted.outcome}: {match.describe(now)}"
        if match is not None and wanted.within is not None:
            message += f" (older than {format_age(wanted.within)})"
        elif match is None and wanted.content_hash and latest.outcome == wanted.outcome:
            message += " (another runbook text)"
    return Verdict(False, wanted, message, None, latest)


def _newest_ended(reader: LedgerReader, wanted: Wanted, *, outcome: str | None) -> Found | None:
    """Candidates come from the reader's run list (newest first); each is confirmed by its events."""
    records: list[RunRecord] = []
    for kind in wanted.kinds:
        records += reader.list_runs(runbook=wanted.runbook, environment=wanted.environment, status=outcome,
                                    kind=kind, limit=SCAN)
    records.sort(key=lambda r: (r.started_at, r.id), reverse=True)
    for record in records:
        if outcome is not None and wanted.content_hash and record.content_hash != wanted.content_hash:
            continue
        end = project(reader.events(record.id)).finished
        if end is None or end.at is None or end.status is None:
            continue  # not ended (running, or crashed and resumable): it satisfies nothing yet
        if outcome is not None and end.status != outcome:
            continue
        return Found(record.id, end.status, end.at, record.content_hash, record.kind)
    return None


def format_age(seconds: float) -> str:
    """9d, 2d4h, 5h30m, 12m, 40s: how long ago, to the unit that matters."""
    whole = max(0, round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours and days < 3 else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


__all__ = ["Found", "Verdict", "Wanted", "find_run", "format_age"]
