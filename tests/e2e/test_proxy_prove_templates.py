"""A `proxy` step's `prove` is a template like the rest of the step: its url, headers and expectations
read the run's variables (a site's port, the release a run makes live), in whole runs of the real
`tminus` against a real nginx. Found by examples/blue-green, whose ports are variables: the proof
used to request the literal text `http://127.0.0.1:{{ vars.port }}/`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers import run_json
from tests.servers.backend import Backend, backends
from tests.servers.nginx import NGINX, Nginx, nginx

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason=f"{NGINX} is not installed")


@pytest.fixture
def blue_green(tmp_path: Path) -> Iterator[tuple[Nginx, dict[str, Backend]]]:
    with backends("blue", "green") as b, nginx(tmp_path / "nginx", {n: [x.address] for n, x in b.items()},
                                                "blue") as ng:
        yield ng, b


def _runbook(tmp_path: Path, ng: Nginx) -> None:
    spec = ng.spec(action="switch", to="{{ vars.to }}", prove={
        "url": "http://127.0.0.1:{{ vars.port }}/", "requests": 10,
        "headers": {"X-Asked-For": "{{ vars.release }}"},
        "expect": ["status == 200", 'header "X-Release" == "{{ vars.release }}"']})
    runbook = {"name": "prove-templates", "vars": {"port": ng.port, "to": "green", "release": "green"},
               "phases": [{"name": "cutover", "steps": [{"name": "switch", "proxy": spec}]}]}
    (tmp_path / "runbook.yaml").write_text(json.dumps(runbook, indent=2))


def _proofs(tmp_path: Path, run_id: str) -> list[dict[str, Any]]:
    code, shown = run_json("show", run_id, cwd=tmp_path)
    assert code == 0
    return [e["data"]["evidence"]["proof"] for e in shown["events"]
            if e["type"] == "step.finished" and "proof" in e["data"].get("evidence", {})]


def test_the_proof_renders_its_url_headers_and_expectations(blue_green: Any, tmp_path: Path) -> None:
    ng, _b = blue_green
    _runbook(tmp_path, ng)
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 0, result
    [proof] = _proofs(tmp_path, result["run_id"])
    assert proof["passed"] == 10 and proof["statuses"] == {"200": 10}, proof
    assert proof["expect"] == ["status == 200", 'header "X-Release" == "green"'], proof
    assert httpx.get(ng.url, timeout=5).headers["x-release"] == "green"


def test_a_rendered_expectation_that_fails_rolls_the_switch_back(blue_green: Any, tmp_path: Path) -> None:
    ng, _b = blue_green
    _runbook(tmp_path, ng)
    # green is switched to, but the run says it makes `blue` live: the proof must fail on the header
    code, result = run_json("run", "runbook.yaml", "--no-input", "--var", "release=blue", cwd=tmp_path)
    assert code == 11, result
    assert 'expected "blue", got "green"' in result["reason"], result
    proofs = _proofs(tmp_path, result["run_id"])
    assert proofs[0]["failed"] == 10 and proofs[0]["expect"][1] == 'header "X-Release" == "blue"', proofs
    assert httpx.get(ng.url, timeout=5).headers["x-release"] == "blue"  # the derived undo restored blue
