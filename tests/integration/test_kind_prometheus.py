"""The `prometheus` kind against a real Prometheus server scraping a tiny exporter on 127.0.0.1."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest
from tests.helpers import tminus, write_runbook

from helpers_kinds import http_server, run_step, serving
from tminus.kinds import registry
from tminus.kinds.base import Observation

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
START_DEADLINE = 30.0  # seconds for Prometheus to start and scrape the exporter once

pytestmark = pytest.mark.skipif(
    not os.access(PROMETHEUS, os.X_OK),
    reason="needs the prometheus binary (Debian: apt-get install --no-install-recommends prometheus)",
)


@dataclass
class Exporter:
    """Serves /metrics in the text exposition format; the test sets the values."""

    gauge: float = 42.0
    counters: dict[str, float] = field(default_factory=lambda: {"200": 10.0, "500": 3.0})
    port: int = 0

    def exposition(self) -> bytes:
        lines = [
            "# HELP tminus_test_queue_depth Jobs waiting.",
            "# TYPE tminus_test_queue_depth gauge",
            f"tminus_test_queue_depth {self.gauge}",
            "# HELP tminus_test_requests_total Requests served.",
            "# TYPE tminus_test_requests_total counter",
            *(f'tminus_test_requests_total{{code="{code}"}} {value}' for code, value in self.counters.items()),
        ]
        return ("\n".join(lines) + "\n").encode()


@dataclass
class Prom:
    url: str
    exporter: Exporter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    state = Exporter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = state.exposition() if self.path.startswith("/metrics") else b"not found"
            self.send_response(200 if self.path.startswith("/metrics") else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as httpd:
        state.port = httpd.server_address[1]
        yield state


@pytest.fixture(scope="module")
def prom(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    root = tmp_path_factory.mktemp("prometheus")
    (root / "prom.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: app\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter.port}']\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={root / 'prom.yml'}", f"--storage.tsdb.path={root / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _wait_for_data(proc, url, root / "prometheus.log")
        yield Prom(url, exporter)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def _wait_for_data(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            reply = httpx.get(f"{url}/api/v1/query", params={"query": "tminus_test_queue_depth"}, timeout=2).json()
            if reply.get("data", {}).get("result"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    pytest.fail(f"prometheus had no data within {START_DEADLINE:g}s:\n{log.read_text()[-3000:]}")


def query(prom_url: str, promql: str, tmp_path: Path, **step: Any) -> Observation:
    return run_step({"prometheus": {"url": prom_url, "query": promql}, **step}, tmp_path)


def test_registered_queries() -> None:
    assert registry.get("prometheus").queries == ("value", "series", "result_type", "json", "status")


def test_gauge_value(prom: Prom, tmp_path: Path) -> None:
    obs = query(prom.url, "tminus_test_queue_depth", tmp_path)
    assert obs.error is None, obs.error
    assert obs.values["value"] == 42.0
    assert obs.values["result_type"] == "vector"
    assert obs.values["status"] == 200
    assert obs.values["json"]["status"] == "success"
    [series] = obs.values["series"]
    assert series["labels"]["__name__"] == "tminus_test_queue_depth"
    assert series["labels"]["job"] == "app"
    assert obs.outputs["value"] == 42.0
    assert obs.evidence["url"] == f"{prom.url}/api/v1/query"
    assert obs.evidence["query"] == "tminus_test_queue_depth"
    assert obs.evidence["duration_ms"] >= 0


def test_value_follows_the_exporter(prom: Prom, tmp_path: Path) -> None:
    prom.exporter.gauge = 7.5
    try:
        deadline = time.monotonic() + 15
        while True:
            obs = query(prom.url, "tminus_test_queue_depth", tmp_path)
            if obs.values.get("value") == 7.5:
                break
            assert time.monotonic() < deadline, f"still {obs.values.get('value')}"
            time.sleep(0.2)
    finally:
        prom.exporter.gauge = 42.0


def test_series_with_labels(prom: Prom, tmp_path: Path) -> None:
    obs = query(prom.url, "sum by (code) (tminus_test_requests_total)", tmp_path)
    assert obs.error is None, obs.error
    series = sorted(obs.values["series"], key=lambda s: s["labels"]["code"])
    assert series == [{"labels": {"code": "200"}, "value": 10.0}, {"labels": {"code": "500"}, "value": 3.0}]
    assert obs.evidence["series_count"] == 2


def test_scalar_and_special_values(prom: Prom, tmp_path: Path) -> None:
    obs = query(prom.url, "scalar(sum(tminus_test_requests_total))", tmp_path)
    assert obs.error is None, obs.error
    assert (obs.values["result_type"], obs.values["value"], obs.values["series"]) == ("scalar", 13.0, [])
    assert query(prom.url, "1 / 0", tmp_path).values["value"] == math.inf
    assert math.isnan(query(prom.url, "0 / 0", tmp_path).values["value"])


def test_range_selector_gives_a_matrix(prom: Prom, tmp_path: Path) -> None:
    obs = query(prom.url, "tminus_test_queue_depth[1m]", tmp_path)
    assert obs.error is None, obs.error
    assert obs.values["result_type"] == "matrix"
    [series] = obs.values["series"]
    assert series["values"] and series["value"] == series["values"][-1]


def test_empty_vector_is_no_data(prom: Prom, tmp_path: Path) -> None:
    obs = query(prom.url, 'tminus_test_queue_depth{job="nope"}', tmp_path)
    assert obs.error is None, obs.error
    assert "value" not in obs.values  # never an invented 0
    assert obs.values["series"] == [] and obs.values["result_type"] == "vector"


def test_promql_syntax_error_quotes_prometheus(prom: Prom, tmp_path: Path) -> None:
    obs = query(prom.url, "sum(rate(tminus_test_requests_total[5m]", tmp_path)
    assert obs.error is not None
    assert obs.error.startswith("Prometheus rejected the query (HTTP 400, bad_data): ")
    assert "parse error" in obs.error


def test_connection_refused(tmp_path: Path) -> None:
    obs = query(f"http://127.0.0.1:{free_port()}", "up", tmp_path)
    assert obs.error is not None and "connection refused" in obs.error
    assert "/api/v1/query" in obs.error


def test_not_a_prometheus_server(tmp_path: Path) -> None:
    with http_server() as srv:
        obs = query(srv.url, "up", tmp_path)
    assert obs.error is not None
    assert "HTTP 404 with a body that is not JSON" in obs.error and "not found" in obs.error


def test_headers_are_sent(tmp_path: Path) -> None:
    with http_server() as srv:

        @srv.route("GET", "/api/v1/query")
        def answer(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            body = {"status": "success", "data": {"resultType": "vector", "result": []}}
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

        assert query(srv.url + "/", "up", tmp_path).error is None  # a trailing slash is fine
        obs = run_step(
            {"prometheus": {"url": srv.url, "query": 'up{job="x"}', "headers": {"X-Scope-OrgID": "tenant-1"}}},
            tmp_path,
        )
        method, path, headers, _body = srv.requests[-1]
    assert obs.error is None, obs.error
    assert method == "GET" and path.startswith("/api/v1/query?query=")
    assert unquote_plus(path.split("=", 1)[1]) == 'up{job="x"}'
    assert headers["X-Scope-OrgID"] == "tenant-1"


def test_gate_through_the_cli(prom: Prom, tmp_path: Path) -> None:
    write_runbook(tmp_path, f"""
        name: prom-gates
        gates:
          - name: metrics
            checks:
              - name: queue is short
                prometheus: {{url: "{prom.url}", query: tminus_test_queue_depth}}
                expect: ["value < 100", "series count == 1", 'result_type == "vector"']
              - name: errors are rare
                prometheus: {{url: "{prom.url}", query: 'tminus_test_requests_total{{code="503"}}'}}
                expect: ["value < 1"]
        phases:
          - name: change
            steps:
              - run: "touch changed.txt"
    """)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    proc = tminus("gate", "runbook.yaml", "--ledger", ledger, "--json", cwd=tmp_path)
    assert proc.returncode == 10, proc.stdout + proc.stderr
    failures = json.loads(proc.stdout)["failures"]
    assert len(failures) == 1, failures  # the first check passed
    assert "value < 1: no data" in failures[0]
    assert '"result":[]' in failures[0]  # Prometheus' own answer is shown under the verdict
