"""Shared fixtures: real services on loopback, never mocks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_ADMIN_DSN = os.environ.get("TMINUS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_admin():
    import psycopg

    return psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (SQLAlchemy URL), dropped afterwards."""
    name = f"tminus_t_{uuid.uuid4().hex[:12]}"
    try:
        admin = _pg_admin()
    except Exception as exc:  # the local server is part of the test environment: fail loudly
        pytest.fail(f"PostgreSQL at {PG_ADMIN_DSN} is not reachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"postgresql+psycopg://{dsn.split('://', 1)[1]}/{name}"
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(scope="session", autouse=True)
def _no_project_above_the_tests(tmp_path_factory: pytest.TempPathFactory) -> None:
    """tminus finds a `tminus.toml` or `.tminus/ledger.db` upward from where it runs (like git finds
    .git): one in a folder above the tests' temporary folders would quietly join every test's runs
    into one ledger. Refuse to start rather than pass or fail for that reason."""
    base = tmp_path_factory.getbasetemp().resolve()
    for folder in (base, *base.parents):
        for name in ("tminus.toml", ".tminus/ledger.db"):
            if (folder / name).exists():
                pytest.exit(f"{folder / name} sits above the tests' temporary folder {base}: tminus would "
                            "find it from every test; move it away", returncode=3)
