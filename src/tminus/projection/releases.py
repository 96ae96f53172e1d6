"""`tminus releases`: per environment, what is live, since when, by whom, through which run, and the
releases before it, read from the runs' projections (no file of its own to keep in sync).

A release counts once its run's decision was go: that is when it went live. A run stopped before its
go (blocked, rolled back by a failed step or verify, aborted) never made its release live and is not
listed, as Kamal's and Argo's histories list only what was deployed. A release undone after its go
(the automatic rollback of a failing monitor window or after_go phase, or `tminus rollback` later)
is listed, marked rolled back, and is never the live one. A kill switch that ran while a release was
live is shown beside it: the old path was restored, the release itself was not undone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from tminus.projection.view import RunView

KILL_SWITCH = "kill-switch"  # the section a `tminus kill-switch` run times (engine/lifecycle.py)
LIVE, SUPERSEDED, ROLLED_BACK, ROLLBACK_FAILED = "live", "superseded", "rolled_back", "rollback_failed"


class RunRow(Protocol):
    """What a report needs of a ledger run record."""

    @property
    def id(self) -> str: ...
    @property
    def runbook_name(self) -> str: ...
    @property
    def environment(self) -> str: ...
    @property
    def operator(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...


@dataclass
class Release:
    release: str
    environment: str
    runbook: str
    run_id: str
    operator: str
    live_at: float | None  # the go decision
    state: str = SUPERSEDED  # live | superseded | rolled_back | rollback_failed
    run_status: str = ""
    rolled_back_at: float | None = None
    rollback_reason: str | None = None
    kill_switches: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"release": self.release, "environment": self.environment, "runbook": self.runbook,
                "run": self.run_id, "operator": self.operator, "live_since": iso(self.live_at),
                "state": self.state, "run_status": self.run_status, "rolled_back_at": iso(self.rolled_back_at),
                "rollback_reason": self.rollback_reason, "kill_switches": self.kill_switches}


@dataclass
class Environment:
    name: str
    live: Release | None
    history: list[Release]  # newest first, the live one included

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.name, "live": self.live.to_dict() if self.live else None,
                "releases": [r.to_dict() for r in self.history]}


def iso(at: float | None) -> str | None:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds") if at is not None else None


def releases(runs: Sequence[tuple[RunRow, RunView]]) -> list[Environment]:
    """Each environment (sorted by name) with its releases, newest go first."""
    by_env: dict[str, list[Release]] = {}
    switches: list[tuple[RunRow, RunView]] = []
    for record, view in runs:
        if record.kind == "kill_switch":
            switches.append((record, view))
            continue
        found = _release(record, view)
        if found is not None:
            by_env.setdefault(found.environment, []).append(found)
    out: list[Environment] = []
    for env in sorted(by_env):
        history = sorted(by_env[env], key=lambda r: (r.live_at or 0.0, r.run_id), reverse=True)
        live = next((r for r in history if r.state not in (ROLLED_BACK, ROLLBACK_FAILED)), None)
        if live is not None:
            live.state = LIVE
        for record, view in switches:
            _attach_kill_switch(history, record, view)
        out.append(Environment(env, live, history))
    return out


def _release(record: RunRow, view: RunView) -> Release | None:
    go = view.went_live()
    if view.release is None or go is None:
        return None
    found = Release(view.release, record.environment, record.runbook_name, record.id, record.operator,
                    go.at, run_status=record.status)
    undone = view.undone_after_go()
    if undone is not None:
        ok = undone.end is not None and undone.end.ok
        found.state = ROLLED_BACK if ok else ROLLBACK_FAILED
        found.rolled_back_at = undone.end.at if undone.end is not None else undone.at
        found.rollback_reason = undone.reason
    return found


def _attach_kill_switch(history: list[Release], record: RunRow, view: RunView) -> None:
    """A kill switch names the run that was live when it ran (kill_switch.live_run in its start)."""
    data = view.started.data if view.started else {}
    target = data.get("live_run")
    timed = view.sections_of(KILL_SWITCH)
    for r in history:
        if r.run_id == target:
            r.kill_switches.append({"run": record.id, "operator": record.operator, "status": record.status,
                                    "at": iso(view.t0), "elapsed": timed[-1].actual if timed else None,
                                    "target": data.get("target")})


__all__ = ["LIVE", "ROLLBACK_FAILED", "ROLLED_BACK", "SUPERSEDED", "Environment", "Release", "releases"]
