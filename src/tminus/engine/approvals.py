"""The operator channel: how a manual step or a manual go/no-go gets its answer.

On a TTY the operator is asked; at the same time (and always when not on a TTY) an approval
recorded in the ledger by `tminus approve RUN_ID` from another terminal answers. `--yes`
approves everything, `--no-input` refuses at once. Who answered, how and when is recorded.

An approval answers one request: the one pending when it was given (its `for_seq`, the seq of that
`approval.requested`). Its `approval.given` is recorded in the transaction that marks the approval
consumed by that request (see engine/recorder.py), so no approval is used twice. An approval given
when nothing was asked, or for an earlier request (a leftover), answers nothing: it stays in the
ledger, unused. Of several answers given for one request the first (the `lead`) is taken; a later
one only when the run refuses the first (a self-approval of a second-person request).

Who answered is two things: `by`, the operator name given (`--operator`, $TMINUS_OPERATOR: a claim),
and `identity`, the OS user@host of the process that answered (ledger.records.local_identity()).
A request that needs a second person is answered only by another identity: one account passing
another `--operator` is the same person.
"""

from __future__ import annotations

import select
import sys
import time
from collections.abc import Callable
from typing import Any

from tminus import events as ev
from tminus.errors import ApprovalTaken
from tminus.events import utcnow
from tminus.kinds.base import Approval
from tminus.ledger.interfaces import LedgerReader
from tminus.ledger.records import ApprovalRecord, local_identity

POLL_SECONDS = 0.2


