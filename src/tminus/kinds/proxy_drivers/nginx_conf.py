"""The nginx include tminus owns, rendered from a routing state (see docs/runbook.md, `proxy`).

Included once at `http` level, it defines:
- `upstream <prefix>_live`: what the user's `proxy_pass http://<prefix>_live;` sends to: the weighted
  servers (weight 0 is `down`), or, in maintenance, tminus's internal server;
- `upstream <prefix>_serving`: the weighted servers always (maintenance exemptions go there);
- `upstream <prefix>_preview`: the preview's servers (or the internal server: 503, none routed);
- `map $http_x_tminus_preview $<prefix>_route`: `proxy_pass http://$<prefix>_route;` routes requests
  carrying the header `X-Tminus-Preview` to the preview (header routing);
- an internal server on a unix socket beside the include: the maintenance answer (503, Retry-After,
  the page; exempt prefixes forwarded) and the marker `/.tminus/config`, which answers the hash of
  the configuration it belongs to: the driver polls it to know the reloaded configuration serves;
- with `preview_listen`, a preview listener proxying to `<prefix>_preview`.
The first lines carry the state as JSON (`read()` parses them).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from tminus.kinds.proxy_drivers.base import RoutingState

STATE_LINE = "# tminus-state: "
MARKER_PATH = "/.tminus/config"
_HASH = "@@HASH@@"


def socket_path(config: Path) -> Path:
    return config.with_name(config.name + ".sock")


def parse_state(text: str) -> tuple[RoutingState, dict[str, Any]]:
    """The state and the maintenance details a rendered include carries."""
    for line in text.splitlines():
        if line.startswith(STATE_LINE):
            data = json.loads(line[len(STATE_LINE):])
            return RoutingState.from_dict(data), dict(data.get("maintenance_details") or {})
    raise ValueError("no tminus-state line: the file was not written by tminus")


def server_weights(state: RoutingState, upstreams: dict[str, list[str]]) -> list[tuple[str, int]]:
    """(address, nginx weight) per server: an upstream's weight is shared by its servers (weights
    scaled by the lcm of the server counts, so they stay whole); 0 means `down`."""
    counts = [len(a) for a in upstreams.values() if a]
    scale = math.lcm(*counts) if counts else 1
    out = []
    for name, addresses in upstreams.items():
        weight = state.weights.get(name, 0)
        for address in addresses:
            out.append((address, weight * scale // len(addresses)))
    return out


def render(state: RoutingState, upstreams: dict[str, list[str]], config: Path, *, prefix: str = "tminus",
           details: dict[str, Any] | None = None, preview_listen: str | None = None) -> str:
    """The include for `state`. `details`: maintenance page (absolute path), retry_after, exempt."""
    details = details or {}
    sock = f"unix:{socket_path(config)}"
    header = {**state.to_dict(), "maintenance_details": details}
    lines = ["# Written by tminus (the `proxy` step kind); rewritten whole on every change: do not edit.",
             STATE_LINE + json.dumps(header, sort_keys=True), f"# tminus-config: {_HASH}", ""]
    serving = [f"    server {a} weight={w};" if w > 0 else f"    server {a} down;"
               for a, w in server_weights(state, upstreams)]
    lines += [f"upstream {prefix}_serving {{", *serving, "}"]
    live = [f"    server {sock};"] if state.maintenance else serving
    lines += [f"upstream {prefix}_live {{", *live, "}"]
    preview = upstreams.get(state.preview or "") or []
    lines += [f"upstream {prefix}_preview {{", *([f"    server {a};" for a in preview] or [f"    server {sock};"]),
              "}"]
    lines += [f"map $http_x_tminus_preview ${prefix}_route {{", f'    "" {prefix}_live;',
              f"    default {prefix}_preview;", "}", ""]
    lines += ["server {", f"    listen {sock};", f"    location = {MARKER_PATH} {{",
              f'        return 200 "{_HASH}\\n";', "    }"]
    if state.maintenance:
        lines += _maintenance(prefix, details)
    else:
        lines += ["    location / {", '        return 503 "no preview is routed\\n";', "    }"]
    lines += ["}"]
    if preview_listen:
        lines += ["", "server {", f"    listen {preview_listen};", "    location / {",
                  f"        proxy_pass http://{prefix}_preview;", "        proxy_set_header Host $http_host;",
                  "    }", "}"]
    text = "\n".join(lines) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return text.replace(_HASH, digest)


def config_hash(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("# tminus-config: "):
            return line.split(": ", 1)[1].strip()
    return None


def _maintenance(prefix: str, details: dict[str, Any]) -> list[str]:
    retry = max(0, math.ceil(float(details.get("retry_after", 120))))
    headers = [f"        add_header Retry-After {retry} always;", "        add_header Cache-Control no-store always;"]
    out: list[str] = []
    for path in details.get("exempt") or []:
        out += [f"    location ^~ {_quote(path)} {{", f"        proxy_pass http://{prefix}_serving;",
                "        proxy_set_header Host $http_host;",
                "        proxy_set_header X-Forwarded-For $http_x_forwarded_for;", "    }"]
    page = details.get("page")
    if page:
        out += ["    location = /.tminus/maintenance.html {", "        internal;", f"        alias {_quote(page)};",
                "        default_type text/html;", *headers, "    }",
                "    error_page 503 /.tminus/maintenance.html;"]
    out += ["    location / {", *headers, "        default_type text/plain;",
            '        return 503 "down for maintenance\\n";' if not page else "        return 503;", "    }"]
    return out


def _quote(text: str) -> str:
    """A path as one nginx token: quoted, with quotes and backslashes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
