"""Ledger behaviour that is about opening it: default location, light import, keys, bad URLs (SQLite)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tminus.errors import LedgerError
from tminus.events import Event
from tminus.ledger import DEFAULT_URL, Ledger, open_ledger


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMINUS_LEDGER_KEY", raising=False)
    monkeypatch.delenv("TMINUS_LEDGER", raising=False)


def new_run(ledger: Ledger, run_id: str = "r1") -> None:
    ledger.create_run(run_id=run_id, runbook_name="deploy", runbook_path="/rb.yaml", content_hash="c",
                      runbook_text="t", environment="prod", operator="alice", host="h", pid=1)


def test_import_does_not_load_sqlalchemy() -> None:
    code = "import sys, tminus.ledger; from tminus.ledger import RunRecord; print('sqlalchemy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"


def test_opening_appending_and_verifying_never_load_sqlalchemy_nor_psycopg(tmp_path: Path) -> None:
    """The ledger runs on sqlite3 and psycopg directly: a run's whole ledger path (open, lease, fenced
    append, a reader's verify) loads neither SQLAlchemy nor, for SQLite, the PostgreSQL driver."""
    code = f"""if True:
        import os, sys
        from tminus.events import Event
        from tminus.ledger import open_ledger, open_reader
        url = "sqlite:///{tmp_path / 'ledger.db'}"
        with open_ledger(url) as ledger:
            ledger.create_run(run_id="r1", runbook_name="d", runbook_path="/rb.yaml", content_hash="c",
                              runbook_text="t", environment="prod", operator="alice", host="h", pid=os.getpid())
            lease = ledger.acquire_lease("d@prod", run_id="r1", operator="alice", host="h", pid=os.getpid())
            ledger.open_writer("r1", fence=lease.fence).append_many([Event("note", "r1", {{"i": 1}})])
            lease.release()
        with open_reader(url) as reader:
            assert reader.verify() == []
        print(sorted({{m.split(".")[0] for m in sys.modules}} & {{"sqlalchemy", "psycopg"}}))
    """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_ledger_package_imports_no_sqlalchemy() -> None:
    ledger = Path(__file__).resolve().parents[2] / "src" / "tminus" / "ledger"
    imports = re.compile(r"^\s*(import|from)\s+sqlalchemy\b", re.MULTILINE)
    offenders = [p.name for p in ledger.rglob("*.py") if imports.search(p.read_text())]
    assert offenders == []


def test_default_ledger_lives_in_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_ledger() as ledger:
        assert ledger.url == DEFAULT_URL
        new_run(ledger)
    assert (tmp_path / ".tminus" / "ledger.db").is_file()


def test_environment_variable_chooses_the_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "deep" / "dir" / "l.db"
    monkeypatch.setenv("TMINUS_LEDGER", f"sqlite:///{target}")
    with open_ledger() as ledger:
        new_run(ledger)
    assert target.is_file()


def test_keyed_ledger(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMINUS_LEDGER_KEY", "s3cret")
    with open_ledger(sqlite_url) as keyed:
        new_run(keyed)
        keyed.append(Event("run.started", "r1", {}))
        assert keyed.verify() == []

    monkeypatch.delenv("TMINUS_LEDGER_KEY")
    with open_ledger(sqlite_url) as unkeyed:
        assert len(unkeyed.events("r1")) == 1  # reading needs no key
        with pytest.raises(LedgerError, match=r"is keyed.*set TMINUS_LEDGER_KEY"):
            unkeyed.append(Event("note", "r1", {}))
        with pytest.raises(LedgerError, match="is keyed"):
            unkeyed.verify()

    with open_ledger(sqlite_url, key="wrong") as wrong, pytest.raises(LedgerError, match="does not match"):
        wrong.verify()


def test_key_on_an_unkeyed_ledger_with_runs_is_refused(sqlite_url: str) -> None:
    with open_ledger(sqlite_url) as plain:
        new_run(plain)
    with open_ledger(sqlite_url, key="late") as keyed, pytest.raises(LedgerError, match="created without a key"):
        new_run(keyed, "r2")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL"),
        ("mysql://u:pw@localhost/db", "unsupported database 'mysql'"),
    ],
)
def test_bad_urls_are_explained(url: str, message: str) -> None:
    with pytest.raises(LedgerError, match=message) as caught:
        open_ledger(url)
    assert "pw" not in str(caught.value)


def test_unwritable_location_is_a_ledger_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LedgerError, match="cannot create the folder"):
        open_ledger(f"sqlite:///{blocker}/sub/ledger.db")


def test_events_written_together_are_all_kept_and_stream_back_in_order(sqlite_url: str) -> None:
    ledger = open_ledger(sqlite_url)
    new_run(ledger)
    writer = ledger.open_writer("r1")
    records = writer.append_many([Event("note", "r1", data={"n": n}) for n in range(7)])
    assert [r.seq for r in records] == sorted(r.seq for r in records) and len(records) == 7
    streamed = list(ledger.iter_events("r1", chunk=3))  # three pages of 3, 3 and the rest
    assert [e.seq for e in streamed] == [e.seq for e in ledger.events("r1")]
    assert [e.data.get("n") for e in streamed if e.type == "note"] == list(range(7))
    assert ledger.verify("r1") == []
    assert writer.append_many([]) == []
