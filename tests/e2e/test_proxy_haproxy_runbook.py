"""The `proxy` kind with `driver: haproxy` in whole runs of the real `tminus` command, against a real
HAProxy: a switch proven through the proxy, maintenance on and off, and a later failure whose rollback
restores the routing recorded before (exit 11), read back from HAProxy itself."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers import run_json
from tests.servers.backend import backends
from tests.servers.haproxy import RETRY_AFTER, Haproxy, haproxy

from tminus.kinds.proxy_drivers.haproxy import Driver

pytestmark = pytest.mark.skipif(shutil.which("haproxy", path="/usr/sbin:/usr/bin") is None,
                                reason="HAProxy is not installed (.ci/run installs it)")


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Haproxy]:
    with backends("blue", "green") as b, haproxy(tmp_path / "haproxy",
                                                 {n: x.address for n, x in b.items()}) as h:
        yield h


def _step(h: Haproxy, **fields: Any) -> dict[str, Any]:
    return {"driver": "haproxy", "socket": h.socket, "backend": "app", "servers": {"blue": "blue", "green": "green"},
            "preview_backend": "app_preview", "maintenance_map": h.map, **fields}


def _write(tmp_path: Path, steps: list[dict[str, Any]]) -> None:
    runbook = {"name": "haproxy cutover", "phases": [{"name": "cutover", "steps": steps}]}
    (tmp_path / "runbook.yaml").write_text(json.dumps(runbook, indent=2))


def _served(h: Haproxy, n: int = 20) -> set[str]:
    with httpx.Client(timeout=5) as client:
        return {client.get(h.url).headers["x-release"] for _ in range(n)}


def _weights(h: Haproxy) -> dict[str, int]:
    spec = type("S", (), _step(h, socket_timeout=None))()
    return Driver(spec, h.folder).read().weights  # type: ignore[arg-type]


def test_switch_then_a_later_failure_restores_blue_read_back_from_haproxy(proxy: Haproxy, tmp_path: Path) -> None:
    assert _served(proxy) == {"blue"}
    _write(tmp_path, [
        {"id": "switch", "name": "all traffic to green", "proxy": _step(
            proxy, action="switch", to="green",
            prove={"url": proxy.url, "requests": 10, "expect": ['header "X-Release" == "green"']})},
        {"name": "a later step fails", "run": "exit 3"},
    ])
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 11, result
    assert _served(proxy) == {"blue"}
    weights = _weights(proxy)
    assert weights["blue"] > 0 and weights["green"] == 0, weights
    _code, shown = run_json("show", result["run_id"], cwd=tmp_path)
    done = {e["step_key"]: e["data"] for e in shown["events"] if e["type"] == "step.finished"}
    switch = next(v for k, v in done.items() if k.endswith("switch") or k.endswith("[0]"))
    assert switch["status"] == "ok" and switch["evidence"]["proof"]["statuses"] == {"200": 10}, switch
    assert any(k.endswith(".undo[auto]") and v["status"] == "ok" for k, v in done.items()), list(done)


def test_maintenance_on_then_off_through_the_kind(proxy: Haproxy, tmp_path: Path) -> None:
    _write(tmp_path, [
        {"name": "maintenance on", "proxy": _step(proxy, action="maintenance", maintenance=True,
                                                  prove={"url": proxy.url, "requests": 5})},
        {"name": "a check while in maintenance", "http": {"url": proxy.url}, "expect": ["status == 503"]},
        {"name": "maintenance off", "proxy": _step(proxy, action="maintenance", maintenance=False,
                                                   prove={"url": proxy.url, "requests": 5})},
    ])
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 0, result
    answer = httpx.get(proxy.url, timeout=5)
    assert answer.status_code == 200 and "retry-after" not in answer.headers
    _code, shown = run_json("show", result["run_id"], cwd=tmp_path)
    proofs = [e["data"]["evidence"]["proof"] for e in shown["events"]
              if e["type"] == "step.finished" and "proof" in e["data"].get("evidence", {})]
    assert [p["statuses"] for p in proofs] == [{"503": 5}, {"200": 5}], proofs
    assert RETRY_AFTER == "120"  # what the fixture's haproxy.cfg answers, which the default proof requires


def test_page_and_retry_after_are_refused_under_haproxy(proxy: Haproxy, tmp_path: Path) -> None:
    _write(tmp_path, [{"name": "maintenance on", "proxy": _step(proxy, action="maintenance", maintenance=True,
                                                                retry_after="30s")}])
    code, result = run_json("validate", "runbook.yaml", cwd=tmp_path)
    assert code == 78, result
    assert "retry_after" in json.dumps(result) and "haproxy.cfg" in json.dumps(result)
