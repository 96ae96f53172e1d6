"""A loaded runbook: the validated model plus where it came from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from tminus.errors import Location
from tminus.runbook.models import Runbook, Step, nested_checks

PathKey = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Maps a path inside the document (('phases', 0, 'steps', 2, 'run')) to its position."""

    file: str
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)  # 1-based line, column
    # Strings written in quotes: their text starts one column after their position.
    quoted: set[PathKey] = field(default_factory=set)

    def locate(self, path: PathKey) -> Location:
        """The position of `path`, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.positions:
                line, col = self.positions[p]
                return Location(self.file, line, col)
            p = p[:-1]
        return Location(self.file, 1, 1)


@dataclass
class RunbookDocument:
    """What the loader returns and the engine consumes."""

    runbook: Runbook
    path: Path
    text: str
    source: SourceMap
    # Each vars file read (its path as written, its text): part of what the run ran with.
    vars_files: tuple[tuple[str, str], ...] = ()

    @property
    def content_hash(self) -> str:
        """The runbook's identity for resume: its text, and the text of every vars file it read (an
        edited vars file changes the values a resumed run would render with)."""
        if not self.vars_files:
            return content_hash(self.text)
        return content_hash("\0".join([self.text, *(f"{path}\0{text}" for path, text in self.vars_files)]))

    @property
    def base_dir(self) -> Path:
        return self.path.resolve().parent

    def locate(self, step: Step, *rest: str | int) -> Location:
        return self.source.locate((*step.path, *rest))

    def step_by_key(self) -> dict[str, Step]:
        return {s.key: s for s in self.runbook.all_steps()}


def content_hash(text: str) -> str:
    """The runbook's identity for resume: sha256 of its text with a UTF-8 BOM and CRLF line endings
    normalised away, so the file hashes the same however it was read (run and resume alike)."""
    return hashlib.sha256(text.removeprefix("\ufeff").replace("\r\n", "\n").encode()).hexdigest()


def path_to_str(path: PathKey) -> str:
    """('phases', 0, 'steps', 2) -> 'phases[0].steps[2]'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def assign_keys(runbook: Runbook) -> None:
    """Give every step its path and key (the path as text), so positions and ledger rows agree."""

    def visit_one(s: Step, p: PathKey) -> None:
        s._path = p
        s._key = path_to_str(p)
        for nested, below in nested_checks(s):  # a wait's check, a service's health checks
            visit_one(nested, (*p, *below))
        if s.undo:
            visit(s.undo, (*p, "undo"))

    def visit(steps: list[Step], base: PathKey) -> None:
        for i, s in enumerate(steps):
            visit_one(s, (*base, i))

    for gi, g in enumerate(runbook.gates):
        visit(g.checks, ("gates", gi, "checks"))
    for pi, ph in enumerate(runbook.phases):
        if ph.guard is not None:
            visit(ph.guard.probes, ("phases", pi, "guard", "probes"))
        visit(ph.steps, ("phases", pi, "steps"))
        visit(ph.undo, ("phases", pi, "undo"))
    visit(runbook.verify, ("verify",))
    for name in ("after_go", "finalize"):
        for pi, ph in enumerate(getattr(runbook, name)):
            visit(ph.steps, (name, pi, "steps"))
            visit(ph.undo, (name, pi, "undo"))
    visit(runbook.rollback.steps, runbook.rollback.base)
    if runbook.monitor is not None:
        visit(runbook.monitor.probes, ("monitor", "probes"))
    if runbook.kill_switch is not None:
        visit(runbook.kill_switch.steps, ("kill_switch", "steps"))
