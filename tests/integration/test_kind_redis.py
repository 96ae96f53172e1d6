"""The `redis` kind against real Redis servers: the shared one on 127.0.0.1:6379 (keys under a prefix
unique to the test, deleted after it) and private ones on free ports, started and killed by the
tests (a dependency that dies mid-run; a password; commands that would flush a database)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import tminus, write_runbook

from helpers_kinds import run_step
from tminus.expect import parse

REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server (apt-get install redis-server)")
SHARED = "redis://127.0.0.1:6379/0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _holds(values: dict[str, Any], expectation: str) -> bool | None:
    return parse(expectation).evaluate(values).passed


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix no other test uses; every key under it is deleted afterwards."""
    import redis

    client = redis.Redis.from_url(SHARED, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not answering on 127.0.0.1:6379 (.ci/run starts it)")
    name = f"tminus-test:{uuid.uuid4().hex}:"
    yield name
    keys = list(client.scan_iter(match=name + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]
    password: str | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, decode_responses=True)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


def _start(password: str | None = None) -> Server:
    import redis

    port = _free_port()
    args = [str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    if password:
        args += ["--requirepass", password]
    server = Server(port, subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), password)
    deadline = time.monotonic() + 10
    while True:
        try:
            server.client().ping()
            return server
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.05)


@pytest.fixture
def private() -> Iterator[Server]:
    """A Redis of this test's own on a free port: what it flushes or loses is nobody else's."""
    server = _start()
    yield server
    if server.proc.poll() is None:
        server.kill()


# --- replies and the expectation grammar ---------------------------------------------------------


def test_replies_are_values_the_expectation_grammar_judges(prefix: str, tmp_path: Path) -> None:
    import redis

    client = redis.Redis.from_url(SHARED, decode_responses=True)
    client.rpush(prefix + "jobs", "a", "b", "c")
    client.hset(prefix + "h", mapping={"state": "ready", "n": "7"})
    client.set(prefix + "doc", json.dumps({"rows": 42, "tables": ["a", "b"]}))

    def redis_step(command: str) -> dict[str, Any]:
        obs = run_step({"redis": {"url": SHARED, "command": command}}, tmp_path)
        assert obs.error is None, obs.error
        return obs.values

    depth = redis_step(f"LLEN {prefix}jobs")
    assert depth["value"] == 3 and _holds(depth, "value == 3") and not _holds(depth, "value < 3")
    assert _holds(redis_step(f"llen {prefix}nothing"), "value == 0")  # any letter case; a missing list is 0
    assert _holds(redis_step(f"GET {prefix}missing"), "value == null")
    assert _holds(redis_step("PING"), "value == true")
    assert redis_step(f"LRANGE {prefix}jobs 0 -1")["value"] == ["a", "b", "c"]
    hashed = redis_step(f"HGETALL {prefix}h")
    assert hashed["value"] == {"state": "ready", "n": "7"}
    assert _holds(hashed, 'jsonpath "$.state" == "ready"')
    doc = redis_step(f"GET {prefix}doc")
    assert _holds(doc, 'jsonpath "$.rows" == 42') and _holds(doc, 'jsonpath "$.tables" count == 2')
    assert _holds(redis_step(f"TYPE {prefix}jobs"), 'value == "list"')
    assert _holds(redis_step(f"EXISTS {prefix}jobs {prefix}h {prefix}missing"), "value == 2")
    info = redis_step("INFO server")
    assert isinstance(info["value"], dict) and "redis_version" in info["value"]
    client.close()


def test_a_quoted_argument_is_one_word(prefix: str, tmp_path: Path) -> None:
    import redis

    client = redis.Redis.from_url(SHARED, decode_responses=True)
    client.set(prefix + "a key", "spaced")
    obs = run_step({"redis": {"url": SHARED, "command": f"GET '{prefix}a key'"}}, tmp_path)
    assert obs.values["value"] == "spaced"
    client.close()


