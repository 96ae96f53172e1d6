"""The `manual` kind with a small in-test approvals channel."""

from __future__ import annotations

from pathlib import Path

from helpers_kinds import run_step
from tminus.kinds.base import Approval


class Recorder:
    """Answers every request with a fixed decision and remembers what it was asked."""

    def __init__(self, approval: Approval):
        self.approval = approval
        self.asked: list[tuple[str, str, str | None, float | None]] = []

    def request(self, step_key: str, prompt: str, instructions: str | None, timeout: float | None) -> Approval:
        self.asked.append((step_key, prompt, instructions, timeout))
        return self.approval


STEP = {"manual": {"prompt": "DNS switched?", "instructions": "Flip the CNAME in the console."}}


def test_approved(tmp_path: Path) -> None:
    channel = Recorder(Approval(True, by="alice", how="tty", reason="done", at="2024-01-02T03:04:05Z"))
    obs = run_step(STEP, tmp_path, approvals=channel, timeout=30, key="phase:cutover/1")
    assert obs.failures == [] and obs.error is None
    assert channel.asked == [("phase:cutover/1", "DNS switched?", "Flip the CNAME in the console.", 30)]
    assert obs.evidence["by"] == "alice" and obs.evidence["how"] == "tty"
    assert obs.evidence["at"] == "2024-01-02T03:04:05Z" and obs.evidence["reason"] == "done"
    assert obs.values["approved"] is True


def test_refused(tmp_path: Path) -> None:
    channel = Recorder(Approval(False, by="bob", how="approve-command", reason="CNAME not propagated"))
    obs = run_step(STEP, tmp_path, approvals=channel)
    assert obs.failures == ["not confirmed by bob (approve-command): CNAME not propagated"]
    assert obs.values["approved"] is False


def test_silence_until_timeout(tmp_path: Path) -> None:
    channel = Recorder(Approval(False, by="nobody", how="timeout"))
    obs = run_step({"manual": "Ready?"}, tmp_path, approvals=channel)
    assert obs.failures == ["not confirmed by nobody (timeout): no reason given"]


def test_no_channel_is_an_error(tmp_path: Path) -> None:
    obs = run_step(STEP, tmp_path)
    assert obs.error is not None and "tminus approve" in obs.error and "--yes" in obs.error
