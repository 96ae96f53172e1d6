"""The child process of a rehearsal's kill cycle: `python -m tminus.engine.rehearsal.child`, its spec
as JSON on stdin (faults.run_killed writes it; this is not a user-visible command).

It runs the runbook through a normal `Session.run` with the run id it was given, under `KillAfter`,
which SIGKILLs this process right after the phase passed. On stdout, one JSON object a line:
`{"killing": EPOCH}` just before the kill; or, when the run ended by itself (blocked gates, a failing
step rolled back, interrupted), `{"status", "exit_code", "reason"}`, and the process exits with the
run's exit code; or `{"error": TEXT}` with the exit code of `tminus run` for it (2: a wrong spec).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from tminus.engine.exitcodes import Exit

SPEC_KEYS = ("runbook", "environment", "ledger", "phase_index", "phase", "overrides", "operator", "yes",
             "tags", "run_id")


def say(**data: Any) -> None:
    print(json.dumps(data), flush=True)  # a write to the pipe: done before a SIGKILL that follows it


def refuse(text: str, code: Exit) -> int:
    say(error=text, exit_code=int(code))
    return int(code)


def main(stdin: Any = None) -> int:
    # A SIGTERM (the parent's timeout) before the run's own handler is in place (signals_stop, once
    # the run is recorded): remembered, and the run is not started.
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: terminated.set())
    try:
        spec = json.load(stdin or sys.stdin)
    except ValueError as exc:
        return refuse(f"the spec on stdin is not JSON: {exc}", Exit.USAGE)
    missing = [k for k in SPEC_KEYS if not isinstance(spec, dict) or k not in spec]
    if missing:
        return refuse(f"the spec lacks {', '.join(missing)}", Exit.USAGE)
    return run(spec, terminated)


def run(spec: dict[str, Any], terminated: threading.Event) -> int:
    from tminus.engine.context import Options
    from tminus.engine.rehearsal.faults import KillAfter, phase_problem
    from tminus.engine.session import Session
    from tminus.errors import LedgerError, LockHeld, ResumeRefused, RunbookError, TminusError
    from tminus.ledger import open_ledger
    from tminus.runbook.loader import load_runbook

    try:
        doc = load_runbook(Path(spec["runbook"]))
    except RunbookError as exc:
        return refuse(str(exc), Exit.INVALID_RUNBOOK)
    index = spec["phase_index"]
    problem = phase_problem([p.name for p in doc.runbook.phases], index, spec["phase"])
    if problem:
        return refuse(problem, Exit.USAGE)
    opts = Options(environment=spec["environment"], overrides=dict(spec["overrides"]), operator=spec["operator"],
                   yes=bool(spec["yes"]), no_input=True)  # nobody answers a prompt in the child
    try:
        with open_ledger(spec["ledger"]) as ledger:
            session = Session(doc, ledger, opts, policy=KillAfter(index, spec["phase"],
                                                                   announce=lambda at: say(killing=at)))
            session.tags = dict(spec["tags"])
            if terminated.is_set():
                return refuse("stopped (SIGTERM) before the run began: nothing ran", Exit.INTERRUPTED)
            result = session.run(run_id=spec["run_id"])
    except RunbookError as exc:  # a templated duration that does not render
        return refuse(str(exc), Exit.INVALID_RUNBOOK)
    except LockHeld as exc:
        return refuse(str(exc), Exit.LOCKED)
    except ResumeRefused as exc:
        return refuse(str(exc), Exit.NEEDS_OPERATOR)
    except (LedgerError, TminusError) as exc:
        return refuse(str(exc), Exit.FAILED)
    say(status=result.status, exit_code=int(result.exit), reason=result.reason)
    return int(result.exit)


if __name__ == "__main__":
    sys.exit(main())