def test_redis_refusing_the_command_is_a_clear_error(prefix: str, tmp_path: Path) -> None:
    import redis

    redis.Redis.from_url(SHARED).set(prefix + "s", "text")
    obs = run_step({"redis": {"url": SHARED, "command": f"LLEN {prefix}s"}}, tmp_path)
    assert obs.error is not None and "Redis refused LLEN" in obs.error and "WRONGTYPE" in obs.error


# --- hostile commands: nothing but the allow-list ever reaches a server ----------------------------


def _sentinel(server: Server) -> Any:
    client = server.client()
    client.set("sentinel", "still here")
    return client


@pytest.mark.parametrize("key", ["x\r\nFLUSHALL", "x\nFLUSHALL", "x FLUSHALL", "x\r\n*1\r\n$8\r\nFLUSHALL\r\n"])
def test_an_injected_command_cannot_execute(private: Server, tmp_path: Path, key: str) -> None:
    client = _sentinel(private)
    rb = write_runbook(tmp_path, f"""
        name: inject
        vars: {{key: "k"}}
        verify:
          - name: read the key
            redis: {{url: "{private.url}", command: "GET {{{{ vars.key }}}}"}}
    """)
    proc = tminus("run", str(rb), "--yes", "--var", f"key={key}", cwd=tmp_path)
    assert proc.returncode != 0, proc.stdout
    out = proc.stdout + proc.stderr
    assert "control character" in out or "wrong number of arguments" in out, out
    assert client.get("sentinel") == "still here"  # FLUSHALL never ran
    assert client.dbsize() == 1
    client.close()


@pytest.mark.parametrize("command", ["FLUSHALL", "flushdb", "SET sentinel gone", "DEL sentinel", "CONFIG SET x y",
                                     "EVAL 'redis.call(\"FLUSHALL\")' 0", "MULTI", "SHUTDOWN"])
def test_a_command_that_is_not_read_only_is_refused_once_rendered(private: Server, tmp_path: Path,
                                                                   command: str) -> None:
    client = _sentinel(private)
    rb = write_runbook(tmp_path, f"""
        name: not-read-only
        vars: {{cmd: "PING"}}
        verify:
          - redis: {{url: "{private.url}", command: "{{{{ vars.cmd }}}}"}}
    """)
    proc = tminus("run", str(rb), "--yes", "--var", f"cmd={command}", cwd=tmp_path)
    assert proc.returncode != 0
    assert "is not a read-only command tminus runs" in proc.stdout + proc.stderr
    assert client.get("sentinel") == "still here" and private.proc.poll() is None
    client.close()


# --- credentials, refusals, timeouts --------------------------------------------------------------


