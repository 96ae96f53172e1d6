"""The rehearsal's own record: a run of kind `rehearsal` in the ledger, unfenced (it changes nothing
itself; each cycle is a normal run that holds the runbook's lease), with these events:

- `run.started` (action `rehearsal`), then `rehearsal.started`: the plan (see `open`'s `plan`);
- one `rehearsal.cycle` per cycle, written when the cycle is measured (see `cycle`);
- `run.finished` with status `completed` (every cycle passed) or `failed`, and the rehearse exit code.

Each cycle's run records `rehearsal: {id, cycle, fault, at}` in its own `run.started`, so the runs and
the record point at each other. Readers go through the projection (RunView.rehearsal).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from tminus import events as ev
from tminus.events import Event
from tminus.ledger.interfaces import Ledger, RunWriter
from tminus.runbook.document import RunbookDocument

KIND = "rehearsal"  # the ledger's run kind of a rehearsal record
PASSED, FAILED = "completed", "failed"  # the record's statuses


class RehearsalRecord:
    """Creates the record and writes its events; `run_id` is the rehearsal id."""

    def __init__(self, ledger: Ledger, doc: RunbookDocument, *, run_id: str, environment: str,
                 operator: str) -> None:
        self.ledger, self.doc, self.run_id = ledger, doc, run_id
        self.environment, self.operator = environment, operator
        self._writer: RunWriter | None = None

    def open(self, plan: dict[str, Any]) -> None:
        """Create the run and write its start and its plan. `plan` is `rehearsal.started`'s payload:
        environment, content_hash, procedure_hashes {env: hash}, options {at, fault, roll_forward},
        cycles [{index, at, phase_index, fault, rehearsed_as, budget}], not_rehearsed [{phase, why}],
        point_of_no_return, fingerprints [{name, url (masked), tables, source}], all_phases."""
        doc = self.doc
        self.ledger.create_run(
            run_id=self.run_id, runbook_name=doc.runbook.name, runbook_path=str(doc.path.resolve()),
            content_hash=doc.content_hash, runbook_text=doc.text, environment=self.environment,
            operator=self.operator, host=socket.gethostname(), pid=os.getpid(), kind=KIND)
        self._writer = self.ledger.open_writer(self.run_id)
        self._emit(ev.RUN_STARTED, runbook=doc.runbook.name, path=str(doc.path), environment=self.environment,
                   operator=self.operator, host=socket.gethostname(), pid=os.getpid(),
                   content_hash=doc.content_hash, action=KIND)
        self._writer.set_status("running")
        self._emit(ev.REHEARSAL_STARTED, **{"rehearsal": self.run_id, "runbook": doc.runbook.name,
                                             "environment": self.environment, "content_hash": doc.content_hash,
                                             **plan})

    def cycle(self, figures: dict[str, Any]) -> None:
        """One cycle measured: index, at, phase_index, fault, rehearsed_as, run_id, status, exit_code,
        ok, problems, reached_s, fault_at, rto_s, verify_s, budget_s, within_budget, kill_switch,
        fingerprints {equal, differences, expected, before, after, errors}, undo_failed,
        undo_missing, drills, fingerprint_s, run_s."""
        self._emit(ev.REHEARSAL_CYCLE, **figures)

    def finish(self, ok: bool, exit_code: int, reason: str) -> None:
        assert self._writer is not None, "open() first"
        status = PASSED if ok else FAILED
        event = Event(ev.RUN_FINISHED, self.run_id, {"status": status, "exit_code": exit_code, "reason": reason})
        self._writer.finish(status, exit_code, reason, event)

    def _emit(self, type_: str, **data: Any) -> None:
        assert self._writer is not None, "open() first"
        self._writer.append(Event(type_, self.run_id, data))


__all__ = ["FAILED", "KIND", "PASSED", "RehearsalRecord"]
