"""What the guard tests share: a real TCP listener on loopback the test can take down mid-phase (the
bind a restart must keep), a runbook around it, and the run's events read from its ledger."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tminus.ledger import open_ledger


class _Quiet(socketserver.BaseRequestHandler):
    def handle(self) -> None:  # accept and close: a probe only needs the bind
        pass


class Listener:
    def __init__(self) -> None:
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Quiet)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.up = True

    def stop(self) -> None:
        """The bind is lost: from now on every connection is refused."""
        if self.up:
            self.up = False
            self.server.shutdown()
            self.server.server_close()


@contextmanager
def listening() -> Iterator[Listener]:
    listener = Listener()
    try:
        yield listener
    finally:
        listener.stop()


# The restart: writes `started`, then waits for the test to write `release` (no timing guesswork).
RESTART = "touch started; while [ ! -f release ]; do sleep 0.05; done"


def guarded(port: int, *, rule: str = "", step: str = RESTART, settle: str = "", extra: str = "",
            probe: str = "") -> str:
    probe = probe or f"tcp: {{port: {port}}}"
    rule = rule or "when: open == false\n          consecutive: 2"
    return f"""
name: bind
{extra}
phases:
  - name: Restart
    guard:
      interval: 100ms
      {settle}
      probes:
        - name: bind
          {probe}
      rules:
        - name: bind stable
          {rule}
    steps:
      - name: restart
        run: "{step}"
    undo:
      - name: put back
        run: "echo undone >> undone"
"""


def events(tmp: Path, run_id: str, type_: str | None = None) -> list[Any]:
    with open_ledger(f"sqlite:///{tmp / '.tminus' / 'ledger.db'}") as ledger:
        found = ledger.events(run_id)
    return [e for e in found if type_ is None or e.type == type_]
