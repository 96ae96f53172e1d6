"""The `redis` kind without a server: what it refuses to send, and what it never shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import tminus, write_runbook

from tminus.errors import RunbookError
from tminus.kinds.redis import READ_ONLY, BadCommand, parse_command, shown_url
from tminus.runbook.loader import load_runbook


@pytest.mark.parametrize(("text", "words"), [
    ("LLEN jobs", ["LLEN", "jobs"]),
    ("llen jobs", ["LLEN", "jobs"]),
    ("  GET   'a key'  ", ["GET", "a key"]),
    ('HGET "user:1" name', ["HGET", "user:1", "name"]),
    ("PING", ["PING"]),
    ("GET x FLUSHALL", ["GET", "x", "FLUSHALL"]),  # an argument, never a command: Redis refuses the arity
])
def test_read_only_commands_split_into_words(text: str, words: list[str]) -> None:
    assert parse_command(text) == words


@pytest.mark.parametrize(("text", "why"), [
    ("FLUSHALL", "not a read-only command"),
    ("SET k v", "not a read-only command"),
    ("EVAL 'return 1' 0", "not a read-only command"),
    ("KEYS *", "not a read-only command"),  # reads, but blocks a large server: not on the list
    ("GET x\r\nFLUSHALL", "control character (U+000D)"),
    ("GET x\nFLUSHALL", "control character (U+000A)"),
    ("GET x\x00", "control character (U+0000)"),
    ("GET 'unbalanced", "cannot split the command"),
    ("   ", "the command is empty"),
])
def test_everything_else_is_refused(text: str, why: str) -> None:
    with pytest.raises(BadCommand, match=__import__("re").escape(why)):
        parse_command(text)


def test_the_allow_list_is_the_documented_one() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "runbook.md").read_text()
    section = doc[doc.index("### `redis`"):doc.index("## Expectations")]
    for name in READ_ONLY:
        assert f"`{name}`" in section


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:hunter22@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("redis://app:hunter22@cache:6379/2", "redis://app:***@cache:6379/2"),
    ("rediss://hunter22@cache:6380", "rediss://***@cache:6380"),
    ("redis://cache:6379/0?password=hunter22&db=1", "redis://cache:6379/0?password=%2A%2A%2A&db=1"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
])
def test_the_password_is_never_shown(url: str, shown: str) -> None:
    assert shown_url(url) == shown
    assert "hunter22" not in shown_url(url)


def test_validation_refuses_with_the_position_and_the_allow_list(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, """
        name: r
        vars: {key: jobs}
        gates:
          - name: g
            checks:
              - redis: {url: "redis://127.0.0.1:6379/0", command: "FLUSHALL"}
              - redis: {url: "redis://127.0.0.1:6379/0", command: "DEL {{ vars.key }}"}
              - redis: {url: "redis://127.0.0.1:6379/0", command: "LLEN {{ vars.key }}"}
              - redis: {url: "redis://127.0.0.1:6379/0", command: "{{ vars.key }} x"}
              - redis: {url: "http://127.0.0.1:6379", command: PING}
    """)
    with pytest.raises(RunbookError) as err:
        load_runbook(rb)
    problems = {(p.location.line, p.path): p for p in err.value.problems}
    assert set(problems) == {(6, "gates[0].checks[0].redis.command"), (7, "gates[0].checks[1].redis.command"),
                             (10, "gates[0].checks[4].redis.url")}
    first = problems[(6, "gates[0].checks[0].redis.command")]
    assert "'FLUSHALL' is not a read-only command" in first.message
    assert first.hint is not None and "LLEN" in first.hint and "DBSIZE" in first.hint
    proc = tminus("validate", str(rb), cwd=tmp_path)
    assert proc.returncode == 78 and f"{rb}:6:" in proc.stdout + proc.stderr


def test_a_redis_step_is_a_check_usable_as_a_gate_a_probe_and_in_a_wait(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, """
        name: r
        gates:
          - name: g
            checks:
              - wait: {check: {redis: {url: "redis://127.0.0.1:6379/0", command: LLEN jobs}, expect: [value == 0]}}
                timeout: 10s
        phases:
          - name: p
            steps: [{run: "true"}]
        monitor:
          duration: 1m
          interval: 5s
          probes:
            - name: depth
              redis: {url: "redis://127.0.0.1:6379/0", command: LLEN jobs}
          rules:
            - {name: backlog, when: value > 100, consecutive: 2}
    """)
    doc = load_runbook(rb)
    assert all(s.is_check and not s.needs_undo for s in doc.runbook.all_steps() if s.kind == "redis")


def test_validating_and_planning_do_not_import_the_client(tmp_path: Path) -> None:
    import subprocess
    import sys

    rb = write_runbook(tmp_path, """
        name: r
        verify:
          - redis: {url: "redis://127.0.0.1:6379/0", command: LLEN jobs}
    """)
    code = ("import sys; from tminus.runbook.loader import load_runbook; from tminus.kinds import registry; "
            f"load_runbook({str(rb)!r}); registry.all_kinds(); print('redis' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
