"""`run` with `output: json`, through the real `tminus` command and real subprocesses: the parsed
document for expectations and later templates, and every way stdout can break the promise."""

from __future__ import annotations

import time
from pathlib import Path

from tests.helpers import tminus, write_runbook

from helpers_kinds import run_step


def test_parsed_json_is_queried_and_offered_to_later_steps(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, """
        name: parity
        verify:
          - id: parity
            run:
              command: |-
                printf '{"rows": 42, "tables": ["orders", "items"], "ok": true}'
              output: json
            expect:
              - jsonpath "$.rows" == 42
              - jsonpath "$.tables" count == 2
              - jsonpath "$.ok" == true
          - name: later steps read steps.parity.json
            run: test {{ steps.parity.json.rows }} -eq 42 && echo {{ steps.parity.json.tables[1] }} > seen.txt
          - name: and so do later expectations
            run:
              command: |-
                echo '{"n": 42}'
              output: json
            expect: ['jsonpath "$.n" == {{ steps.parity.json.rows }}']
    """)
    proc = tminus("run", str(rb), "--yes", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "seen.txt").read_text() == "items\n"


def test_a_false_expectation_on_the_parsed_json_fails_the_step(tmp_path: Path) -> None:
    obs = run_step({"run": {"command": "echo '{\"rows\": 41}'", "output": "json"}}, tmp_path)
    assert obs.error is None and obs.values["json"] == {"rows": 41} and obs.outputs["json"] == {"rows": 41}
    from tminus.expect import parse

    assert parse('jsonpath "$.rows" == 42').evaluate(obs.values).passed is False


def test_stdout_that_is_not_json_fails_with_its_place_and_an_excerpt(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, """
        name: not-json
        verify:
          - run:
              command: |-
                printf 'progress: 10%%\\n{"rows": 42}\\n'
              output: json
    """)
    proc = tminus("run", str(rb), "--yes", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "stdout is not JSON (output: json): Expecting value at line 1, column 1 (character 1)" in out, out
    assert '"⟨here⟩progress: 10%\\n{\\"rows\\": 42}\\n"' in out


def test_the_excerpt_masks_secrets_around_the_error(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, """
        name: secret-in-bad-json
        secrets: [API_TOKEN]
        verify:
          - run:
              command: 'printf "{\\"token\\": \\"%s\\", oops}" "$API_TOKEN"'
              output: json
    """)
    token = "tok-9f8e7d6c5b4a"
    proc = tminus("run", str(rb), "--yes", cwd=tmp_path, env={"API_TOKEN": token})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Expecting property name enclosed in double quotes" in out, out
    assert token not in out and '***\\", ⟨here⟩oops}' in out
    assert token.encode() not in (tmp_path / ".tminus" / "ledger.db").read_bytes()


def test_huge_output_is_refused_unparsed_and_quickly(tmp_path: Path) -> None:
    # 3 MB of valid JSON: over the bound, refused without building it
    command = "python3 -c 'import json; print(json.dumps({\"rows\": [\"x\" * 100] * 30000}))'"
    start = time.monotonic()
    obs = run_step({"run": {"command": command, "output": "json"}}, tmp_path)
    assert obs.error is not None and "characters; output: json reads at most 1,000,000" in obs.error
    assert "json" not in obs.outputs
    assert time.monotonic() - start < 10


def test_deeply_nested_json_is_a_clear_error_not_a_crash(tmp_path: Path) -> None:
    command = "python3 -c 'print(\"[\" * 200000 + \"]\" * 200000)'"
    obs = run_step({"run": {"command": command, "output": "json"}}, tmp_path)
    assert obs.error is not None and "nested too deeply" in obs.error


def test_empty_output_is_not_a_document(tmp_path: Path) -> None:
    obs = run_step({"run": {"command": "true", "output": "json"}}, tmp_path)
    assert obs.error == "stdout is empty; output: json expects one JSON document"


def test_a_failed_command_is_judged_by_its_exit_code_not_its_output(tmp_path: Path) -> None:
    obs = run_step({"run": {"command": "echo 'Traceback: boom'; exit 3", "output": "json"}}, tmp_path)
    assert obs.error is None and obs.values["exit_code"] == 3 and "json" not in obs.values
    assert "stdout is not JSON" in obs.evidence["json_error"]
    rb = write_runbook(tmp_path, """
        name: failing
        verify:
          - run:
              command: |-
                echo 'Traceback: boom'; exit 3
              output: json
    """)
    proc = tminus("run", str(rb), "--yes", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert "exit_code == 0: expected 0, got 3" in out, out


def test_text_output_stays_lenient(tmp_path: Path) -> None:
    obs = run_step({"run": {"command": "echo not json"}}, tmp_path)
    assert obs.error is None and "json" not in obs.values


def test_secret_output_masks_every_string_of_the_document(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, """
        name: credentials
        phases:
          - name: fetch
            steps:
              - id: creds
                run:
                  command: |-
                    printf '{"user": "%s", "password": "%s", "port": 5432}' "$SVC_USER" "$SVC_PW"
                  output: json
                secret_output: true
              - run: echo "{{ steps.creds.json.password }}" > got.txt
            undo: [{run: "true"}]
    """)
    # the values are not declared secrets: only secret_output keeps them out of the ledger
    proc = tminus("run", str(rb), "--yes", cwd=tmp_path, env={"SVC_USER": "svc-deployer", "SVC_PW": "pw-0a1b2c3d"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "got.txt").read_text() == "pw-0a1b2c3d\n"  # the real value, for the step that needs it
    ledger = (tmp_path / ".tminus" / "ledger.db").read_bytes()
    assert b"pw-0a1b2c3d" not in ledger and b"svc-deployer" not in ledger
    assert "pw-0a1b2c3d" not in proc.stdout + proc.stderr


def test_an_unknown_output_mode_is_a_positioned_validation_error(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, """
        name: v
        verify:
          - run: {command: "echo {}", output: yaml}
    """)
    proc = tminus("validate", str(rb), cwd=tmp_path)
    assert proc.returncode == 78
    assert f"{rb}:3:" in proc.stdout + proc.stderr and "'text' or 'json'" in proc.stdout + proc.stderr


def test_a_declared_secret_inside_the_document_is_masked_where_it_is_stored(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, """
        name: secret-in-json
        secrets: [DB_PASSWORD]
        verify:
          - id: conf
            run:
              command: |-
                printf '{"dsn": "postgresql://app:%s@db/app", "pool": 10}' "$DB_PASSWORD"
              output: json
            expect: ['jsonpath "$.pool" == 10', 'jsonpath "$.dsn" contains "@db/app"']
          - run: echo "{{ steps.conf.json.dsn }}" > dsn.txt
    """)
    password = "pw-7h6g5f4e3d"
    proc = tminus("run", str(rb), "--yes", cwd=tmp_path, env={"DB_PASSWORD": password})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "dsn.txt").read_text() == f"postgresql://app:{password}@db/app\n"
    ledger = (tmp_path / ".tminus" / "ledger.db").read_bytes()
    assert password.encode() not in ledger and b"postgresql://app:***@db/app" in ledger
