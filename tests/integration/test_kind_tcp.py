"""The `tcp` kind against real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers_kinds import run_step


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def test_open_port(listening: int, tmp_path: Path) -> None:
    obs = run_step({"tcp": {"port": listening}}, tmp_path)
    assert obs.failures == [] and obs.error is None
    assert obs.values["open"] is True and obs.values["duration"] >= 0
    assert obs.evidence["address"] == f"127.0.0.1:{listening}"
    obs = run_step({"tcp": {"port": listening, "state": "closed"}}, tmp_path)
    assert obs.failures == [f"127.0.0.1:{listening} should be closed but accepted a connection"]


def test_closed_port(closed_port: int, tmp_path: Path) -> None:
    obs = run_step({"tcp": {"port": closed_port, "state": "closed"}}, tmp_path)
    assert obs.failures == [] and obs.values["open"] is False
    obs = run_step({"tcp": {"port": closed_port}}, tmp_path, timeout=2)
    assert obs.error is None
    assert len(obs.failures) == 1 and obs.failures[0].startswith(f"127.0.0.1:{closed_port} is not open")
    assert "refused" in obs.failures[0].lower()


def test_unknown_host_is_an_error(tmp_path: Path) -> None:
    obs = run_step({"tcp": {"host": "no-such-host.invalid", "port": 80}}, tmp_path, timeout=5)
    assert obs.error is not None and "no-such-host.invalid" in obs.error
