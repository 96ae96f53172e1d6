"""Webhook delivery (`tminus.notify.send`) and the `notify` kind, against a real receiver on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers import tminus, write_runbook

from helpers_kinds import serving
from tminus.kinds import registry
from tminus.kinds.base import StepContext
from tminus.kinds.http import close_shared
from tminus.notify import Delivery, send
from tminus.runbook.models import Step
from tminus.runbook.monitor import Channel
from tminus.runbook.types import Retry
from tminus.templating.templater import Templater

SECRET_PATH = "/services/T0001/B0002/s3cr3tW3bh00kT0k3n"
DEADLINE = 10.0  # seconds any single test waits for a thread or a request


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver that records every request and fails the first ones as told.

    A failure is (status, headers), "close" (drop the connection without answering) or
    ("sleep", seconds) (answer 200 late).
    """

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    failures: list[Any] = field(default_factory=list)
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hook(self) -> str:
        return self.base + SECRET_PATH

    def fail(self, *failures: Any) -> None:
        self.failures.extend(failures)

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + DEADLINE
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"{len(self.requests)} requests, expected {count}"
            time.sleep(0.01)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with state.lock:
                state.requests.append(Received(self.command, self.path, dict(self.headers), body, time.monotonic()))
                action = state.failures.pop(0) if state.failures else (state.status, {})
            if action == "close":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if action[0] == "sleep":
                time.sleep(action[1])
                action = (200, {})
            status, headers = action
            payload = b"ok" if status < 300 else f"failure {status}".encode()
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out first

        do_PUT = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as httpd:
        state.port = httpd.server_address[1]
        yield state


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def channel(url: str, **kw: Any) -> Channel:
    retry = kw.pop("retry", {"attempts": 3, "interval": 0.05})
    return Channel(url=url, retry=Retry(**retry), **kw)


def assert_no_secret(delivery: Delivery) -> None:
    """The webhook path is a credential: never in the error, the URL shown or the attempts."""
    shown = json.dumps({"error": delivery.error, "url": delivery.url, "attempts": delivery.attempts})
    assert "s3cr3t" not in shown and "T0001" not in shown, shown


# --- delivery -------------------------------------------------------------------------------


def test_default_body_is_slack_compatible(receiver: Receiver) -> None:
    delivery = send(channel(receiver.hook), "deploy 1.2 starting ✈")
    assert delivery.ok and delivery.error is None
    assert delivery.status == 200
    assert delivery.url == f"{receiver.base}/***"
    [request] = receiver.requests
    assert request.method == "POST" and request.path == SECRET_PATH
    assert request.json() == {"text": "deploy 1.2 starting ✈"}
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(delivery.body) == {"text": "deploy 1.2 starting ✈"}
    assert [a["status"] for a in delivery.attempts] == [200]


def test_delivered_after_failing_once(receiver: Receiver) -> None:
    receiver.fail((500, {}))
    delivery = send(channel(receiver.hook), "hello")
    assert delivery.ok, delivery.error
    assert len(receiver.requests) == 2
    assert [a["attempt"] for a in delivery.attempts] == [1, 2]
    assert [a["status"] for a in delivery.attempts] == [500, 200]
    assert "HTTP 500" in delivery.attempts[0]["error"] and delivery.attempts[1]["error"] is None
    assert all(a["duration_ms"] >= 0 for a in delivery.attempts)
    assert receiver.requests[0].body == receiver.requests[1].body
    assert_no_secret(delivery)


def test_dropped_connection_and_408_are_retried(receiver: Receiver) -> None:
    receiver.fail("close", (408, {}))
    delivery = send(channel(receiver.hook), "hello")
    assert delivery.ok, delivery.error
    assert [a["status"] for a in delivery.attempts] == [None, 408, 200]
    assert "failed" in delivery.attempts[0]["error"]


def test_timeout_is_per_attempt_and_retried(receiver: Receiver) -> None:
    receiver.fail(("sleep", 1.5))
    delivery = send(channel(receiver.hook, timeout=0.3), "hello")
    assert delivery.ok, delivery.error
    assert "timed out after 0.3s" in delivery.attempts[0]["error"]
    assert delivery.attempts[0]["status"] is None


