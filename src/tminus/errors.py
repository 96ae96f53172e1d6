"""Typed exceptions. Every error a user can cause says where, what was expected and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tminus.ledger.records import LeaseRecord


@dataclass(frozen=True)
class Location:
    """A position in a runbook file (1-based line and column)."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


@dataclass
class Problem:
    """One validation problem: where, what is wrong, and a hint to fix it."""

    message: str
    location: Location | None = None
    hint: str | None = None
    path: str | None = None  # dotted path inside the runbook, e.g. phases[0].steps[2].run

    def render(self) -> str:
        where = f"{self.location}: " if self.location else ""
        text = f"{where}{self.message}"
        if self.path:
            text += f" (at {self.path})"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class TminusError(Exception):
    """Base class of every error tminus raises on purpose."""


class RunbookError(TminusError):
    """The runbook is invalid. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(p.render() for p in problems))


class TemplateError(TminusError):
    """A template could not be rendered (undefined name, syntax error)."""


class ExpectationSyntaxError(TminusError):
    """An expectation string does not follow the grammar."""

    def __init__(self, message: str, text: str, column: int):
        self.text = text
        self.column = column  # 0-based offset inside the expectation text
        super().__init__(f"{message}\n    {text}\n    {' ' * column}^")


class LockHeld(TminusError):
    """Another run holds the lease for this runbook and environment.

    `holder` is the tminus.ledger.LeaseRecord found; `stale` is True when that holder is gone
    (dead process or no heartbeat), which still needs `tminus unlock`, never a silent takeover.
    """

    def __init__(self, message: str, *, holder: LeaseRecord | None = None, stale: bool = False):
        self.holder = holder
        self.stale = stale
        super().__init__(message)


class LedgerError(TminusError):
    """The ledger cannot be opened, is of an unknown schema version, or failed verification."""


class LedgerMissing(LedgerError):
    """A reader found no ledger at the URL (no file, or no tminus tables): nothing recorded there yet."""

    def __init__(self, message: str, *, url: str):
        self.url = url  # masked
        super().__init__(message)


class LeaseLost(LedgerError):
    """A run writer's lease is gone (broken by `tminus unlock`, or taken by another run): the write
    was refused and nothing was recorded. The run stops; `tminus resume` continues it."""

    def __init__(self, message: str, *, key: str, generation: int, holder: LeaseRecord | None = None):
        self.key = key
        self.generation = generation
        self.holder = holder  # who holds the lease now, if anyone
        super().__init__(message)


class ApprovalTaken(LedgerError):
    """The approval was already consumed, or the request already answered by another approval."""


class ResumeRefused(TminusError):
    """A run cannot be resumed as asked (changed runbook, finished run, missing decision)."""
