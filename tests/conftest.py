"""Shared fixtures: real services on loopback, never mocks."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

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
def short_path() -> Iterator[Path]:
    """A fresh folder with a short path, removed afterwards. A unix socket's path holds at most 107
    bytes, and under pytest-xdist tmp_path (/tmp/pytest-of-root/pytest-N/popen-gwK/<test name>0/) leaves
    too few for a copy of an example whose nginx puts a socket beside its include (blue-green)."""
    folder = Path(tempfile.mkdtemp(prefix="tm-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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


@pytest.fixture(scope="session", autouse=True)
def _not_a_github_actions_step() -> Iterator[None]:
    """Under GitHub Actions (GITHUB_ACTIONS=true) tminus adds workflow commands (`::error ...`) to
    its output; tests that want them set it themselves (tests/e2e/test_ci_output.py), the others
    read the output a person sees, wherever the suite runs."""
    saved = {k: os.environ.pop(k) for k in ("GITHUB_ACTIONS", "GITHUB_WORKSPACE", "TMINUS_HEARTBEAT")
             if k in os.environ}
    yield
    os.environ.update(saved)


# --- the crash sweep (tests/e2e/test_crash_sweep.py): its size, and its counts in the summary ---

_SWEEP: dict = {"size": "default", "families": {}}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--crash-sweep", choices=["default", "full"], default=None,
                     help="size of the crash sweep (default: $TMINUS_SWEEP, else 'default', a CI subset)")


def pytest_configure(config: pytest.Config) -> None:
    _SWEEP["size"] = config.getoption("--crash-sweep") or os.environ.get("TMINUS_SWEEP") or "default"


def _slow_first(item: pytest.Item) -> int:
    """The order tests are handed to pytest-xdist workers: the longest first (the crash sweep, then the
    CLI-driven e2e tests, then integration), unit tests last to fill the gaps, so no worker is left
    with one long test at the end while the others idle."""
    if item.get_closest_marker("crash_sweep"):
        return 0
    path = item.path.as_posix()
    return 1 if "/tests/e2e/" in path else 2 if "/tests/integration/" in path else 3


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    budget = 7200 if _SWEEP["size"] == "full" else 600
    for item in items:
        if item.get_closest_marker("crash_sweep"):
            item.add_marker(pytest.mark.timeout(budget))
    if hasattr(config, "workerinput"):  # every worker sorts the same way (a stable sort): same collection
        items.sort(key=_slow_first)


@pytest.fixture
def crash_sweep() -> dict:
    return _SWEEP


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Gather each crash-sweep family's counts from its test's report: in this process when tests run
    here, in the pytest-xdist controller when they run in workers (a report carries user_properties)."""
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "crash_sweep":  # a family's shards add up
            shard = dict(value)
            family = _SWEEP["families"].setdefault(shard.pop("family"), {
                "trials": 0, "violations": [], "operator_chose": 0, "seconds": 0.0, "undo_rerun": 0})
            for key, count in shard.items():
                family[key] = family[key] + count
            family["seconds"] = round(family["seconds"], 1)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the controller prints and writes it
        return
    families = _SWEEP["families"]
    if not families:
        return
    trials = sum(f["trials"] for f in families.values())
    violations = sum(len(f["violations"]) for f in families.values())
    seconds = sum(f["seconds"] for f in families.values())
    terminalreporter.write_sep("-", "crash sweep")
    for name, f in families.items():
        terminalreporter.write_line(f"  {name}: {f['trials']} trials, {len(f['violations'])} violations, "
                                    f"an operator choice in {f['operator_chose']}, an undo step run again in "
                                    f"{f['undo_rerun']}, {f['seconds']}s")
    terminalreporter.write_line(f"crash sweep ({_SWEEP['size']}): {trials} trials, {violations} violations, "
                                f"{seconds:.0f}s")
    if path := os.environ.get("TMINUS_SWEEP_REPORT"):
        import json
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"size": _SWEEP["size"], "trials": trials, "violations": violations,
                       "families": families}, out, indent=2)
