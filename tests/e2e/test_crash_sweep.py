"""The crash sweep (issue 9): SIGKILL tminus, alone or with its process group and the steps', after
every ledger append of the rollback path, after a stride of the forward path's (every one with
`--crash-sweep=full` or TMINUS_SWEEP=full), and in the middle of steps; resume as the docs say; every
trial must keep the invariants in tests/crash_sweep.py. The counts are printed in pytest's summary."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.crash_sweep import NOT_IDEMPOTENT, STEPS, Point, reference, run_trial

pytestmark = pytest.mark.crash_sweep

STRIDE = 9  # forward-path appends swept by default: every 9th (plus the first and the last)
SAMPLE = 12  # of the completing run's appends and its later rollback's: every 12th by default
DEFAULT_HOLDS = ("s3", "s6")  # one idempotent, one not


def _points(tmp_path: Path, family: str, full: bool) -> list[Point]:
    """Full: every point, each killed alone and with its process groups. Default: every append of
    the rollback path, a stride of the forward path, samples of the others; the kill mode alternates,
    and both are tried where they differ most: after a `step.effect`, with the step's process alive
    (elsewhere tminus's group holds tminus alone: a step runs in a session of its own)."""
    if family == "mid-step":
        holds = STEPS if full else DEFAULT_HOLDS
        mid = [Point("completes" if hold in STEPS[9:] else "fails", "run", hold=hold) for hold in holds]
        return [p for point in mid for p in (point, _grouped(point))]
    config, during = {"fails": ("fails", "run"), "completes": ("completes", "run"),
                      "rollback": ("completes", "rollback")}[family]
    appends = reference(tmp_path / "reference", config, during)
    rollback_from = next((i for i, t in appends if t == "rollback.started"), len(appends) + 1)
    chosen = [(i, t) for i, t in appends
              if full or i >= rollback_from or i % STRIDE == 1 or i == len(appends)]
    if family != "fails" and not full:
        chosen = chosen[::SAMPLE]  # the completing run and its later rollback: a sample by default
    points = []
    for n, (i, type_) in enumerate(chosen):
        alone = Point(config, during, at=str(i))
        if full or type_ == "step.effect":
            points += [alone, _grouped(alone)]
        else:
            points.append(_grouped(alone) if n % 2 else alone)
    return points


# A family's points are split into shards, each its own test: every trial is independent (its own
# folder and ledger), and under pytest-xdist the shards run at the same time instead of one test of
# ~9 minutes holding a worker. The summary adds a family's shards back up (tests/conftest.py).
SHARDS = {"fails": 4, "mid-step": 1, "completes": 1, "rollback": 2}


@pytest.mark.parametrize(("family", "shard"), [(f, k) for f, n in SHARDS.items() for k in range(n)],
                         ids=lambda v: v if isinstance(v, str) else f"shard{v}")
def test_crash_sweep(tmp_path: Path, family: str, shard: int, crash_sweep: dict, record_property) -> None:
    full = crash_sweep["size"] == "full"
    (tmp_path / "reference").mkdir()
    started = time.monotonic()
    points = _points(tmp_path, family, full)[shard::SHARDS[family]]
    assert points, f"{family} shard {shard}: no points"
    trials, chose = [], 0
    for n, point in enumerate(points):
        directory = tmp_path / f"t{n}"
        directory.mkdir()
        trial = run_trial(directory, point)
        trials.append(trial)
        chose += bool(trial.chose)
    violations = [v for trial in trials for v in trial.violations]
    # Through the test's report, not a shared dict: under pytest-xdist the test runs in a worker and
    # the summary is printed by the controller (tests/conftest.py gathers it from the reports).
    record_property("crash_sweep", {"family": family, "trials": len(trials), "violations": violations,
                                    "operator_chose": chose, "seconds": round(time.monotonic() - started, 1),
                                    "undo_rerun": sum(bool(t.undone_twice) for t in trials)})
    assert not violations, f"{len(violations)} violation(s) in {len(trials)} trials:\n" + "\n".join(violations)


def _grouped(point: Point) -> Point:
    return Point(point.config, point.during, point.at, point.hold, group=True)


def test_the_sweep_runbook_mixes_idempotent_and_not() -> None:
    assert len(STEPS) == 12 and 0 < len(NOT_IDEMPOTENT) < len(STEPS)
