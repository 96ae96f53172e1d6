"""HTTP checks side by side on the run's event loop (engine/checkgroup.py, kinds/http_loop.py), against
real servers on 127.0.0.1: the async executor observes exactly what the sync one does, a gate and a
verify of many checks give the results the sequential path gives, and their events reach the ledger
in grouped transactions, in the order they were emitted."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import write_runbook

from helpers_kinds import Server, http_server, json_response, make_ctx, serving
from tminus import events as ev
from tminus.engine.session import Options, Session
from tminus.events import Event
from tminus.kinds import registry
from tminus.kinds.aio import RunLoop
from tminus.kinds.base import Observation
from tminus.kinds.http import close_shared
from tminus.ledger import open_ledger
from tminus.ledger.writer import SqlRunWriter
from tminus.runbook.loader import load_runbook

FLAKY: dict[str, int] = {}


@pytest.fixture
def server() -> Iterator[Server]:
    with http_server() as srv:

        @srv.route("GET", "/health")
        def health(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            return json_response(200, {"ok": True, "version": "1.2"}, **{"X-Version": "1.2"})

        @srv.route("GET", "/busy")
        def busy(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            return 503, {"Retry-After": "30", "Content-Type": "text/plain"}, b"overloaded"

        @srv.route("GET", "/slow")
        def slow(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            time.sleep(1.5)
            return 200, {}, b"late"

        @srv.route("GET", "/moved")
        def moved(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            return 302, {"Location": "/health"}, b""

        @srv.route("GET", "/big")
        def big(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            return 200, {"Content-Type": "text/plain"}, b"y" * 10_000

        @srv.route("GET", "/echo")
        def echo(h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
            return json_response(200, {"body": body.decode(), "auth": h.headers.get("Authorization"),
                                       "cookie": h.headers.get("Cookie")})

        @srv.route("GET", "/login")
        def login(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            return 200, {"Set-Cookie": "session=s3ss10n; Path=/"}, b"welcome"

        @srv.route("GET", "/flaky")
        def flaky(h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            FLAKY["n"] = FLAKY.get("n", 0) + 1
            return (200, {}, b"up") if FLAKY["n"] % 3 == 0 else (503, {}, b"down")

        yield srv


# --- the two executors observe the same ------------------------------------------------------------


def _both(spec: Any, tmp_path: Path, timeout: float | None = None) -> tuple[Observation, Observation]:
    kind = registry.get("http")
    assert kind.execute_async is not None
    shared_sync: dict[str, Any] = {}
    shared_async: dict[str, Any] = {}
    loop = RunLoop()
    try:
        ctx = make_ctx({"http": spec}, tmp_path, timeout=timeout, shared=shared_sync)
        sync = kind.execute(ctx.step.config, ctx)
        actx = make_ctx({"http": spec}, tmp_path, timeout=timeout, shared=shared_async)
        shared_async["aio.loop"] = loop
        looped = loop.run(kind.execute_async(actx.step.config, actx))
        close_shared(shared_async)
        close_shared(shared_sync)
    finally:
        loop.close()
    return sync, looped


def _comparable(obs: Observation) -> dict[str, Any]:
    """All but the clock: durations and the Date header."""
    def strip(d: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in d.items() if k not in ("duration", "duration_ms")}
        for name in ("headers", "response_headers"):
            if isinstance(out.get(name), dict):
                out[name] = {k: v for k, v in out[name].items() if k != "date"}
        return out

    return {"values": strip(obs.values), "outputs": strip(obs.outputs), "evidence": strip(obs.evidence),
            "error": obs.error, "timed_out": obs.timed_out, "failures": obs.failures}


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/health"


@pytest.mark.parametrize("case", ["json", "503", "redirect-not-followed", "redirect-followed", "big", "body-and-auth",
                                  "refused", "no-scheme", "bad-scheme"])
def test_the_async_executor_observes_what_the_sync_one_does(server: Server, tmp_path: Path, case: str) -> None:
    spec: Any = {
        "json": f"{server.url}/health",
        "503": f"{server.url}/busy",
        "redirect-not-followed": f"{server.url}/moved",
        "redirect-followed": {"url": f"{server.url}/moved", "follow_redirects": True},
        "big": f"{server.url}/big",
        "body-and-auth": {"url": f"{server.url}/echo?x=1", "body": "hello",
                          "headers": {"Authorization": "Bearer t0ken"}},
        "refused": _refused_url(),
        "no-scheme": "localhost-no-scheme/health",
        "bad-scheme": "ftp://127.0.0.1/x",
    }[case]
    sync, looped = _both(spec, tmp_path, timeout=5)
    assert _comparable(looped) == _comparable(sync)
    if case == "refused":
        assert looped.error is not None and "refused" in looped.error
    if case == "body-and-auth":
        assert looped.values["json"] == {"body": "hello", "auth": "Bearer t0ken", "cookie": None}
        assert looped.evidence["request_headers"]["Authorization"] == "***"


def test_a_timeout_reads_the_same_in_both(server: Server, tmp_path: Path) -> None:
    start = time.monotonic()
    sync, looped = _both(f"{server.url}/slow", tmp_path, timeout=0.3)
    assert time.monotonic() - start < 2.5  # neither waited for the 1.5 s answer
    assert looped.timed_out and sync.timed_out
    assert looped.error == sync.error
    assert looped.error is not None and "timed out after 0.3s (ReadTimeout)" in looped.error


def test_no_cookie_leaks_from_one_check_to_another(server: Server, tmp_path: Path) -> None:
    kind = registry.get("http")
    assert kind.execute_async is not None
    shared: dict[str, Any] = {}
    loop = RunLoop()
    shared["aio.loop"] = loop
    try:
        for path in ("/login", "/echo"):
            ctx = make_ctx({"http": f"{server.url}{path}"}, tmp_path, shared=shared)
            sync = kind.execute(ctx.step.config, ctx)
            looped = loop.run(kind.execute_async(ctx.step.config, ctx))
        assert sync.values["json"]["cookie"] is None
        assert looped.values["json"]["cookie"] is None
        close_shared(shared)
    finally:
        loop.close()


class _KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the connection stays open between requests

    def do_GET(self) -> None:
        body = str(self.client_address[1]).encode()  # the client's port: which connection asked
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_keep_alive_one_pool_for_the_run(tmp_path: Path) -> None:
    """Twenty checks one after another on the loop's client use one connection, not twenty; ten at
    once open at most ten."""
    kind = registry.get("http")
    assert kind.execute_async is not None
    shared: dict[str, Any] = {}
    loop = RunLoop()
    shared["aio.loop"] = loop

    async def together(url: str, n: int) -> list[Observation]:
        import asyncio

        ctxs = [make_ctx({"http": url}, tmp_path, shared=shared) for _ in range(n)]
        return list(await asyncio.gather(*(kind.execute_async(c.step.config, c) for c in ctxs)))  # type: ignore[misc]

    with serving(_KeepAlive) as httpd:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        try:
            one_by_one = {loop.run(together(url, 1))[0].values["body"] for _ in range(20)}
            at_once = {o.values["body"] for o in loop.run(together(url, 10))}
            close_shared(shared)
        finally:
            loop.close()
    assert len(one_by_one) == 1
    assert len(at_once) <= 10


# --- in a run: the same results, grouped writes, the order kept -------------------------------------


class _Counting:
    """The real writer's transactions, counted by the events each wrote."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.single: list[str] = []
        self.grouped: list[list[str]] = []
        append, append_many = SqlRunWriter.append, SqlRunWriter.append_many

        def one(writer: SqlRunWriter, event: Event) -> Any:
            self.single.append(event.type)
            return append(writer, event)

        def many(writer: SqlRunWriter, events: list[Event]) -> Any:
            self.grouped.append([e.type for e in events])
            return append_many(writer, events)

        monkeypatch.setattr(SqlRunWriter, "append", one)
        monkeypatch.setattr(SqlRunWriter, "append_many", many)


