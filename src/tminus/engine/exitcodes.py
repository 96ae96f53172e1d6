"""Exit codes: distinct per outcome so scripts and CI can branch on them. Documented in docs/cli.md."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    COMPLETED = 0  # every gate, phase, verify check and the decision passed
    FAILED = 1  # tminus itself could not proceed (ledger unreachable, a read command found a problem)
    USAGE = 2  # wrong command-line usage
    BLOCKED = 10  # a gate failed: nothing was changed
    ROLLED_BACK = 11  # a step, a verify check or the decision failed; the rollback succeeded
    ROLLBACK_FAILED = 12  # the rollback itself failed or the service was not confirmed back
    ABORTED = 13  # a step with on_failure: abort failed; nothing was undone
    LOCKED = 14  # another run holds the lease for this runbook and environment
    NEEDS_OPERATOR = 15  # a decision only an operator can make is missing (e.g. under --no-input)
    NOT_FINALIZED = 16  # the cutover is live (decision go) but an after_go or finalize step failed: resume finishes it
    KILL_SWITCH_LATE = 17  # `tminus kill-switch`: every step passed, but it took longer than its target
    INVALID_RUNBOOK = 78  # EX_CONFIG: the runbook does not validate
    INTERRUPTED = 130  # SIGINT/SIGTERM: the run stopped and can be resumed


# run status stored in the ledger -> exit code
STATUS_EXIT: dict[str, Exit] = {
    "completed": Exit.COMPLETED,
    "not_finalized": Exit.NOT_FINALIZED,
    "completed_late": Exit.KILL_SWITCH_LATE,
    "blocked": Exit.BLOCKED,
    "rolled_back": Exit.ROLLED_BACK,
    "rollback_failed": Exit.ROLLBACK_FAILED,
    "aborted": Exit.ABORTED,
    "interrupted": Exit.INTERRUPTED,
    "needs_operator": Exit.NEEDS_OPERATOR,
    "failed": Exit.FAILED,
}
