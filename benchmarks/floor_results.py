"""What an issue-15 case found, and how it is shown: Markdown (printed, and written into
docs/performance.md) or JSON."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from wholeproc import Command


def fmt(value: float, unit: str) -> str:
    """`value` is in seconds for "ms"/"s", in MiB for "MB"."""
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "s":
        return f"{value:.2f} s"
    ms = value * 1e3
    return f"{ms:.2f} ms" if abs(ms) < 10 else f"{ms:.0f} ms"


def spread(values: list[float], unit: str) -> str:
    return f"{fmt(statistics.median(values), unit)} ({fmt(min(values), unit)} .. {fmt(max(values), unit)})"


@dataclass
class Yardstick:
    """A floor or a peer shown beside a figure: its label and its median, in the figure's unit."""

    label: str
    value: float
    cpu: float | None = None  # its CPU median, beside a whole-process figure

    def json(self) -> dict[str, Any]:
        return {"label": self.label, "median": self.value, "cpu_median": self.cpu}


@dataclass
class Figure:
    """One reported figure: its values over the repetitions and, when it is judged, its target."""

    label: str
    unit: str
    values: list[float]
    target: float | None = None
    floor: Yardstick | None = None
    peer: Yardstick | None = None
    cpu: list[float] | None = None  # a whole-process figure's CPU seconds: steadier than wall on a busy machine

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def cpu_median(self) -> float | None:
        return None if not self.cpu else statistics.median(self.cpu)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.median < self.target

    def json(self) -> dict[str, Any]:
        return {
            "label": self.label, "unit": self.unit, "median": self.median, "min": min(self.values),
            "max": max(self.values), "values": self.values, "target": self.target, "met": self.met,
            "cpu_median": self.cpu_median,
            "floor": None if self.floor is None else self.floor.json(),
            "peer": None if self.peer is None else self.peer.json(),
        }


@dataclass
class CaseResult:
    name: str
    title: str
    reps: int
    commands: list[Command] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool | None:
        verdicts = [f.met for f in self.figures if f.met is not None]
        return None if not verdicts else all(verdicts)

    def json(self) -> dict[str, Any]:
        def stats(values: list[float]) -> dict[str, Any]:
            return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}

        return {
            "name": self.name, "title": self.title, "reps": self.reps, "passed": self.passed, "notes": self.notes,
            "commands": [{"key": c.key, "label": c.label, "role": c.role, "wall_s": stats(c.walls()),
                          "cpu_s": stats(c.cpus()), "peak_rss_mb": stats(c.peaks())}
                         for c in self.commands if c.samples],
            "figures": [f.json() for f in self.figures],
        }


def _met(figure: Figure) -> str:
    return {None: "", True: "**yes**", False: "**no**"}[figure.met]


def _beside(stick: Yardstick | None, figure: Figure) -> str:
    if stick is None:
        return ""
    text = f"{stick.label}: {fmt(stick.value, figure.unit)}"
    if stick.cpu is not None:
        text += f", CPU {fmt(stick.cpu, 'ms')}"
    if stick.value > 0 and figure.unit != "MB":
        text += f" (tminus {figure.median / stick.value:.1f}x)"
    return text


def summary(results: list[CaseResult]) -> list[str]:
    lines = ["| Case | Figure | Target | tminus: median (min .. max) | tminus CPU | Floor | Peer | Met |",
             "|---|---|---|---|---|---|---|---|"]
    for case in results:
        for f in case.figures:
            if f.target is None and f.floor is None:
                continue
            target = "" if f.target is None else f"< {fmt(f.target, f.unit)}"
            cpu = "" if f.cpu_median is None else fmt(f.cpu_median, "ms")
            lines.append(f"| `{case.name}` | {f.label} | {target} | {spread(f.values, f.unit)} | {cpu} | "
                         f"{_beside(f.floor, f)} | {_beside(f.peer, f)} | {_met(f)} |")
        if not case.figures:
            lines.append(f"| `{case.name}` | {'; '.join(case.notes) or 'no figures'} | | | | | | |")
    return lines


def against(results: list[CaseResult], baseline: dict[str, Any]) -> list[str]:
    """Each figure beside the same figure of an earlier `--json` run (its case and label match)."""
    earlier = {(c["name"], f["label"]): f for c in baseline.get("cases", []) for f in c["figures"]}
    lines = [f"Against the baseline (commit `{baseline.get('commit', '?')}`, its machine "
             f"{baseline.get('other_cpu_percent', '?')} % busy with other work):", "",
             "| Case | Figure | Before: median (CPU) | Now: median (CPU) | Now / before: median (CPU) |",
             "|---|---|---|---|---|"]
    for case in results:
        for f in case.figures:
            then = earlier.get((case.name, f.label))
            if then is None or not then["median"]:
                continue

            def both(median: float, cpu: float | None, unit: str = f.unit) -> str:
                return fmt(median, unit) + ("" if cpu is None else f" ({fmt(cpu, 'ms')})")

            ratio = f"{f.median / then['median']:.2f}"
            if f.cpu_median is not None and then.get("cpu_median"):
                ratio += f" ({f.cpu_median / then['cpu_median']:.2f})"
            lines.append(f"| `{case.name}` | {f.label} | {both(then['median'], then.get('cpu_median'))} | "
                         f"{both(f.median, f.cpu_median)} | {ratio} |")
    return [*lines, ""]


def details(case: CaseResult) -> list[str]:
    lines = [f"#### `{case.name}`: {case.title} ({case.reps} repetitions, interleaved)", ""]
    measured = [c for c in case.commands if c.samples]
    if measured:
        lines += ["| Command | Role | Wall: median (min .. max) | CPU (user+sys) median | Peak RSS median |",
                  "|---|---|---|---|---|"]
        lines += [f"| {c.label} | {c.role} | {spread(c.walls(), 'ms')} | {fmt(statistics.median(c.cpus()), 'ms')} | "
                  f"{fmt(statistics.median(c.peaks()), 'MB')} |" for c in measured]
        lines.append("")
    if case.figures:
        lines += ["| Figure | Median (min .. max) | Target | Met |", "|---|---|---|---|"]
        lines += [f"| {f.label} | {spread(f.values, f.unit)} | "
                  f"{'' if f.target is None else '< ' + fmt(f.target, f.unit)} | {_met(f)} |" for f in case.figures]
        lines.append("")
    lines += [f"- {note}" for note in case.notes]
    if case.notes:
        lines.append("")
    return lines


def markdown(results: list[CaseResult], header: list[str], baseline: dict[str, Any] | None = None) -> str:
    lines = [*header, "", *summary(results), ""]
    if baseline is not None:
        lines += against(results, baseline)
    for case in results:
        lines += details(case)
    return "\n".join(lines).rstrip() + "\n"
