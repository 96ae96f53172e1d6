"""`tminus report`, `run --report`, `gate --junit` and the `steps` of `run --json`, through the real
command over real runs (tests/report_runs.py). Runs are `tminus` subprocesses, made once per module;
`tminus report` itself is invoked in this process (`local`) to spare a second of start-up a call.

The HTML and JUnit renderers are tested on their own; here a report is Markdown or JSON."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from markdown_it import MarkdownIt
from tests import report_runs
from tests.helpers import tminus, write_runbook
from tests.rehearsal_records import fabricate, good_cycle
from tests.report_runs import CANARY, ENV, ReportRun

from tminus.ledger import open_ledger

STEP_FIELDS = ("key", "name", "kind", "section", "status", "duration", "attempts", "message")


def local(*args: str) -> Result:
    from tminus.cli.app import cli

    return CliRunner().invoke(cli, list(args), env={"TMINUS_OPERATOR": "tester"})


def html_of(markdown: str) -> str:
    """The Markdown as a CommonMark renderer with GFM tables shows it."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


@pytest.fixture(scope="module")
def rolled(tmp_path_factory: pytest.TempPathFactory) -> ReportRun:
    return report_runs.rolled_back(tmp_path_factory.mktemp("rolled"))


@pytest.fixture(scope="module")
def second(rolled: ReportRun) -> dict[str, Any]:
    """Another run of the same runbook with --report and --json: its exit code, JSON, stderr."""
    (rolled.folder / "broken").unlink(missing_ok=True)
    proc = tminus("run", "runbook.yaml", "--yes", "--json", "--report", "reports/out.md", cwd=rolled.folder, env=ENV)
    assert proc.returncode == 11, proc.stderr  # not created yet: the report goes nowhere, the run is fine
    return {"code": proc.returncode, "json": json.loads(proc.stdout), "stderr": proc.stderr}


def test_report_prints_markdown_and_json(rolled: ReportRun) -> None:
    md = local("report", rolled.run_id[:12], "--ledger", rolled.ledger_url)
    assert md.exit_code == 0, md.stderr
    assert md.stdout.startswith("# report-demo: ROLLED BACK\n") and rolled.run_id in md.stdout
    assert "exit_code == 0" in md.stdout and "| ✘ **fail** |" in md.stdout
    js = local("report", rolled.run_id, "--format", "json", "--ledger", rolled.ledger_url)
    assert js.exit_code == 0, js.stderr
    data = json.loads(js.stdout)
    assert (data["run_id"], data["status"], data["exit_code"]) == (rolled.run_id, "rolled_back", 11)
    assert data["chain"]["intact"] is True
    # the point of no return, planned from the runbook text recorded with the run: `print the token` has no undo
    assert data["point_of_no_return"] == "phases[0].steps[1]"
    assert CANARY not in md.stdout and CANARY not in js.stdout


def test_report_plans_the_recorded_text_not_the_file(rolled: ReportRun, tmp_path: Path) -> None:
    """The file changed since (or is gone): the point of no return is still the recorded text's; a
    recorded text that cannot be planned gives none, and the rewritten row breaks the chain."""
    copy = tmp_path / "ledger.db"
    copy.write_bytes((rolled.folder / ".tminus" / "ledger.db").read_bytes())
    url = f"sqlite:///{copy}"
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE tminus_runs SET runbook_path = ? WHERE id = ?", (str(tmp_path / "gone.yaml"), rolled.run_id))
    db.close()
    data = json.loads(local("report", rolled.run_id, "--format", "json", "--ledger", url).stdout)
    assert data["point_of_no_return"] == "phases[0].steps[1]"
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE tminus_runs SET runbook_text = 'phases: [unclosed' WHERE id = ?", (rolled.run_id,))
    db.close()
    res = local("report", rolled.run_id, "--format", "json", "--ledger", url)
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["point_of_no_return"] is None and data["chain"]["intact"] is False
    assert "NOT intact" in local("report", rolled.run_id, "--ledger", url).stdout


