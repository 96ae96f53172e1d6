"""JUnit XML of real runs (tests/report_runs.py: completed, rolled back, rollback failed, monitor fired;
a hostile runbook; a gates-only blocked run), each validated against the Jenkins/Ant JUnit schema
shipped in tests/fixtures/junit/ and read back for its suites, cases and failure texts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
import xmlschema
from tests.helpers import run_json, write_runbook
from tests.report_runs import CANARY, EXPECTED, SCENARIOS

from tminus.ledger import open_reader
from tminus.reports.render_junit import render_junit
from tminus.reports.run_report import build_report

SCHEMA = xmlschema.XMLSchema(str(Path(__file__).parents[1] / "fixtures" / "junit" / "junit-10.xsd"))
HOSTILE = 'step <x> & "y" ]]> z'
HOSTILE_PHASE = 'deploy <now> & "then" ]]>'

Render = Callable[[str], str]


def _junit(folder: Path, run_id: str) -> str:
    with open_reader(f"sqlite:///{folder / '.tminus' / 'ledger.db'}") as reader:
        return render_junit(build_report(reader, run_id))


@pytest.fixture(scope="module")
def junit(tmp_path_factory: pytest.TempPathFactory) -> Render:
    """The scenario's JUnit XML (validated against the schema), each real run made once per module."""
    cache: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in cache:
            run = SCENARIOS[name](tmp_path_factory.mktemp(name))
            assert (run.status, run.exit_code) == EXPECTED[name]
            xml = cache[name] = _junit(run.folder, run.run_id)
            assert _junit(run.folder, run.run_id) == xml  # the ledger's times only: the same bytes again
            SCHEMA.validate(xml)
        return cache[name]

    return get


def _suites(xml: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml)
    assert root.tag == "testsuites"
    suites = {s.get("name", ""): s for s in root.findall("testsuite")}
    assert len(suites) == len(root.findall("testsuite")), "suite names are unique"
    # the root's totals are the suites' sums, and each suite's counts are its cases'
    for attr in ("tests", "failures", "errors"):
        assert int(root.get(attr, "-1")) == sum(int(s.get(attr, "0")) for s in suites.values())
    for s in suites.values():
        cases = s.findall("testcase")
        assert int(s.get("tests", "-1")) == len(cases)
        for attr, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
            assert int(s.get(attr, "-1")) == sum(1 for c in cases if c.find(tag) is not None)
    return suites


def _counts(suite: ET.Element) -> tuple[int, int, int, int]:
    return tuple(int(suite.get(a, "0")) for a in ("tests", "failures", "errors", "skipped"))  # type: ignore[return-value]


def _case(suite: ET.Element, name: str) -> ET.Element:
    found = [c for c in suite.findall("testcase") if c.get("name") == name]
    assert len(found) == 1, [c.get("name") for c in suite.findall("testcase")]
    return found[0]


def _props(suite: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in suite.iter("property")}