def _checks(server: Server, n: int, indent: str) -> str:
    check = f'{{http: "{server.url}/health", expect: ["status == 200", \'jsonpath "$.ok" == true\']}}'
    return "".join(f"{indent}- {check}\n" for _ in range(n))


def _session(tmp_path: Path, seen: list[Event] | None = None) -> tuple[Session, Any]:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    doc = load_runbook(tmp_path / "runbook.yaml")
    subscribers = [seen.append] if seen is not None else []
    return Session(doc, ledger, Options(environment="default", operator="tester", no_input=True),
                   subscribers=subscribers), ledger


def test_200_gate_checks_pass_in_grouped_transactions_in_emitted_order(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_runbook(tmp_path, "name: many\ngates:\n  - name: g\n    checks:\n" + _checks(server, 200, "      "))
    counted = _Counting(monkeypatch)
    seen: list[Event] = []
    session, ledger = _session(tmp_path, seen)
    with ledger:
        result = session.run(gates_only=True)
        assert result.status == "completed", result.reason
        events = ledger.events(session.run_id)
        assert ledger.verify(session.run_id) == []
    steps = [(e.type, e.step_key) for e in events if e.type.startswith("step.")]
    assert len(steps) == 400
    # the live display saw every event, as it was emitted, in the order the ledger holds
    assert [(e.type, e.step_key) for e in seen if e.type.startswith("step.")] == steps
    for key in {k for _, k in steps}:
        mine = [t for t, k in steps if k == key]
        assert mine == [ev.STEP_STARTED, ev.STEP_FINISHED]
    assert all(e.data["status"] == "ok" for e in events if e.type == ev.STEP_FINISHED)
    # no step event went alone; 400 of them in a handful of transactions
    assert not [t for t in counted.single if t.startswith("step.")]
    assert sum(len(g) for g in counted.grouped) == 400
    assert len(counted.grouped) < 100


def _finished(events: list[Any], section: str) -> list[dict[str, Any]]:
    """The section's step.finished data in the steps' order (side by side, they finish in any order),
    but for the clock: durations and the Date header."""
    out = []
    for e in events:
        if e.type != ev.STEP_FINISHED or e.data["section"] != section:
            continue
        data = {k: v for k, v in e.data.items() if k not in ("duration_ms", "section", "v")}
        data["evidence"] = {k: v for k, v in data["evidence"].items() if k != "duration_ms"}
        for where in (data["outputs"], data["evidence"]):
            for name in ("headers", "response_headers"):
                if isinstance(where.get(name), dict):
                    where[name] = {k: v for k, v in where[name].items() if k != "date"}
        out.append((int(e.step_key.rsplit("[", 1)[1].rstrip("]")), data))
    return [data for _, data in sorted(out, key=lambda pair: pair[0])]


def test_verify_on_the_loop_gives_what_the_sequential_phase_gives(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Passing, failing, timed-out, retried, redirected and secret-bearing checks: as verify checks (side
    by side on the loop) and as phase steps (one by one, the sync executor), the same step.finished."""
    monkeypatch.setenv("API_TOKEN", "tok-SECRET-42")
    checks = [
        f'{{http: "{server.url}/health", expect: ["status == 200"]}}',
        f'{{http: "{server.url}/busy"}}',
        f'{{http: "{server.url}/busy", expect: ["status == 503", \'body contains "overloaded"\']}}',
        f'{{http: "{server.url}/slow", timeout: 0.3}}',
        f'{{http: "{server.url}/flaky", retry: {{attempts: 3, interval: 0.05}}}}',
        f'{{http: {{url: "{server.url}/moved", follow_redirects: true}}, expect: ["status == 200"]}}',
        f'{{http: {{url: "{server.url}/echo?t={{{{ secrets.API_TOKEN }}}}", '
        f'headers: {{X-Token: "{{{{ secrets.API_TOKEN }}}}"}}}}, expect: ["status == 200"]}}',
    ]
    results = {}
    for where in ("verify", "phase"):
        folder = tmp_path / where
        folder.mkdir()
        if where == "verify":
            body = "phases:\n  - name: p\n    steps:\n      - run: \"true\"\nverify:\n"
            body += "".join(f"  - {c}\n" for c in checks)
        else:
            body = "phases:\n  - name: p\n    steps:\n" + "".join(
                f"      - {c[:-1]}, on_failure: continue}}\n" for c in checks)  # every step runs
        write_runbook(folder, "name: same\nsecrets: [API_TOKEN]\n" + body)
        FLAKY.clear()
        session, ledger = _session(folder)
        with ledger:
            session.run()
            events = ledger.events(session.run_id)
            assert ledger.verify(session.run_id) == []
        results[where] = _finished(events, "verify" if where == "verify" else "phase:p")
        text = repr([e.data for e in events])
        i = text.find("tok-SECRET-42")
        assert i < 0 and "***" in text, (where, text[max(0, i - 300):i + 100])
    assert [r["status"] for r in results["verify"]] == ["ok", "failed", "ok", "failed", "ok", "ok", "ok"]
    assert results["verify"][4]["attempts"] == 3
    for verify, phase in zip(results["verify"], results["phase"], strict=True):
        assert _placeless(verify) == _placeless(phase)


def _placeless(data: dict[str, Any]) -> dict[str, Any]:
    """Where the expectation is written differs (file:line:col); what was judged may not."""
    return {**data, "message": re.sub(r"\S+runbook\.yaml:\d+:\d+", "HERE", data["message"]),
            "verdicts": [{k: v for k, v in d.items() if k != "location"} for d in data["verdicts"]]}


def test_a_verify_check_reading_another_waits_for_it(server: Server, tmp_path: Path) -> None:
    """Verify checks run side by side only when none reads another's outputs: a reader comes after."""
    write_runbook(tmp_path, f"""
        name: chain
        phases:
          - name: p
            steps:
              - run: "true"
        verify:
          - {{id: first, http: "{server.url}/health"}}
          - {{http: "{server.url}/health"}}
          - {{http: "{server.url}/echo?v={{{{ steps.first.json.version }}}}", expect: ["status == 200"]}}
        """)
    session, ledger = _session(tmp_path)
    with ledger:
        result = session.run()
        events = ledger.events(session.run_id)
    assert result.status == "completed", result.reason
    started = [e for e in events if e.type == ev.STEP_STARTED and e.data.get("section") == "verify"]
    assert started[-1].data["config"]["url"].endswith("/echo?v=1.2")
    order = [(e.type, e.step_key) for e in events if e.type in (ev.STEP_STARTED, ev.STEP_FINISHED)]
    assert order.index((ev.STEP_FINISHED, "verify[0]")) < order.index((ev.STEP_STARTED, "verify[2]"))


def test_an_interrupt_stops_the_group_and_leaves_it_resumable(server: Server, tmp_path: Path) -> None:
    """A stop while slow checks are in flight: they end at once, unfinished (no step.finished), and
    the run is interrupted, resumable."""
    arrived: list[float] = []

    def hold(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
        arrived.append(time.monotonic())
        time.sleep(3)
        return 200, {}, b"late"

    server.handler.routes[("GET", "/hold")] = hold
    slow = f'{{http: "{server.url}/hold", timeout: 30}}'
    write_runbook(tmp_path, "name: stop\ngates:\n  - name: g\n    checks:\n" + f"      - {slow}\n" * 4)
    session, ledger = _session(tmp_path)
    asked: list[float] = []

    def interrupt_once_all_wait() -> None:
        deadline = time.monotonic() + 30
        while len(arrived) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        asked.append(time.monotonic())
        session.stop.request("interrupt", "test", "test")

    threading.Thread(target=interrupt_once_all_wait, daemon=True).start()
    with ledger:
        result = session.run()
        ended = time.monotonic()
        events = ledger.events(session.run_id)
        assert ledger.verify(session.run_id) == []
    assert len(arrived) == 4 and ended - asked[0] < 1.5  # cut short, not the 3 s of the answers
    assert result.status == "interrupted"
    assert [e.type for e in events].count(ev.STEP_STARTED) == 4
    assert ev.STEP_FINISHED not in [e.type for e in events]


def test_monitor_probes_share_the_loop_and_its_connections(tmp_path: Path) -> None:
    """A monitor window's http probes go through the run's loop client: every sample recorded, the
    answers read as the rules read them, over kept-alive connections (not one per sample)."""
    with serving(_KeepAlive) as httpd:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        write_runbook(tmp_path, f"""
            name: watched
            phases:
              - name: p
                steps:
                  - run: "true"
            monitor:
              duration: 2s
              interval: 100ms
              probes:
                - name: a
                  http: {{url: "{url}"}}
                - name: b
                  http: {{url: "{url}"}}
              rules:
                - name: errors
                  when: "status >= 500"
                  consecutive: 2
                  probe: a
                  action: rollback
            """)
        session, ledger = _session(tmp_path)
        with ledger:
            result = session.run()
            events = ledger.events(session.run_id)
    assert result.status == "completed", result.reason
    samples = [e.data for e in events if e.type == ev.MONITOR_SAMPLE and e.data["stage"] == "window"]
    assert len(samples) >= 6 and all(s["error"] is None and s["values"]["status"] == 200 for s in samples)
    clients = {s["values"]["body"] for s in samples}
    assert len(clients) <= 2  # two probes at once: at most two connections for the whole window