def test_the_password_never_shows_when_the_connection_is_refused(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    rb = write_runbook(tmp_path, f"""
        name: refused
        verify:
          - redis: {{url: "redis://:pw-s3cr3t-xyz@127.0.0.1:{port}/0", command: LLEN jobs}}
    """)
    proc = tminus("run", str(rb), "--yes", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "cannot connect" in out and "Connection refused" in out, out
    assert "pw-s3cr3t-xyz" not in out and f"redis://:***@127.0.0.1:{port}/0" in out
    plan = tminus("plan", str(rb), cwd=tmp_path)
    assert "pw-s3cr3t-xyz" not in plan.stdout and ":***@" in plan.stdout


def test_a_password_from_a_secret_is_nowhere_in_the_ledger(tmp_path: Path) -> None:
    server = _start(password="ledger-never-sees-this")
    try:
        rb = write_runbook(tmp_path, f"""
            name: secret-password
            secrets: [REDIS_PASSWORD]
            verify:
              - redis: {{url: "redis://:{{{{ secrets.REDIS_PASSWORD }}}}@127.0.0.1:{server.port}/0", command: PING}}
                expect: [value == true]
        """)
        proc = tminus("run", str(rb), "--yes", cwd=tmp_path, env={"REDIS_PASSWORD": "ledger-never-sees-this"})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "ledger-never-sees-this" not in proc.stdout + proc.stderr
        ledger = (tmp_path / ".tminus" / "ledger.db").read_bytes()
        assert b"ledger-never-sees-this" not in ledger and b"PING" in ledger
    finally:
        server.kill()


def test_a_wrong_password_is_an_authentication_error_without_the_password(tmp_path: Path) -> None:
    server = _start(password="right-horse-battery")
    try:
        ok = run_step({"redis": {"url": server.url, "command": "PING"}}, tmp_path)
        assert ok.error is None and ok.values["value"] is True
        wrong = f"redis://:wrong-staple-9@127.0.0.1:{server.port}/0"
        obs = run_step({"redis": {"url": wrong, "command": "PING"}}, tmp_path)
        assert obs.error is not None and "authentication failed" in obs.error
        assert "wrong-staple-9" not in obs.error + json.dumps(obs.evidence)
    finally:
        server.kill()


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # accept and keep silent
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        start = time.monotonic()
        obs = run_step({"redis": {"url": f"redis://127.0.0.1:{port}/0", "command": "PING"}}, tmp_path, timeout=0.5)
        took = time.monotonic() - start
        assert obs.timed_out and obs.error is not None and "timed out" in obs.error
        assert took < 5, took
    finally:
        stop.set()
        thread.join()
        for s in held:
            s.close()
        listener.close()


# --- in a run: gates, verify, a dependency dying, a monitor probe ------------------------------------


def test_redis_dying_mid_run_fails_verify_and_rolls_back(private: Server, tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, f"""
        name: redis-dies
        gates:
          - name: redis answers
            checks:
              - redis: {{url: "{private.url}", command: PING}}
                expect: [value == true]
        phases:
          - name: the dependency goes away
            steps:
              - run: kill -9 {private.proc.pid}
            undo:
              - run: "true"
        verify:
          - name: the queue is readable
            redis: {{url: "{private.url}", command: LLEN jobs}}
            expect: [value == 0]
            after_rollback: false
    """)
    proc = tminus("run", str(rb), "--yes", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 11, out  # rolled back
    assert "cannot connect" in out and f"127.0.0.1:{private.port}" in out
    private.proc.wait(timeout=10)


def test_a_redis_probe_feeds_a_monitor_rule(private: Server, tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, f"""
        name: queue-backs-up
        phases:
          - name: enqueue
            steps:
              - run: redis-cli -p {private.port} RPUSH jobs a b c d e
            undo:
              - run: redis-cli -p {private.port} DEL jobs
        monitor:
          duration: 20s
          interval: 100ms
          probes:
            - name: depth
              redis: {{url: "{private.url}", command: LLEN jobs}}
          rules:
            - name: queue backs up
              when: value > 2
              consecutive: 2
    """)
    if shutil.which("redis-cli") is None:
        pytest.skip("needs redis-cli")
    start = time.monotonic()
    proc = tminus("run", str(rb), "--yes", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 11, out
    assert "queue backs up" in out
    assert time.monotonic() - start < 15  # fired early in the window, not at its end
    assert private.client().llen("jobs") == 0  # the undo ran


def test_a_redis_probe_guards_a_phase_and_redis_dying_fires_it(private: Server, tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, f"""
        name: guarded
        phases:
          - name: restart the workers
            guard:
              interval: 100ms
              probes:
                - name: queue
                  redis: {{url: "{private.url}", command: PING}}
              rules:
                - name: redis stays up
                  probe: queue
                  when: value != true
                  consecutive: 2
            steps:
              - run: sleep 0.5; kill -9 {private.proc.pid}; sleep 20
            undo:
              - run: "true"
    """)
    start = time.monotonic()
    proc = tminus("run", str(rb), "--yes", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 11, out
    assert "redis stays up" in out
    assert time.monotonic() - start < 15  # the guard stopped the step; it did not sleep its 20 s out
