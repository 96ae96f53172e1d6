"""Whether the ledger holds a run that ended a certain way: `requires:` checks it before anything
changes, and a rehearsal requirement can ask the same question.

Kind-free and section-free: `find_run(reader, Wanted(...), now=...)` reads the ledger through its
reader and each run through the projection, and returns a `Verdict` with the satisfying run (its id,
outcome and end) as evidence, or a message naming what was found instead.

What satisfies: the newest run of the runbook (by name) in the environment, of the given run kinds
(`run` by default: not gate-only or monitor-only runs), that has *ended* with the outcome, and ended at
most `within` before `now`. A later run that ended otherwise does not undo it (a rehearsal that
completed stays done when someone rolls back a later try); the message names the latest ended run either way.

`find_rehearsal(reader, WantedRehearsal(...), now=...)` asks the same of rehearsal records (runs of kind
`rehearsal`, engine/rehearsal/record.py, read through `RunView.rehearsal`) for
`decision.require_rehearsal`: the newest record that passed, recently enough, of the same procedure
(runbook/procedure.py, for the environment about to run), with every cycle's RTO within `max_rto` and
every phase covered; else what the newest finished record is instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from tminus.durations import format_duration
from tminus.engine.rehearsal.record import KIND as REHEARSAL
from tminus.engine.rehearsal.record import PASSED
from tminus.ledger.interfaces import LedgerReader
from tminus.ledger.records import RunRecord
from tminus.runbook.timing import format_at

if TYPE_CHECKING:  # the projection is imported where a recorded run is read: a runbook asking none never loads it
    from tminus.projection import RunView
    from tminus.projection.model import RehearsalCycle

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
    from tminus.projection import project

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


# --- rehearsals (decision.require_rehearsal) ------------------------------------------------------

COVERING = ("fail", "kill")  # the faults whose cycle rehearses the rollback of the phase it follows
FORWARD = "roll_forward"  # the cycle that covers the phases after the point of no return


@dataclass(frozen=True)
class WantedRehearsal:
    runbook: str
    environment: str  # where it was rehearsed (staging)
    target: str  # the environment about to run (production): whose procedure hash must match
    procedure_hash: str  # runbook/procedure.py's hash of this runbook for `target`
    within: float | None = None
    max_rto: float | None = None
    phases: tuple[str, ...] = ()  # every one must be covered by an ok cycle; (): not asked (all_phases off)

    def describe(self) -> str:
        within = f" within {format_age(self.within)}" if self.within is not None else ""
        rto = f", every RTO <= {format_duration(self.max_rto)}" if self.max_rto is not None else ""
        phases = ", every phase" if self.phases else ""
        return f"a passing rehearsal of {self.runbook} in {self.environment}{within}{rto}{phases}, same procedure"


@dataclass(frozen=True)
class FoundRehearsal:
    """A finished rehearsal record and what keeps it from satisfying the requirement (nothing: it does)."""

    run_id: str
    status: str  # completed (every cycle passed) | failed
    ended_at: float
    procedure_hash: str | None  # what it recorded for the target environment
    cycles: int
    max_rto: float | None
    problems: tuple[str, ...] = ()

    def describe(self, now: float) -> str:
        verdict = "passed" if self.status == PASSED else self.status
        rto = f", max RTO {format_duration(self.max_rto)}" if self.max_rto is not None else ""
        return f"rehearsal {self.run_id} {verdict} {format_age(now - self.ended_at)} ago ({self.cycles} cycles{rto})"


@dataclass(frozen=True)
class RehearsalVerdict:
    ok: bool
    wanted: WantedRehearsal
    message: str
    satisfied_by: FoundRehearsal | None = None
    latest: FoundRehearsal | None = None  # the newest finished record of the runbook in the environment

    def evidence(self) -> dict[str, Any]:
        """JSON-safe, for the ledger: what was asked, which record answered, what the newest one was."""
        def found(f: FoundRehearsal | None) -> dict[str, Any] | None:
            return None if f is None else {**asdict(f), "problems": list(f.problems), "ended": format_at(f.ended_at)}

        return {"ok": self.ok, "wanted": {**asdict(self.wanted), "phases": list(self.wanted.phases)},
                "message": self.message, "rehearsal_id": self.satisfied_by.run_id if self.satisfied_by else None,
                "satisfied_by": found(self.satisfied_by), "latest": found(self.latest)}


def find_rehearsal(reader: LedgerReader, wanted: WantedRehearsal, *, now: float) -> RehearsalVerdict:
    """The newest finished rehearsal record satisfying `wanted`, or what the newest one is instead."""
    from tminus.projection import project

    where = f"{wanted.runbook} in {wanted.environment}"
    latest: FoundRehearsal | None = None
    for record in reader.list_runs(runbook=wanted.runbook, environment=wanted.environment, kind=REHEARSAL,
                                   limit=SCAN):  # newest first
        view = project(reader.events(record.id))
        end = view.finished
        if end is None or end.at is None or end.status is None:
            continue  # still running, or crashed: it proves nothing yet
        found = _judge(record.id, view, end.status, end.at, end.reason, wanted, now)
        latest = latest or found
        if not found.problems:
            return RehearsalVerdict(True, wanted, found.describe(now), found, latest)
        if wanted.within is not None and now - end.at > wanted.within:
            break  # the older ones are older still
    if latest is None:
        return RehearsalVerdict(False, wanted, f"no rehearsal of {where} has finished (the ledger holds none)")
    message = f"latest {latest.describe(now)}: {'; '.join(latest.problems)}"
    return RehearsalVerdict(False, wanted, message, None, latest)


def _judge(run_id: str, view: RunView, status: str, ended_at: float, reason: str | None,
           wanted: WantedRehearsal, now: float) -> FoundRehearsal:
    r = view.rehearsal
    cycles = r.cycles if r is not None else []
    hashes = r.procedure_hashes if r is not None else {}
    # A target the runbook does not declare has no hash of its own: its hash is the whole model's, which
    # is what the rehearsal recorded for any environment the runbook did not declare either.
    recorded = hashes.get(wanted.target)
    same = recorded == wanted.procedure_hash if wanted.target in hashes else wanted.procedure_hash in hashes.values()
    problems: list[str] = []
    if status != PASSED:
        failed = [_cycle(c) + (f": {c.problems[0]}" if c.problems else "") for c in cycles if not c.ok]
        problems.append(f"{status}: " + ("; ".join(failed) if failed else reason or "no cycle failed"))
    if wanted.within is not None and now - ended_at > wanted.within:
        problems.append(f"too old: finished {format_age(now - ended_at)} ago, more than {format_age(wanted.within)}")
    if not same:
        rehearsed = (f"it rehearsed {recorded[:12]} for {wanted.target}" if recorded else
                     f"it recorded no procedure hash for {wanted.target}")
        problems.append(f"another procedure: {rehearsed}, this runbook is {wanted.procedure_hash[:12]} "
                        "(edited since?)")
    rtos = [(c, rto) for c in cycles if (rto := _rto(c)) is not None]
    if wanted.max_rto is not None:
        problems += [f"over max_rto: {_cycle(c)} RTO {format_duration(rto)}, "
                     f"{format_duration(rto - wanted.max_rto)} over {format_duration(wanted.max_rto)}"
                     for c, rto in rtos if rto > wanted.max_rto]
    missing = _not_covered(wanted.phases, cycles, r.not_rehearsed if r is not None else [])
    if missing:
        problems.append(f"phases not rehearsed: {', '.join(missing)}")
    return FoundRehearsal(run_id, status, ended_at, recorded, len(cycles), max((x for _c, x in rtos), default=None),
                          tuple(problems))


def _rto(c: RehearsalCycle) -> float | None:
    """The cycle's RTO in seconds; None when it never got that far (or the record holds no number)."""
    rto = c.rto_s
    return float(rto) if isinstance(rto, int | float) and not isinstance(rto, bool) else None


def _not_covered(phases: tuple[str, ...], cycles: list[RehearsalCycle],
                 not_rehearsed: list[dict[str, Any]]) -> list[str]:
    """Each phase needs an ok fail/kill cycle at it; one after the point of no return, an ok roll_forward."""
    covered = {c.at for c in cycles if c.ok and c.fault in COVERING}
    forward = any(c.ok and c.fault == FORWARD for c in cycles)
    after = {str(n.get("phase")) for n in not_rehearsed if isinstance(n, dict)}
    return [p for p in phases if p not in covered and not (forward and p in after)]


def _cycle(c: RehearsalCycle) -> str:
    return f"cycle {c.index + 1} ({c.fault} at {c.at})" if c.at else f"cycle {c.index + 1} ({c.fault})"


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


__all__ = ["Found", "FoundRehearsal", "RehearsalVerdict", "Verdict", "Wanted", "WantedRehearsal", "find_rehearsal",
           "find_run", "format_age"]
