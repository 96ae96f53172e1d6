"""`tminus validate` refuses a `proxy` step it cannot run, at the line of the mistake; the target
state of each action; the nginx include as rendered."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tminus.errors import RunbookError
from tminus.kinds.proxy import target_of
from tminus.kinds.proxy_drivers import nginx_conf
from tminus.kinds.proxy_drivers.base import RoutingState
from tminus.kinds.proxy_drivers.procnet import _encoded
from tminus.runbook.loader import load_runbook
from tminus.runbook.proxy_spec import ProxySpec

HEAD = """
name: proxy
phases:
  - name: p
    steps:
      - proxy:
          driver: nginx
          config: routing.conf
          conf: nginx.conf
          pid_file: nginx.pid
          upstreams: {blue: ["127.0.0.1:8001"], green: ["127.0.0.1:8002"]}
"""


def _problems(tmp_path: Path, extra: str, head: str = HEAD) -> str:
    path = tmp_path / "runbook.yaml"
    path.write_text(textwrap.dedent(head).lstrip() + textwrap.indent(textwrap.dedent(extra), " " * 10))
    with pytest.raises(RunbookError) as info:
        load_runbook(path)
    return str(info.value)


def test_a_good_step_loads(tmp_path: Path) -> None:
    path = tmp_path / "runbook.yaml"
    path.write_text(textwrap.dedent(HEAD).lstrip() + "          action: switch\n          to: green\n")
    assert load_runbook(path).runbook.phases[0].steps[0].kind == "proxy"


@pytest.mark.parametrize(("extra", "line", "said"), [
    ("action: switch\nto: purple\n", 12, "unknown upstream 'purple'; the step knows: blue, green"),
    ("action: switch\n", 11, "switch needs 'to'"),
    ("action: weights\nweights: {blue: 0, green: 0}\n", 12, "the weights add up to 0"),
    ("action: weights\nweights: {blue: 50, red: 50}\n", 12, "unknown upstream 'red'"),
    ("action: weights\nweights: {blue: -1, green: 5}\n", 12, "negative"),
    ("action: maintenance\n", 11, "maintenance needs 'maintenance: true'"),
    ("action: switch\nto: green\nsocket: /run/haproxy.sock\n", 13, "'socket' is for driver haproxy"),
    ("action: switch\nto: green\nprove: {url: 'http://x/', expect: ['status === 200']}\n", 13, "bad expectation"),
    ("action: drain\nfrom: purple\n", 12, "unknown upstream 'purple'"),
])
def test_refusals_point_at_the_line(tmp_path: Path, extra: str, line: int, said: str) -> None:
    text = _problems(tmp_path, extra)
    assert said in text, text
    assert f"runbook.yaml:{line}:" in text, text


def test_files_outside_the_roots_are_refused(tmp_path: Path) -> None:
    text = _problems(tmp_path, "action: maintenance\nmaintenance: true\npage: /srv/www/maintenance.html\n")
    assert "the maintenance page '/srv/www/maintenance.html' is outside the folders" in text, text
    assert "runbook.yaml:13:" in text and "roots:" in text


def test_haproxy_needs_its_fields_and_names_upstreams_by_servers(tmp_path: Path) -> None:
    head = "name: proxy\nphases:\n  - name: p\n    steps:\n      - proxy:\n          driver: haproxy\n"
    text = _problems(tmp_path, "action: switch\nto: green\n", head)
    assert "driver haproxy needs 'socket'" in text and "needs 'servers'" in text
    ok = tmp_path / "ok.yaml"
    ok.write_text(head + "          action: switch\n          to: green\n          socket: /run/h.sock\n"
                  "          backend: app\n          servers: {blue: b1, green: g1}\n")
    assert load_runbook(ok).runbook.phases[0].steps[0].proxy is not None


def _spec(**fields: object) -> ProxySpec:
    return ProxySpec.model_validate({"driver": "nginx", "upstreams": {"blue": ["a:1"], "green": ["b:1"]}, **fields})


def test_target_states() -> None:
    before = RoutingState({"blue": 100, "green": 0}, maintenance=False, preview="green")
    assert target_of(_spec(action="switch", to="green"), before) == RoutingState({"blue": 0, "green": 100},
                                                                                 False, "green")
    assert target_of(_spec(action="weights", weights={"green": 10}), before).weights == {"blue": 0, "green": 10}
    assert target_of(_spec(action="maintenance", maintenance=True), before).maintenance is True
    assert target_of(_spec(action="preview"), before).preview is None
    with pytest.raises(ValueError, match="routes no traffic yet"):
        target_of(_spec(action="maintenance", maintenance=True), RoutingState())
    with pytest.raises(ValueError, match="unknown upstream"):
        target_of(_spec(action="switch", to="{{ vars.x }}"), before)


def test_nginx_include_weights_and_state_round_trip(tmp_path: Path) -> None:
    ups = {"blue": ["127.0.0.1:1", "127.0.0.1:2"], "green": ["127.0.0.1:3"]}
    state = RoutingState({"blue": 90, "green": 10}, maintenance=False, preview=None)
    text = nginx_conf.render(state, ups, tmp_path / "r.conf")
    # an upstream's weight is shared by its servers: blue 2 x 45, green 1 x 10 (x lcm 2: 90, 90, 20)
    assert "server 127.0.0.1:1 weight=90;" in text and "server 127.0.0.1:3 weight=20;" in text
    assert nginx_conf.parse_state(text)[0] == state
    assert nginx_conf.config_hash(text) in text.split("location = /.tminus/config")[1]
    down = nginx_conf.render(RoutingState({"blue": 0, "green": 100}), ups, tmp_path / "r.conf")
    assert "server 127.0.0.1:1 down;" in down
    maint = nginx_conf.render(RoutingState({"blue": 100}, maintenance=True), ups, tmp_path / "r.conf",
                              details={"retry_after": 29.5, "exempt": ["/healthz"], "page": "/p/m.html"})
    assert "add_header Retry-After 30 always;" in maint and 'location ^~ "/healthz"' in maint
    assert 'alias "/p/m.html";' in maint and f"server unix:{tmp_path}/r.conf.sock;" in maint


def test_proc_net_addresses() -> None:
    assert "0100007F:1F41" in _encoded("127.0.0.1:8001")  # as /proc/net/tcp spells it on little-endian
    assert _encoded("nonsense") == set()