BASE = ["gates", "phase: prepare", "phase: deploy", "verify"]
SUITES = {
    "completed": [*BASE, "decision", "run"],
    "rolled_back": [*BASE, "rollback", "verify-after-rollback", "run"],
    "rollback_failed": [*BASE, "rollback", "run"],
    "monitor_fired": [*BASE, "decision", "monitor", "rollback", "verify-after-rollback", "run"],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_run_validates_with_a_suite_per_section_and_no_secret(junit: Render, name: str) -> None:
    xml = junit(name)
    assert CANARY not in xml
    suites = _suites(xml)
    assert list(suites) == SUITES[name]
    gates = suites["gates"]
    assert _counts(gates) == (2, 0, 0, 0)
    assert {c.get("classname") for c in gates.findall("testcase")} == {"report-demo.gates.workspace ready"}
    assert _case(suites["phase: deploy"], "deploy <b>v2</b> & friends").get("classname") == "report-demo.phase.deploy"
    props = _props(gates)
    status, code = EXPECTED[name]
    assert props["status"] == status and props["exit_code"] == str(code)
    assert props["chain"] == "intact" and props["environment"] == "default" and props["operator"] == "tester"
    assert len(props["content_hash"]) == 64 and props["run_id"]
    # a run that did not end well is never a green report
    run = _case(suites["run"], f"report-demo {status}")
    assert (run.find("failure") is None) == (code == 0)
    for s in suites.values():
        assert s.get("timestamp", "").startswith(props["started_at"][:10])
        for c in s.findall("testcase"):
            assert float(c.get("time", "-1")) >= 0


def test_completed_has_no_failure(junit: Render) -> None:
    root = ET.fromstring(junit("completed"))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("10", "0", "0")
    token = _case(_suites(junit("completed"))["phase: prepare"], "print the token")
    assert token.findtext("system-out") == "token=***"  # masked in the ledger, masked here
    manual = _case(_suites(junit("completed"))["phase: deploy"], "operator confirms")
    assert (manual.findtext("system-out") or "").startswith("approved by tester (--yes) at T+")


def test_rolled_back_verify_failure_says_expected_and_actual(junit: Render) -> None:
    suites = _suites(junit("rolled_back"))
    assert _counts(suites["verify"]) == (2, 1, 0, 0)
    failure = _case(suites["verify"], "the service is healthy").find("failure")
    assert failure is not None and failure.get("type") == "expectation"
    assert failure.get("message") == "exit_code == 0: expected 0, got 1"
    assert "exit_code == 0 (runbook.yaml:40:9): expected == 0; actual 1" in (failure.text or "")
    assert _counts(suites["rollback"]) == (2, 0, 0, 0)
    assert {c.get("classname") for c in suites["rollback"].findall("testcase")} == {
        "report-demo.rollback.undo.deploy", "report-demo.rollback.undo.prepare"}
    assert _counts(suites["verify-after-rollback"]) == (2, 0, 0, 0)


def test_rollback_failed_shows_the_failing_undo_and_what_it_never_reached(junit: Render) -> None:
    rollback = _suites(junit("rollback_failed"))["rollback"]
    assert _counts(rollback) == (2, 1, 0, 1)
    undeploy = _case(rollback, "undeploy")
    failure = undeploy.find("failure")
    assert failure is not None and "expected == 0; actual 3" in (failure.text or "")
    assert "stderr: cannot undeploy" in (failure.text or "")  # the step's message
    assert undeploy.findtext("system-err") == "cannot undeploy"
    skipped = _case(rollback, "forget the release").find("skipped")
    assert skipped is not None and "not run" in skipped.get("message", "")


def test_monitor_fired_rule_fails_with_its_readings(junit: Render) -> None:
    suites = _suites(junit("monitor_fired"))
    monitor = suites["monitor"]
    assert _counts(monitor) == (1, 1, 0, 0)
    failure = _case(monitor, "pool saturated").find("failure")
    assert failure is not None
    assert failure.get("message") == "pool saturated fired: probe 2/2: 0.95 >= 0.9"
    text = failure.text or ""
    assert "threshold: >= 0.9" in text and "action: rollback" in text
    assert text.count("window: 0.95") >= 2  # the readings up to the firing
    # the phases and verify passed: the monitor is what failed the run
    assert all(_counts(suites[s])[1:3] == (0, 0) for s in BASE)


def test_hostile_names_and_control_characters_stay_valid(tmp_path: Path) -> None:
    write_runbook(tmp_path, r'''
        name: hostile-demo
        gates:
          - name: gate <&"]]>
            checks:
              - name: check <x> & "y" ]]> z
                run: |
                  printf 'ok\001\033[31mred\033[0m\n'
        phases:
          - name: deploy <now> & "then" ]]>
            steps:
              - name: step <x> & "y" ]]> z
                run: |
                  printf 'a\000b\001c\002d\003e\004f\005g\006h\007i\010j\033[1;31mRED\033[0m\013\014\037end\n'
                  printf 'err\001\033[2K\010\n' >&2
                  exit 1
        ''')
    code, result = run_json("run", "runbook.yaml", "--yes", cwd=tmp_path)
    assert (code, result["status"]) == (11, "rolled_back"), result
    xml = _junit(tmp_path, str(result["run_id"]))
    SCHEMA.validate(xml)
    assert not any(ch in xml for ch in "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x1b\x1f")
    suites = _suites(xml)
    phase = suites[f"phase: {HOSTILE_PHASE}"]
    case = _case(phase, HOSTILE)  # the name round-trips exactly
    assert case.get("classname") == f"hostile-demo.phase.{HOSTILE_PHASE}"
    assert case.findtext("system-out") == "abcdefghijREDend"  # colours and control characters gone
    assert case.findtext("system-err") == "err"
    failure = case.find("failure")
    assert failure is not None and "stderr: err" in (failure.text or "")
    assert _case(suites["gates"], 'check <x> & "y" ]]> z').get("classname") == 'hostile-demo.gates.gate <&"]]>'


def test_blocked_gate_run_is_a_gates_suite_with_the_failure(tmp_path: Path) -> None:
    write_runbook(tmp_path, '''
        name: gate-demo
        gates:
          - name: ready
            checks:
              - name: the flag file exists
                run: "test -f flag"
                expect:
                  - exit_code == 0
              - name: the disk is fine
                run: "true"
        phases:
          - name: p
            steps:
              - name: s
                run: "true"
        ''')
    code, result = run_json("gate", "runbook.yaml", cwd=tmp_path)
    assert (code, result["status"]) == (10, "blocked"), result
    xml = _junit(tmp_path, str(result["run_id"]))
    SCHEMA.validate(xml)
    suites = _suites(xml)
    assert list(suites) == ["gates", "run"]
    gates = suites["gates"]
    assert _counts(gates) == (2, 1, 0, 0)
    failed = _case(gates, "the flag file exists")
    assert failed.get("classname") == "gate-demo.gates.ready"
    failure = failed.find("failure")
    assert failure is not None and "expected == 0; actual 1" in (failure.text or "")
    assert _props(gates)["status"] == "blocked" and _props(gates)["exit_code"] == "10"
