"""`tminus db lint` in a real subprocess: output, JSON and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lint"


def lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tminus", "db", "lint", *args], capture_output=True, text=True, timeout=60
    )


def test_findings_grouped_by_file_exit_1() -> None:
    proc = lint(str(FIXTURES))
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "0002_risky.sql\n  line 3: [high] add-column-not-null-no-default:" in out
    assert out.count("0002_risky.sql\n") == 1  # one heading per file
    assert "    safer: expand/contract" in out
    assert "0004_safe.sql" not in out and ".down.sql" not in out and ".verify.sql" not in out
    assert "17 finding(s) in 5 file(s)" in out


def test_json_output() -> None:
    proc = lint(str(FIXTURES), "--json", "--ignore", "drop-table", "--ignore", "missing-lock-timeout")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["count"] == len(data["findings"]) == 13
    assert {"file": "0002_risky.sql", "line": 7, "rule": "drop-column"}.items() <= data["findings"][3].items()
    assert all(f["rule"] not in ("drop-table", "missing-lock-timeout") for f in data["findings"])


def test_clean_directory_exit_0(tmp_path: Path) -> None:
    (tmp_path / "0001_init.sql").write_text("CREATE TABLE t (id int);\n")
    proc = lint(str(tmp_path))
    assert proc.returncode == 0 and "no risky statements" in proc.stdout
    proc = lint(str(tmp_path), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["count"] == 0


def test_missing_directory_exit_2(tmp_path: Path) -> None:
    proc = lint(str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and proc.stdout == ""


def test_unknown_rule_exit_2() -> None:
    proc = lint(str(FIXTURES), "--ignore", "drop-colum")
    assert proc.returncode == 2 and "unknown lint rule drop-colum" in proc.stderr
