"""The release ledger's fold (projection/releases.py) over runs' events: what went live, what was
undone after its go (by the monitor, `tminus rollback`, a failed rollback), and what never went live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tminus.projection import project
from tminus.projection.releases import LIVE, ROLLBACK_FAILED, ROLLED_BACK, SUPERSEDED, releases


@dataclass
class Row:
    id: str
    environment: str = "prod"
    runbook_name: str = "shop"
    operator: str = "alice"
    kind: str = "run"
    status: str = "completed"


def run(release: str | None, minute: int, *, go: bool = True, rollback: bool | None = None) -> list[dict[str, Any]]:
    at = f"2026-12-03T10:{minute:02d}:00+00:00"
    events: list[dict[str, Any]] = [{"type": "run.started", "at": at,
                                     "data": {"release": release} if release else {}}]
    if go:
        events.append({"type": "decision", "at": at, "data": {"verdict": "go", "mode": "auto"}})
    if rollback is not None:
        events += [{"type": "rollback.started", "at": at, "data": {"reason": "errors", "plan": []}},
                   {"type": "rollback.finished", "at": at, "data": {"ok": rollback}}]
    return [{**e, "seq": i + 1} for i, e in enumerate(events)]


def test_live_superseded_rolled_back_and_never_live() -> None:
    runs = [
        (Row("r1"), project(run("v1", 1))),
        (Row("r2"), project(run("v2", 2))),
        (Row("r3", status="rolled_back"), project(run("v3", 3, go=False, rollback=True))),  # verify failed
        (Row("r4", status="rolled_back"), project(run("v4", 4, rollback=True))),  # the monitor rolled back
        (Row("r5", status="rollback_failed"), project(run("v5", 5, rollback=False))),
        (Row("r6"), project(run(None, 6))),  # no release: not listed
        (Row("s1", environment="staging"), project(run("v9", 7))),
    ]
    envs = {e.name: e for e in releases(runs)}
    prod = envs["prod"]
    assert prod.live is not None and (prod.live.release, prod.live.run_id) == ("v2", "r2")
    assert [(r.release, r.state) for r in prod.history] == [
        ("v5", ROLLBACK_FAILED), ("v4", ROLLED_BACK), ("v2", LIVE), ("v1", SUPERSEDED)]
    assert prod.history[1].rollback_reason == "errors" and prod.history[1].rolled_back_at is not None
    assert envs["staging"].live is not None and envs["staging"].live.release == "v9"
    assert prod.to_dict()["live"]["live_since"] == "2026-12-03T10:02:00+00:00"


def test_everything_rolled_back_leaves_nothing_live() -> None:
    envs = releases([(Row("r1", status="rolled_back"), project(run("v1", 1, rollback=True)))])
    assert envs[0].live is None and envs[0].history[0].state == ROLLED_BACK