class OperatorChannel:
    def __init__(
        self,
        *,
        ledger: LedgerReader,
        run_id: str,
        operator: str,
        emit: Callable[..., None],
        stop: Any,
        yes: bool = False,
        no_input: bool = False,
        interactive: bool = False,
        pause_display: Callable[[], Any] | None = None,
        identity: str | None = None,
    ) -> None:
        self.ledger = ledger
        self.identity = identity or local_identity()  # of this process: who runs `tminus run`/`resume`
        self.run_id = run_id
        self.operator = operator
        self.emit = emit
        self.stop = stop  # the run's stop channel: a stop ends the wait (a refusal)
        self.yes = yes
        self.no_input = no_input
        self.interactive = interactive
        self.pause_display = pause_display

    def request(
        self,
        step_key: str,
        prompt: str,
        instructions: str | None,
        timeout: float | None,
        *,
        second_person_of: str | None = None,
    ) -> Approval:
        """Ask and wait. `second_person_of`: the operator who may NOT answer (no self-approval): neither
        under that name nor as this process's identity, whatever name they give."""
        how_to = f"tminus approve {self.run_id} --step {step_key}"
        self.emit(ev.APPROVAL_REQUESTED, step_key, prompt=prompt, instructions=instructions,
                  timeout=timeout, approve_with=how_to, refuse_with=f"{how_to} --no-go --reason '...'",
                  second_person=second_person_of is not None, operator=self.operator, identity=self.identity)
        asked = self._request_seq(step_key)
        taken: set[int] = set()  # approvals another consumer took first: wait for another answer
        while True:
            approval, record = self._obtain(step_key, asked, prompt, instructions, timeout, taken, second_person_of)
            record_id = None if record is None else record.id
            # The identity behind the answer: the approver's for `tminus approve`, else this process's
            # (the terminal, --yes, --no-input, an interruption); a timeout is nobody's.
            identity = record.identity if record is not None else None if approval.how == "timeout" else self.identity
            try:
                self.emit(ev.APPROVAL_GIVEN, step_key, approved=approval.approved, by=approval.by,
                          how=approval.how, reason=approval.reason, at=approval.at, approval_id=record_id,
                          identity=identity)
            except ApprovalTaken:
                if record_id is None:
                    raise
                taken.add(record_id)
                continue
            return approval

    def _request_seq(self, step_key: str) -> int | None:
        """The seq of the approval.requested just emitted for `step_key` (None: it reached no ledger)."""
        asked = [e.seq for e in self.ledger.events(self.run_id) if e.type == ev.APPROVAL_REQUESTED
                 and e.step_key == step_key]
        return asked[-1] if asked else None

    def _obtain(
        self,
        step_key: str,
        asked: int | None,
        prompt: str,
        instructions: str | None,
        timeout: float | None,
        taken: set[int],
        second_person_of: str | None,
    ) -> tuple[Approval, ApprovalRecord | None]:
        second = second_person_of is not None
        if self.yes and not second:
            return Approval(True, self.operator, "--yes", "approved in advance with --yes", utcnow()), None
        if self.no_input:
            return Approval(False, self.operator, "no-input",
                            "--no-input: nobody can confirm; approve it with --yes or run interactively",
                            utcnow()), None
        deadline = None if timeout is None else time.monotonic() + timeout
        interactive = self.interactive and not second  # the terminal is the operator's own
        if interactive:
            self._show_prompt(prompt, instructions, step_key)
        elif second:
            self._say_second_person(prompt, step_key, second_person_of or "")
        ignored: set[int] = set()
        while True:
            for a in self.ledger.approvals(self.run_id, step_key):
                if a.request_seq is not None or a.id in taken or a.id in ignored:  # used by a request
                    continue
                if asked is None or a.for_seq != asked:  # given for another request, or when none was asked
                    continue
                refused = self._not_a_second_person(a, second_person_of or "") if second else None
                if refused:
                    ignored.add(a.id)
                    self.emit(ev.NOTE, step_key, action="self-approval-refused", by=a.by, identity=a.identity,
                              approval_id=a.id, message=refused)
                    continue
                return Approval(a.approved, a.by, "approve-command", a.reason, a.at), a
            if interactive:
                answer = _read_line(POLL_SECONDS)
                if answer is not None:
                    decided = self._interpret(answer)
                    if decided is not None:
                        return decided, None
                    print("Please answer yes or no: ", end="", flush=True)
            elif self.stop.wait(POLL_SECONDS):
                return Approval(False, self.operator, "interrupted", "the run was interrupted", utcnow()), None
            if self.stop.is_set():
                return Approval(False, self.operator, "interrupted", "the run was interrupted", utcnow()), None
            if deadline is not None and time.monotonic() > deadline:
                return Approval(False, "nobody", "timeout",
                                f"no answer within {timeout:g}s: silence counts as no", utcnow()), None

    def _not_a_second_person(self, a: ApprovalRecord, operator: str) -> str | None:
        """Why approval `a` cannot answer a request that needs a second person, or None."""
        if a.identity is None:
            return (f"an answer as {a.by} carries no identity (an older tminus, or written outside it): a second "
                    f"person is a different OS user, so it cannot answer; {a.by} runs `tminus approve` again")
        if a.identity == self.identity:
            return (f"{a.identity} runs this run and cannot answer its go/no-go, also not as {a.by}: "
                    "a second person (another OS user) must approve")
        if a.by == operator:
            return f"{a.by} started this run and cannot answer its go/no-go: a second person must approve"
        return None

    def _show_prompt(self, prompt: str, instructions: str | None, step_key: str) -> None:
        if self.pause_display:
            self.pause_display()
        print(f"\n>>> {prompt}", flush=True)
        if instructions:
            print(instructions, flush=True)
        print(f"(or from another terminal: tminus approve {self.run_id} --step {step_key})")
        print("Confirm? [yes/no]: ", end="", flush=True)

    def _say_second_person(self, prompt: str, step_key: str, operator: str) -> None:
        if self.pause_display:
            self.pause_display()
        # On stderr with the other messages: stdout may be `--json`'s.
        print(f"\n>>> {prompt}\nThis decision needs a second person: someone other than {operator} "
              f"({self.identity}),\nlogged in as themselves, runs\n"
              f"    tminus approve {self.run_id} --step {step_key} [--no-go --reason '...']",
              file=sys.stderr, flush=True)

    def _interpret(self, answer: str) -> Approval | None:
        word = answer.strip().lower()
        if word in ("y", "yes"):
            return Approval(True, self.operator, "tty", None, utcnow())
        if word in ("n", "no"):
            return Approval(False, self.operator, "tty", "refused at the prompt", utcnow())
        return None


def _read_line(wait: float) -> str | None:
    """A line from stdin if one arrives within `wait` seconds (POSIX select on a TTY)."""
    ready, _, _ = select.select([sys.stdin], [], [], wait)
    if not ready:
        return None
    line = sys.stdin.readline()
    return line if line else "no"  # EOF: nobody is there to say yes
