"""The run's lifecycle as data: the sections a run passes through, in order, each with an id, a kind,
a name and a status, and the function that runs it.

The runner executes a `Lifecycle` generically (runner.py, `Runner.execute`): it skips a section the
prior record shows as done, runs the others one by one, and turns each section's `SectionResult` into
what happens next: continue, complete, block, abort, needs_operator, or rollback. The rollback is a
section too (the undo path: the undo of each started phase, the rollback steps, verify after rollback),
entered from any section whose result or stop says so.

A new section (an after-go phase, finalize, a guard) is a new `Section` with a runner function,
plugged in with `Lifecycle.plug(section, after=...)` or `before=...` at a defined point (a section id
or kind): not an edit across the runner.

Section ids are what `section.started`/`section.finished` events and `step.*` events carry in their
`section` field: a kind alone (`gates`, `verify`), or `kind:name` (`phase:deploy`, `gate:ready`,
`undo:deploy`). `section_id` builds them and `parse_section` reads them, so no one splits strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# --- kinds: the lifecycle's sections, in order -------------------------------------------------------
GATES = "gates"
BASELINE = "baseline"  # the monitor's probes before the first phase
PHASE = "phase"
VERIFY = "verify"
DECISION = "decision"
MONITOR = "monitor"
ROLLBACK = "rollback"  # the undo path, and within it the section of the runbook's rollback steps
# kinds that name where a step runs inside a section
GATE = "gate"  # one gate's checks, inside `gates`
UNDO = "undo"  # a started phase's undo steps, inside `rollback`
VERIFY_AFTER_ROLLBACK = "verify-after-rollback"
# room for what comes next: each plugs in as a new entry
AFTER_GO = "after-go"
FINALIZE = "finalize"
GUARD = "guard"
KILL_SWITCH = "kill-switch"  # `tminus kill-switch`: the runbook's kill_switch steps, timed against its target

NAMED = frozenset({PHASE, GATE, UNDO, AFTER_GO, FINALIZE, GUARD})  # kinds whose id carries a name

# --- statuses -----------------------------------------------------------------------------------------
PENDING = "pending"
RUNNING = "running"
OK = "ok"
FAILED = "failed"
STOPPED = "stopped"  # a stop request ended it (interrupt, rollback, abort, kill switch)
DONE_BEFORE = "done"  # finished ok in an earlier attempt of this run: skipped on resume


def section_id(kind: str, name: str = "") -> str:
    return f"{kind}:{name}" if kind in NAMED or name else kind


def parse_section(sid: str) -> tuple[str, str]:
    """`phase:deploy` -> ("phase", "deploy"); `verify` -> ("verify", "")."""
    kind, _, name = str(sid).partition(":")
    return kind, name


class Next:
    """What a section's result asks the run to do next."""

    CONTINUE = "continue"
    COMPLETE = "complete"
    BLOCK = "block"  # nothing was changed (a gate failed)
    ROLLBACK = "rollback"
    ABORT = "abort"  # end now, nothing undone
    NEEDS_OPERATOR = "needs_operator"
    NOT_FINALIZED = "not_finalized"  # the change is live, what follows it is not done: end, resumable


@dataclass
class SectionResult:
    next: str = Next.CONTINUE
    ok: bool = True
    reason: str = ""
    failures: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # added to the `section.finished` event


@dataclass(eq=False)
class Section:
    kind: str
    name: str = ""
    run: Callable[[Section], SectionResult] | None = None
    # Done already (the prior record): skipped. None: done when the prior record says it finished ok.
    done: Callable[[], bool] | None = None
    # Called right before `section.started`; returns the fields it adds to that event.
    starting: Callable[[], dict[str, Any]] | None = None
    index: int | None = None  # a phase's position in the runbook
    status: str = PENDING

    @property
    def id(self) -> str:
        return section_id(self.kind, self.name)

    @classmethod
    def parse(cls, sid: str) -> Section:
        kind, name = parse_section(sid)
        return cls(kind, name)

    def describe(self) -> dict[str, Any]:
        return {"section": self.id, "kind": self.kind, "name": self.name}


@dataclass
class Lifecycle:
    """The forward path, in order, and the undo path entered when a result or a stop says so."""

    sections: list[Section] = field(default_factory=list)
    rollback: Section | None = None

    def __iter__(self) -> Iterator[Section]:
        return iter(self.sections)

    def add(self, section: Section) -> Section:
        self.sections.append(section)
        return section

    def plug(self, section: Section, *, after: str | None = None, before: str | None = None) -> Section:
        """Insert `section` after the last (or before the first) section matching a section id or kind."""
        anchor = after if after is not None else before
        if anchor is None or (after is not None and before is not None):
            raise ValueError("plug a section either after or before an existing one")
        hits = [i for i, s in enumerate(self.sections) if anchor in (s.id, s.kind)]
        if not hits:
            raise KeyError(f"no section '{anchor}' to plug '{section.id}' next to")
        self.sections.insert(hits[-1] + 1 if after is not None else hits[0], section)
        return section

    def get(self, sid: str) -> Section | None:
        if self.rollback is not None and self.rollback.id == sid:
            return self.rollback
        return next((s for s in self.sections if s.id == sid), None)

    def statuses(self) -> dict[str, str]:
        out = {s.id: s.status for s in self.sections}
        if self.rollback is not None and self.rollback.status != PENDING:
            out[self.rollback.id] = self.rollback.status
        return out


__all__ = [
    "AFTER_GO", "BASELINE", "DECISION", "FINALIZE", "GATE", "GATES", "GUARD", "MONITOR", "PHASE", "ROLLBACK",
    "UNDO", "VERIFY", "VERIFY_AFTER_ROLLBACK", "Lifecycle", "Next", "Section", "SectionResult", "parse_section",
    "section_id",
]