def test_custom_template_with_run_context_and_extra_names(receiver: Receiver) -> None:
    templater = Templater(
        vars={"version": "2.4.1"},
        environ={"HOOK": receiver.hook, "HOOK_TOKEN": "tok-abc-123"},
        secrets=["HOOK_TOKEN"],
        run={"environment": "prod"},
    )
    ch = channel(
        "{{ env.HOOK }}",
        headers={"Authorization": "Bearer {{ secrets.HOOK_TOKEN }}"},
        template=(
            '{"text": {{ message | tojson }}, "version": {{ vars.version | tojson }},'
            ' "env": {{ run.environment | tojson }}, "rule": {{ rule | tojson }}}'
        ),
    )
    delivery = send(
        ch,
        'pool "saturated"',
        render=lambda text, names: templater.render(text, None, names),
        extra={"rule": "pool saturated"},
    )
    assert delivery.ok, delivery.error
    [request] = receiver.requests
    assert request.path == SECRET_PATH
    assert request.json() == {"text": 'pool "saturated"', "version": "2.4.1", "env": "prod", "rule": "pool saturated"}
    assert request.headers["Authorization"] == "Bearer tok-abc-123"
    assert delivery.url == f"{receiver.base}/***"


def test_template_that_is_not_json_sends_nothing(receiver: Receiver) -> None:
    ch = channel(receiver.hook, template='{"text": {{ message }}}')
    templater = Templater(vars={}, environ={}, secrets=[])
    delivery = send(ch, "no quotes", render=lambda text, names: templater.render(text, None, names))
    assert not delivery.ok
    assert delivery.attempts == []
    assert delivery.error is not None
    assert "channel template did not render valid JSON" in delivery.error
    assert "tojson" in delivery.error  # the hint how to fix it
    assert receiver.requests == []
    assert_no_secret(delivery)


def test_undefined_name_in_the_template_sends_nothing(receiver: Receiver) -> None:
    templater = Templater(vars={}, environ={}, secrets=[])
    ch = channel(receiver.hook, template='{"text": {{ message | tojson }}, "who": {{ vars.owner | tojson }}}')
    delivery = send(ch, "hi", render=lambda text, names: templater.render(text, None, names))
    assert not delivery.ok and delivery.attempts == [] and receiver.requests == []
    assert delivery.error == "cannot render the channel template: undefined name vars.owner"


def test_without_render_texts_are_literal(receiver: Receiver) -> None:
    delivery = send(channel(receiver.hook, template='{"text": "{{ message }}"}'), "ignored")
    assert delivery.ok, delivery.error
    assert receiver.requests[0].json() == {"text": "{{ message }}"}


def test_client_error_is_not_retried(receiver: Receiver) -> None:
    receiver.status = 404
    delivery = send(channel(receiver.hook), "hello")
    assert not delivery.ok
    assert len(receiver.requests) == 1 and len(delivery.attempts) == 1
    assert delivery.status == 404
    assert delivery.error is not None
    assert delivery.error.startswith(f"HTTP 404 from {receiver.base}/***: not retried")
    assert_no_secret(delivery)


def test_server_errors_exhaust_the_attempts(receiver: Receiver) -> None:
    receiver.status = 503
    delivery = send(channel(receiver.hook, retry={"attempts": 3, "interval": 0.01}), "hello")
    assert not delivery.ok
    assert len(receiver.requests) == 3
    assert delivery.status == 503
    assert delivery.error is not None
    assert "HTTP 503" in delivery.error and "gave up after 3 attempts" in delivery.error
    assert_no_secret(delivery)


def test_connection_refused_exhausts_the_attempts() -> None:
    url = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"
    delivery = send(channel(url, retry={"attempts": 3, "interval": 0.01}), "hello")
    assert not delivery.ok
    assert len(delivery.attempts) == 3
    assert all(a["status"] is None for a in delivery.attempts)
    assert delivery.status is None
    assert delivery.error is not None
    assert "connection refused" in delivery.error and "gave up after 3 attempts" in delivery.error
    assert_no_secret(delivery)


