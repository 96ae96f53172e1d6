"""Facts about processes on this host: liveness (the ledger's leases, the migration lock, `status`) and
who runs this one (the operator recorded by runs, approvals and migrations)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 checks without signalling)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists but belongs to another user
        return True
    return True


def default_operator() -> str:
    """Who runs this process, for the record: $TMINUS_OPERATOR, else the login name."""
    import getpass

    try:
        return os.environ.get("TMINUS_OPERATOR") or getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"