def test_output_file_is_written_atomically_in_the_format_its_extension_names(rolled: ReportRun,
                                                                              tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("old")
    os.chmod(out, 0o640)
    inode = out.stat().st_ino
    res = local("report", rolled.run_id, "-o", str(out), "--ledger", rolled.ledger_url)
    assert res.exit_code == 0, res.stderr
    assert json.loads(out.read_text())["run_id"] == rolled.run_id
    assert out.stat().st_ino != inode  # a new file renamed over the old one, not the old one rewritten
    assert out.stat().st_mode & 0o777 == 0o640  # keeping its permissions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary file left behind
    assert "wrote the json report" in res.stderr and res.stdout == ""

    md = tmp_path / "r.markdown"
    assert local("report", rolled.run_id, "-o", str(md), "--ledger", rolled.ledger_url).exit_code == 0
    assert md.read_text().startswith("# report-demo")
    forced = tmp_path / "r.txt"  # --format wins over an extension
    assert local("report", rolled.run_id, "--format", "json", "-o", str(forced),
                 "--ledger", rolled.ledger_url).exit_code == 0
    assert json.loads(forced.read_text())["status"] == "rolled_back"


def test_bad_format_extension_or_run_exit_with_usage_or_failure(rolled: ReportRun, tmp_path: Path) -> None:
    bad = local("report", rolled.run_id, "-o", str(tmp_path / "r.pdf"), "--ledger", rolled.ledger_url)
    assert bad.exit_code == 2 and "r.pdf" in bad.stderr and ".md" in bad.stderr
    assert not (tmp_path / "r.pdf").exists()
    assert local("report", rolled.run_id, "--format", "pdf", "--ledger", rolled.ledger_url).exit_code == 2
    unknown = local("report", "no-such-run", "--ledger", rolled.ledger_url)
    assert unknown.exit_code == 1 and "no run 'no-such-run'" in unknown.stderr
    nowhere = local("report", rolled.run_id, "-o", str(tmp_path / "missing" / "r.md"), "--ledger", rolled.ledger_url)
    assert nowhere.exit_code == 1 and "cannot write the report" in nowhere.stderr
    missing = local("report", rolled.run_id, "--ledger", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.exit_code == 1 and not (tmp_path / "none.db").exists()


def test_a_rehearsal_record_points_to_show(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with open_ledger(url) as ledger:
        fabricate(ledger, tmp_path, "REH-A", [good_cycle(1, "expand", run_id="CYC-1")], ok=True)
    res = local("report", "REH-A", "--ledger", url)
    assert res.exit_code == 2 and "rehearsal record" in res.stderr and "tminus show REH-A" in res.stderr
    assert local("report", "CYC-1", "--ledger", url).exit_code == 0  # a cycle's run has a report


def test_run_report_is_written_when_the_run_ends(rolled: ReportRun, second: dict[str, Any]) -> None:
    """`--report reports/out.md` into a folder that does not exist: said on stderr, exit code the run's."""
    assert second["code"] == 11 and second["json"]["status"] == "rolled_back"
    assert "report could not be written to reports/out.md" in second["stderr"]
    (rolled.folder / "reports").mkdir(exist_ok=True)
    (rolled.folder / "broken").unlink(missing_ok=True)
    proc = tminus("run", "runbook.yaml", "--yes", "--report", "reports/out.md", cwd=rolled.folder, env=ENV)
    assert proc.returncode == 11, proc.stderr
    text = (rolled.folder / "reports" / "out.md").read_text()
    run_id = re.search(r"run (\S+) rolled_back", proc.stderr)
    assert run_id and f"`{run_id[1]}`" in text and "ROLLED BACK" in text and "## Rollback" in text
    assert "wrote the md report" in proc.stderr and CANARY not in text
    # the same as `tminus report` of that run afterwards
    assert local("report", run_id[1], "--ledger", rolled.ledger_url).stdout == text


def test_rollback_report_covers_the_run_and_its_rollback(tmp_path: Path) -> None:
    """`rollback --report` (through the same `drive` as run and resume): the whole run, undo included."""
    done = report_runs.completed(tmp_path)
    proc = tminus("rollback", done.run_id, "--reason", "INC-1 | <b>bad</b>", "--yes", "--json",
                  "--report", "rollback.json", cwd=tmp_path, env=ENV)
    assert proc.returncode == 11, proc.stderr
    report = json.loads((tmp_path / "rollback.json").read_text())
    assert (report["run_id"], report["status"]) == (done.run_id, "rolled_back")
    assert [(p["name"], p["status"]) for p in report["rollback"]["plan"]] == [("undeploy", "ok"),
                                                                               ("forget the release", "ok")]
    steps = json.loads(proc.stdout)["steps"]
    assert [s["section"] for s in steps if s["section"].startswith("undo:")] == ["undo:deploy", "undo:prepare"]
    assert steps[0]["key"].startswith("gates[0].checks[")  # the steps of the original run come first
    md = local("report", done.run_id, "--ledger", done.ledger_url).stdout
    out = html_of(md)
    assert "<b>" not in out and "INC-1 | &lt;b&gt;bad&lt;/b&gt;" in out


def test_a_report_name_without_a_format_is_refused_before_the_run(tmp_path: Path) -> None:
    write_runbook(tmp_path, "name: x\nphases:\n  - name: p\n    steps:\n      - run: 'touch ran'\n")
    proc = tminus("run", "runbook.yaml", "--yes", "--report", "out.txt", cwd=tmp_path)
    assert proc.returncode == 2 and "--report" in proc.stderr and "out.txt" in proc.stderr
    assert not (tmp_path / "ran").exists() and not (tmp_path / ".tminus").exists()


def test_run_json_steps_are_what_the_report_says(rolled: ReportRun, second: dict[str, Any]) -> None:
    steps = second["json"]["steps"]
    report = json.loads(local("report", second["json"]["run_id"], "--format", "json",
                              "--ledger", rolled.ledger_url).stdout)
    expected = [{k: s[k] for k in STEP_FIELDS} for sec in report["sections"] for s in sec["steps"]]
    assert [{k: s[k] for k in STEP_FIELDS} for s in steps] == expected
    failed = [s for s in steps if s["status"] == "failed"]
    assert [s["key"] for s in failed] == ["verify[0]"]
    assert failed[0]["failures"] == [{"assertion": "exit_code == 0", "expected": "== 0", "actual": 1,
                                      "message": "exit_code == 0: expected 0, got 1", "location": "runbook.yaml:40:9"}]
    assert all(s["failures"] == [] for s in steps if s["status"] == "ok")
    assert [s["section"] for s in steps][-2:] == ["verify-after-rollback", "verify-after-rollback"]


def test_gate_junit_never_changes_the_gates_exit_code(tmp_path: Path) -> None:
    write_runbook(tmp_path, "name: g\ngates:\n  - name: ok\n    checks:\n      - run: 'true'\n"
                            "phases:\n  - name: p\n    steps:\n      - run: 'true'\n")
    proc = tminus("gate", "runbook.yaml", "--json", "--junit", "gates.xml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "completed" and [s["key"] for s in data["steps"]] == ["gates[0].checks[0]"]
    root = ET.parse(tmp_path / "gates.xml").getroot()  # written whatever the extension says
    assert root.tag == "testsuites" and next(s.get("name") for s in root.iter("testsuite")) == "gates"
    assert "wrote the junit report" in proc.stderr and "could not" not in proc.stderr
    # a report that cannot be written is said on stderr; the gates' exit code stays theirs
    proc = tminus("gate", "runbook.yaml", "--junit", str(tmp_path / "missing" / "gates.xml"), cwd=tmp_path)
    assert proc.returncode == 0 and "junit report could not be written" in proc.stderr, proc.stderr


def test_run_report_html_and_junit_are_what_report_writes(rolled: ReportRun, tmp_path: Path) -> None:
    """`tminus report --format html|junit` of the same run: one self-contained page naming every
    step, and JUnit XML with a suite per section."""
    page = tminus("report", rolled.run_id, "--format", "html", cwd=rolled.folder)
    assert page.returncode == 0, page.stderr
    assert page.stdout.lstrip().lower().startswith("<!doctype html") and CANARY not in page.stdout
    for name in ("the folder is writable", "print the token", "undeploy", "the service is healthy"):
        assert name in page.stdout
    out = tmp_path / "r.xml"
    assert tminus("report", rolled.run_id, "-o", str(out), cwd=rolled.folder).returncode == 0
    suites = [s.get("name") for s in ET.parse(out).getroot().iter("testsuite")]
    assert suites[0] == "gates" and "verify" in suites and "rollback" in suites


HOSTILE = """
name: hostile
phases:
  - name: "p | <i>q</i>"
    steps:
      - name: '| pipe <script>alert(1)</script> `tick` $x$ **bold** [link](http://evil) # h'
        run: |
          printf '%s\\n' 'before' '```' '# pwned' '````' '<img src=x onerror=alert(1)>' '</code></pre><h1>x</h1>'
        expect:
          - stdout contains "a|b"
"""
NAME = "| pipe <script>alert(1)</script> `tick` $x$ **bold** [link](http://evil) # h"


def test_hostile_names_and_output_stay_text_in_markdown(tmp_path: Path) -> None:
    write_runbook(tmp_path, HOSTILE)
    proc = tminus("run", "runbook.yaml", "--yes", "--report", "r.md", cwd=tmp_path)
    assert proc.returncode == 11, proc.stderr
    md = (tmp_path / "r.md").read_text()
    html = html_of(md)
    for tag in ("<script", "<img", "<i>", "<h1>x", "<strong>bold", 'href="http://evil"'):
        assert tag not in html, tag
    shown = escape(NAME, quote=False)
    assert f"<h4>✘ {shown}: failed</h4>" in html  # the heading reads as the name, whole
    assert f"<td>↳ {shown}</td>" in html  # one timeline cell: `|` did not split it
    assert "<td><strong>Phase p | &lt;i&gt;q&lt;/i&gt;</strong></td>" in html
    # the output, fences and all, is one code block: nothing after it became markup
    blocks = re.findall(r"<pre><code>(.*?)</code></pre>", html, re.S)
    printed = ("before\n```\n# pwned\n````\n&lt;img src=x onerror=alert(1)&gt;\n"
               "&lt;/code&gt;&lt;/pre&gt;&lt;h1&gt;x&lt;/h1&gt;\n")
    assert printed in blocks
    assert "<h1>pwned" not in html and "<h1>" not in html.split("<h1>", 1)[1]  # one h1: the title
    # the failed expectation with `|` in it is one row of four cells
    assert '<td><code>stdout contains &quot;a|b&quot;</code></td>' in html