def test_waits_follow_interval_backoff_and_max_interval(receiver: Receiver) -> None:
    receiver.fail((500, {}), (500, {}), (500, {}))
    retry = {"attempts": 4, "interval": 0.1, "backoff": 2.0, "max_interval": 0.15}
    delivery = send(channel(receiver.hook, retry=retry), "hello")
    assert delivery.ok, delivery.error
    times = [r.at for r in receiver.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 3
    # 0.1, then 0.2 capped to 0.15, then 0.4 capped to 0.15
    assert gaps[0] >= 0.09
    assert gaps[1] >= 0.14 and gaps[2] >= 0.14
    assert gaps[2] < 0.4  # without the cap it would be 0.4 at least


def test_retry_after_replaces_the_interval(receiver: Receiver) -> None:
    # A long interval that Retry-After: 0 overrides: the second request comes long before it.
    receiver.fail((429, {"Retry-After": "0"}))
    delivery = send(channel(receiver.hook, retry={"attempts": 2, "interval": 20.0}), "hello")
    assert delivery.ok, delivery.error
    assert receiver.requests[1].at - receiver.requests[0].at < 10.0
    # and a Retry-After longer than the interval is waited for
    receiver.requests.clear()
    receiver.fail((503, {"Retry-After": "1"}))
    delivery = send(channel(receiver.hook, retry={"attempts": 2, "interval": 0.01}), "hello")
    assert delivery.ok, delivery.error
    assert receiver.requests[1].at - receiver.requests[0].at >= 0.95


def test_retry_timeout_stops_before_it_is_exceeded(receiver: Receiver) -> None:
    receiver.status = 500
    retry = {"attempts": 10, "interval": 0.2, "timeout": 0.5}
    delivery = send(channel(receiver.hook, retry=retry), "hello")
    assert not delivery.ok
    assert 1 <= len(delivery.attempts) < 10
    assert delivery.error is not None and "retry timeout of 0.5s" in delivery.error


def test_cancel_stops_the_retry_wait(receiver: Receiver) -> None:
    receiver.status = 500
    cancel = threading.Event()
    result: list[Delivery] = []
    thread = threading.Thread(
        target=lambda: result.append(
            send(channel(receiver.hook, retry={"attempts": 3, "interval": 60.0}), "hello", cancel=cancel)
        ),
        daemon=True,
    )
    thread.start()
    receiver.wait_for(1)
    cancel.set()
    thread.join(DEADLINE)
    assert not thread.is_alive(), "the retry wait ignored the cancellation"
    [delivery] = result
    assert not delivery.ok and len(delivery.attempts) == 1
    assert delivery.error is not None and "cancelled" in delivery.error


def test_given_client_is_used_and_left_open(receiver: Receiver) -> None:
    seen: list[str] = []
    with httpx.Client(event_hooks={"request": [lambda request: seen.append(str(request.url))]}) as client:
        delivery = send(channel(receiver.hook), "hello", client=client)
        assert delivery.ok, delivery.error
        assert not client.is_closed
    assert seen == [receiver.hook]


def test_invalid_url_is_not_retried() -> None:
    delivery = send(channel("ftp://example.invalid/s3cr3t/T0001"), "hello")
    assert not delivery.ok and len(delivery.attempts) == 1
    assert delivery.error is not None and "invalid webhook URL ftp://example.invalid/***" in delivery.error
    assert_no_secret(delivery)


# --- the kind, called as the engine calls it ----------------------------------------------


def notify_ctx(step: dict[str, Any], tmp_path: Path, channels: dict[str, Channel], shared: dict[str, Any],
               templater: Templater | None = None) -> tuple[Any, StepContext]:
    parsed = Step.model_validate(step)
    parsed._key = "phases[0].steps[0]"
    t = templater or Templater(vars={}, environ={}, secrets=[], run={"environment": "staging"})
    config = t.render_config(parsed.config)
    ctx = StepContext(
        step=parsed, base_dir=tmp_path, timeout=None, shared=shared, channels=channels,
        render=lambda text, names: t.render(text, None, names),
    )
    return config, ctx


def test_kind_delivers_to_a_named_channel(receiver: Receiver, tmp_path: Path) -> None:
    shared: dict[str, Any] = {}
    receiver.fail((500, {}))
    config, ctx = notify_ctx(
        {"notify": {"channel": "ops", "message": "starting in {{ run.environment }}"}}, tmp_path,
        {"ops": channel(receiver.hook, template='{"msg": {{ message | tojson }}, "env": "{{ run.environment }}"}')},
        shared,
    )
    try:
        obs = registry.get("notify").execute(config, ctx)
        assert "http.client" in shared  # the run's shared client carried it
    finally:
        close_shared(shared)
    assert obs.error is None
    assert obs.values == {"status": 200, "attempts": 2, "delivered": True}
    assert obs.outputs == {"status": 200, "attempts": 2}
    assert receiver.requests[-1].json() == {"msg": "starting in staging", "env": "staging"}
    assert obs.evidence["url"] == f"{receiver.base}/***"
    assert [a["status"] for a in obs.evidence["attempts"]] == [500, 200]
    assert json.loads(obs.evidence["body"]) == {"msg": "starting in staging", "env": "staging"}


def test_kind_with_a_url_and_a_failure(receiver: Receiver, tmp_path: Path) -> None:
    receiver.status = 410
    shared: dict[str, Any] = {}
    config, ctx = notify_ctx({"notify": {"url": receiver.hook, "message": "hi"}}, tmp_path, {}, shared)
    try:
        obs = registry.get("notify").execute(config, ctx)
    finally:
        close_shared(shared)
    assert obs.values == {"status": 410, "attempts": 1, "delivered": False}
    assert obs.error is not None
    assert obs.error.startswith("notification not delivered: HTTP 410")
    assert "s3cr3t" not in obs.error + json.dumps(obs.evidence)


def test_kind_names_the_known_channels(tmp_path: Path) -> None:
    config, ctx = notify_ctx(
        {"notify": {"channel": "opz", "message": "hi"}}, tmp_path,
        {"ops": channel("http://127.0.0.1:9/x"), "dev": channel("http://127.0.0.1:9/y")}, {},
    )
    obs = registry.get("notify").execute(config, ctx)
    assert obs.error == "no channel named 'opz' under channels: (known: dev, ops)"


# --- through the real engine and CLI ------------------------------------------------------


RUNBOOK = """
    name: announce
    environments:
      staging: {}
      prod: {}
    channels:
      ops:
        url: "{{ env.OPS_HOOK }}"
        retry: {attempts: 3, interval: 50ms}
    phases:
      - name: announce
        steps:
          - id: told
            notify: {channel: ops, message: "{{ run.t_plus }} maintenance starting in {{ run.environment }}"}
          - run: "echo {{ steps.told.status }} {{ steps.told.attempts }} > told.txt"
"""


def test_runbook_notifies_through_the_cli(receiver: Receiver, tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    receiver.fail((502, {}))
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    proc = tminus("run", "runbook.yaml", "-e", "staging", "--ledger", ledger, "--json",
                  cwd=tmp_path, env={"OPS_HOOK": receiver.hook})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r.path for r in receiver.requests] == [SECRET_PATH, SECRET_PATH]
    text = receiver.requests[-1].json()["text"]
    assert text.startswith("T+00:00:") and text.endswith(" maintenance starting in staging"), text
    assert (tmp_path / "told.txt").read_text().split() == ["200", "2"]
    # the ledger keeps the evidence, with the webhook path hidden
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        data = "\n".join(row[0] for row in db.execute("SELECT data FROM tminus_events"))
    assert "s3cr3t" not in data
    assert f"{receiver.base}/***" in data


def test_undelivered_required_notification_fails_the_phase(receiver: Receiver, tmp_path: Path) -> None:
    # notify steps default to on_failure: continue; this announcement is made part of the procedure
    write_runbook(tmp_path, RUNBOOK.replace("            notify: {channel: ops",
                                            "            on_failure: rollback\n            notify: {channel: ops"))
    receiver.status = 403
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    proc = tminus("run", "runbook.yaml", "-e", "prod", "--ledger", ledger, "--json",
                  cwd=tmp_path, env={"OPS_HOOK": receiver.hook})
    assert proc.returncode == 11, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert "HTTP 403" in result["reason"] and "not retried" in result["reason"], result
    assert "s3cr3t" not in proc.stdout + proc.stderr
    assert len(receiver.requests) == 1
    assert not (tmp_path / "told.txt").exists()
