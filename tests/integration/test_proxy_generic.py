"""The generic proxy driver with a real configuration file and real validate/reload commands: nginx
driven only through a template, `nginx -t` and a SIGHUP sent by the reload command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from tests.helpers import wait_for
from tests.helpers_kinds import run_step
from tests.servers.backend import backends
from tests.servers.nginx import NGINX, nginx

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason=f"{NGINX} is not installed")

TEMPLATE = """# rendered by tminus from {{ state }}
upstream tminus_live {
{%- for name, addresses in upstreams.items() %}{% for a in addresses %}
    server {{ a }}{% if weights.get(name, 0) > 0 %} weight={{ weights[name] }}{% else %} down{% endif %};
{%- endfor %}{% endfor %}
}
map $http_x_tminus_preview $tminus_route { default tminus_live; }
"""


def test_generic_driver_renders_validates_reloads_and_refuses(tmp_path: Path) -> None:
    with backends("blue", "green") as b:
        upstreams = {n: [x.address] for n, x in b.items()}
        with nginx(tmp_path / "nginx", upstreams, "blue", preview=False) as ng:
            (tmp_path / "routing.j2").write_text(TEMPLATE)
            spec = {"driver": "generic", "template": "routing.j2", "output": str(ng.config),
                    "validate": f"{NGINX} -t -q -c {ng.conf}", "reload": f'kill -HUP "$(cat {ng.pid_file})"',
                    "upstreams": upstreams}
            obs = run_step({"proxy": {**spec, "action": "switch", "to": "green"}}, tmp_path)
            assert obs.error is None, obs.error
            assert obs.evidence["before"] == {"weights": {}, "maintenance": False, "preview": None}  # first run
            sidecar = ng.config.with_name("routing.conf.tminus-state.json")
            assert json.loads(sidecar.read_text())["weights"] == {"blue": 0, "green": 100}
            wait_for(lambda: httpx.get(ng.url).headers["x-release"] == "green", timeout=20)
            good = ng.config.read_text()
            assert "down;" in good and "weight=100;" in good

            # validate refuses: the previous file is put back, the state is unchanged, nothing reloaded
            (tmp_path / "routing.j2").write_text(TEMPLATE.replace("upstream tminus_live {", "upstream tminus_live {\n"
                                                                  "    nonsense_directive on;"))
            refused = run_step({"proxy": {**spec, "action": "switch", "to": "blue"}}, tmp_path)
            assert refused.error is not None and "validate refused" in refused.error
            assert "nonsense_directive" in refused.error
            assert ng.config.read_text() == good
            assert json.loads(sidecar.read_text())["weights"] == {"blue": 0, "green": 100}

            # a failing reload: the previous file again
            (tmp_path / "routing.j2").write_text(TEMPLATE)
            failed = run_step({"proxy": {**spec, "action": "switch", "to": "blue", "reload": "echo nope >&2; exit 3"}},
                              tmp_path)
            assert failed.error is not None and "exited 3: nope" in failed.error
            assert ng.config.read_text() == good
            assert httpx.get(ng.url).headers["x-release"] == "green"

            # drain is not something a generic proxy can tell
            drain = run_step({"proxy": {**spec, "action": "drain", "from": "blue"}}, tmp_path)
            assert drain.error is not None and "cannot count" in drain.error
