"""One projection of a run's events: `project(events) -> RunView`, or `RunView().apply(event)` one
event at a time for a reader that tails the ledger. Every reader of a run (resume, status, show,
approve, why, replay) reads this view; none of them compares event types or parses section ids.

Never imports the engine, the CLI, the reports or the kinds: only tminus.events and tminus.durations.
"""

from tminus.projection.fact import Fact
from tminus.projection.model import (
    FAILED,
    INTERRUPTED,
    LOCAL,
    OK,
    RUNNING,
    SKIPPED,
    Answer,
    Approval,
    Decision,
    Effect,
    Execution,
    GuardWatch,
    MonitorAction,
    MonitorEnd,
    MonitorSample,
    MonitorStage,
    MonitorTransition,
    MonitorView,
    Note,
    Notification,
    PlannedStep,
    PolicyUse,
    RollbackEnd,
    RollbackPass,
    RollbackView,
    RunMark,
    Section,
    Stop,
    split_section,
)
from tminus.projection.upcast import UPCASTERS, upcast
from tminus.projection.view import RunView, project

__all__ = [
    "FAILED", "INTERRUPTED", "LOCAL", "OK", "RUNNING", "SKIPPED", "UPCASTERS", "Answer", "Approval",
    "Decision", "Effect", "Execution", "Fact", "GuardWatch", "MonitorAction", "MonitorEnd", "MonitorSample",
    "MonitorStage",
    "MonitorTransition", "MonitorView", "Note", "Notification", "PlannedStep", "PolicyUse", "RollbackEnd",
    "RollbackPass", "RollbackView", "RunMark", "RunView", "Section", "Stop", "project", "split_section", "upcast",
]
