"""Fixtures for the ledger tests: the same test on a real SQLite file and on the real PostgreSQL."""

from __future__ import annotations

import pytest


@pytest.fixture
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unkeyed ledger unless a test sets TMINUS_LEDGER_KEY itself."""
    monkeypatch.delenv("TMINUS_LEDGER_KEY", raising=False)


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, _no_key: None) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
