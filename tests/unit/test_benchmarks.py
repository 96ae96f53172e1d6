"""The issue-15 benchmark harness (benchmarks/run.py --floors) cannot rot: every case runs once at its
smallest size and reports what it promises, and the whole-process measurement under it holds its
promises (the exit code is checked, a child's peak RSS is its own, the docs section is replaced in
place). Timing targets are the benchmark's business, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402
import floors  # noqa: E402
from floor_cases import CASES  # noqa: E402
from wholeproc import PYTHON, BenchError, Command, child_env, interleave, measure  # noqa: E402
from wholeproc import Clock as BenchClock  # noqa: E402


def smoke(*cases: str) -> dict[str, Any]:
    args = [arg for case in cases for arg in ("--case", case)]
    proc = subprocess.run([PYTHON, str(BENCH / "run.py"), *args, "--smoke", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_case_runs_at_its_smallest_size_and_reports_its_figures(name: str) -> None:
    found = smoke(name)
    assert found["mode"] == "smoke"
    (case,) = found["cases"]
    assert case["name"] == name
    if not case["figures"]:  # only a case whose service is missing may skip, and it says why
        assert name == "steps-postgres" and case["notes"][0].startswith("skipped:"), case
        return
    roles = {c["role"] for c in case["commands"]}
    assert {"tminus", "floor"} <= roles, "a case measures tminus beside its floor, in the same run"
    for command in case["commands"]:
        assert len(command["wall_s"]["values"]) == case["reps"] == 1
        assert command["wall_s"]["median"] > 0 and command["peak_rss_mb"]["median"] > 0
    judged = [f for f in case["figures"] if f["target"] is not None]
    assert judged, "every case judges at least one figure against the issue's target"
    for figure in judged:
        assert figure["met"] == (figure["median"] < figure["target"])
        assert figure["floor"] is not None and figure["floor"]["median"] >= 0


def test_a_failing_command_stops_the_benchmark_with_its_output(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="exited 3") as caught:
        measure(["sh", "-c", "echo the reason; exit 3"], tmp_path, child_env(), tmp_path / "log", 10)
    assert "the reason" in str(caught.value)


def test_a_command_over_its_timeout_is_killed(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="exited -9"):
        measure(["sleep", "30"], tmp_path, child_env(), tmp_path / "log", 0.3)


def test_peak_rss_is_the_child_s_own_not_the_benchmark_s(tmp_path: Path) -> None:
    """A spawned child's ru_maxrss starts at its spawner's: the launcher keeps it small."""
    ballast = bytearray(300 * 1024 * 1024)  # this process grows well beyond a bare interpreter
    ballast[::4096] = b"x" * len(ballast[::4096])
    sample = measure([PYTHON, "-c", "pass"], tmp_path, child_env(), tmp_path / "log", 30)
    assert sample.peak_mb < 60, sample
    big = measure([PYTHON, "-c", "b = bytearray(120 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"],
                  tmp_path, child_env(), tmp_path / "log", 30)
    assert big.peak_mb > 120 > sample.peak_mb, big


def test_children_write_bytecode_and_see_no_tminus_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("TMINUS_LEDGER", "sqlite:///elsewhere.db")
    env = child_env({"EXTRA": "1"})
    assert "PYTHONDONTWRITEBYTECODE" not in env and "TMINUS_LEDGER" not in env and env["EXTRA"] == "1"


def test_interleaving_rotates_the_order_and_skips_warm_up_rounds(tmp_path: Path) -> None:
    order = tmp_path / "order"
    commands = [Command(key, key, "floor", ["sh", "-c", f"echo {key} >> {order}"], tmp_path, child_env())
                for key in "abc"]
    interleave(commands, reps=3, warmup=1, clock=BenchClock(60), logs=tmp_path / "logs")
    assert order.read_text().split() == list("cab" "abc" "bca" "cab")
    assert [len(c.samples) for c in commands] == [3, 3, 3]


def test_the_budget_stops_the_benchmark(tmp_path: Path) -> None:
    commands = [Command("a", "a", "floor", ["true"], tmp_path, child_env())]
    with pytest.raises(BenchError, match="budget"):
        interleave(commands, reps=2, warmup=0, clock=BenchClock(-1), logs=tmp_path / "logs")


def test_write_docs_replaces_only_the_marked_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text(f"# P\n\nbefore\n\n{floors.START_MARK}\nold figures\n{floors.END_MARK}\n\nafter\n")
    monkeypatch.setattr(common, "DOC", doc)
    common.write_section(floors.START_MARK, floors.END_MARK, "new figures\n", "## missing")
    text = doc.read_text()
    assert "old figures" not in text and "new figures" in text
    assert text.startswith("# P\n\nbefore\n") and text.endswith("\n\nafter\n") and "## missing" not in text


def test_a_baseline_puts_each_figure_beside_its_earlier_value() -> None:
    from floor_results import CaseResult, Figure, against

    now = [CaseResult("empty-run", "t", 3, figures=[Figure("empty run", "ms", [0.1, 0.2, 0.3], 0.15, cpu=[0.1] * 3),
                                                     Figure("not in the baseline", "ms", [1.0])])]
    before = {"commit": "abc", "cases": [{"name": "empty-run", "figures": [
        {"label": "empty run", "median": 0.8, "cpu_median": 0.4}]}]}
    rows = [line for line in against(now, before) if line.startswith("| `empty-run`")]
    assert rows == ["| `empty-run` | empty run | 800 ms (400 ms) | 200 ms (100 ms) | 0.25 (0.25) |"]
    committed = json.loads((BENCH / "floors_before_issue15.json").read_text())
    assert {c["name"] for c in committed["cases"]} == set(CASES), "the figures before issue 15 cover every case"
