"""The HAProxy driver: routing changed at runtime over the stats socket, never by a reload.

An upstream is one or more servers of `backend`. Its weight is spread over its servers so the
upstreams' shares stay as asked whatever their sizes (the server weight is W * L / n, L the least
common multiple of the server counts). Weight 0 puts the servers in `drain` (no new traffic, kept
connections finish, shown as DRAIN on the stats page); a weight > 0 sets the weight, then `ready`.
Servers gaining traffic are changed before servers losing it, so the backend is never empty.

Maintenance is a key in a map file the frontend reads (`maintenance on|off`, `set map`/`add map`);
preview is a second backend holding the same server names, where the previewed upstream's servers
are `ready` and the others `maint`. The config users write is in docs/proxy-haproxy.md.
Runtime changes do not survive a reload or restart of HAProxy (see the docs page).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from tminus.durations import parse_duration
from tminus.kinds.proxy_drivers.base import ProxyError, RoutingState
from tminus.kinds.proxy_drivers.haproxy_api import (
    Runtime,
    ServerRow,
    check_map_ref,
    check_name,
    parse_map,
    parse_servers_state,
    parse_stat,
)

MAX_WEIGHT = 256  # HAProxy's largest server weight
ON = "on"  # the value the documented ACL matches (`-m str on`); anything else is off


class HaproxyConfig(Protocol):
    """The fields of the rendered `proxy:` spec this driver reads. One model serves every driver, so
    the three it needs may be None there (refused here with the field's name). Optional ones, read
    with a default when the model lacks them: `preview_backend: str | None = None`,
    `maintenance_map: str | None = None`, `maintenance_key: str = "maintenance"`, `socket_timeout:
    duration = 5s`."""

    @property
    def socket(self) -> str | None: ...

    @property
    def backend(self) -> str | None: ...

    @property
    def servers(self) -> Mapping[str, str | Sequence[str]] | None: ...


class Driver:
    def __init__(self, spec: HaproxyConfig, base_dir: Path) -> None:
        if not spec.socket:
            raise ProxyError("haproxy: `socket` is missing: the stats socket's path (or ipv4@HOST:PORT)")
        if not spec.backend:
            raise ProxyError("haproxy: `backend` is missing: the backend whose servers carry the upstreams")
        if not spec.servers:
            raise ProxyError("haproxy: `servers` is empty; map each upstream to its server name(s) in the backend")
        self.backend = check_name("backend", spec.backend)
        self.servers: dict[str, list[str]] = {}
        for upstream, names in spec.servers.items():
            listed = [names] if isinstance(names, str) else list(names)
            if not listed:
                raise ProxyError(f"haproxy: upstream {upstream!r} has no server in `servers`")
            self.servers[str(upstream)] = [check_name("server", n) for n in listed]
        preview = getattr(spec, "preview_backend", None)
        self.preview_backend = check_name("preview_backend", preview) if preview else None
        mapref = getattr(spec, "maintenance_map", None)
        self.maintenance_map = check_map_ref(mapref) if mapref else None
        self.maintenance_key = check_name("maintenance_key", getattr(spec, "maintenance_key", None) or "maintenance")
        timeout = getattr(spec, "socket_timeout", None)
        self.api = Runtime(spec.socket, base_dir, parse_duration(timeout) if timeout is not None else 5.0)
        self.scale = math.lcm(*(len(s) for s in self.servers.values()))

    # -- reading -------------------------------------------------------------------------------

    def _rows(self) -> dict[tuple[str, str], ServerRow]:
        rows = parse_servers_state(self.api.command("show servers state"))
        for backend in filter(None, (self.backend, self.preview_backend)):
            names = {name for (be, name) in rows if be == backend}
            if not names:
                raise ProxyError(f"haproxy: no backend {backend!r} with servers on {self.api.display}; "
                                 f"backends: {', '.join(sorted({be for be, _ in rows})) or 'none'}")
            for upstream, listed in self.servers.items():
                missing = [n for n in listed if n not in names]
                if missing:
                    raise ProxyError(f"haproxy: backend {backend!r} has no server {', '.join(missing)} "
                                     f"(upstream {upstream!r}); its servers: {', '.join(sorted(names))}")
        return rows

    def _map(self) -> dict[str, str]:
        """The maintenance map's entries ({} without one)."""
        if not self.maintenance_map:
            return {}
        return parse_map(self.api.command(f"show map {self.maintenance_map}"), self.maintenance_map)

    def _state(self, rows: dict[tuple[str, str], ServerRow], entries: dict[str, str]) -> RoutingState:
        maintenance = entries.get(self.maintenance_key) == ON
        weights = {u: round(sum(rows[(self.backend, n)].effective_weight for n in names) / self.scale)
                   for u, names in self.servers.items()}
        preview = None
        if self.preview_backend:
            preview = next((u for u, names in self.servers.items()
                            if any(_routed(rows[(self.preview_backend, n)]) for n in names)), None)
        return RoutingState(weights=weights, maintenance=maintenance, preview=preview)

    def read(self) -> RoutingState:
        return self._state(self._rows(), self._map())

    # -- applying ------------------------------------------------------------------------------

    def _plan(self, state: RoutingState, rows: dict[tuple[str, str], ServerRow], entries: dict[str, str]) -> list[str]:
        """The runtime commands that take the servers in `rows` (and the map's `entries`) to `state`."""
        maintenance = self._state(rows, entries).maintenance
        unknown = sorted(set(state.weights) - set(self.servers))
        if unknown or (state.preview is not None and state.preview not in self.servers):
            raise ProxyError(f"haproxy: no upstream {', '.join(unknown or [str(state.preview)])} in `servers` "
                             f"(known: {', '.join(self.servers)})")
        if state.maintenance != maintenance and not self.maintenance_map:
            raise ProxyError("haproxy: maintenance needs `maintenance_map` (the map file the frontend reads; "
                             "see docs/proxy-haproxy.md)")
        if state.preview is not None and not self.preview_backend:
            raise ProxyError("haproxy: preview needs `preview_backend` (see docs/proxy-haproxy.md)")
        gaining: list[str] = []
        losing: list[str] = []
        for upstream, weight in state.weights.items():
            names = self.servers[upstream]
            per_server = weight * self.scale // len(names)
            if weight < 0 or per_server > MAX_WEIGHT:
                raise ProxyError(f"haproxy: weight {weight} for {upstream!r} is out of range: HAProxy server "
                                 f"weights are 0..{MAX_WEIGHT} (here {weight} becomes {per_server} per server)")
            current = [rows[(self.backend, n)] for n in names]
            changes = any(r.effective_weight != per_server for r in current)
            if per_server > 0 and changes and all(r.down for r in current):
                # HAProxy would route nothing there: with the others drained, users would get 503s.
                raise ProxyError(f"haproxy: upstream {upstream!r} has no server up: "
                                 f"{', '.join(f'{r.backend}/{r.name}' for r in current)} DOWN by the health check")
            for name in names:
                row, ref = rows[(self.backend, name)], f"{self.backend}/{name}"
                if per_server == 0 and not row.held_at_zero:
                    losing.append(f"set server {ref} state drain")
                elif per_server > 0 and row.effective_weight != per_server:
                    commands = [f"set weight {ref} {per_server}"]
                    if row.maint or row.drain:
                        commands.append(f"set server {ref} state ready")
                    (gaining if per_server > row.effective_weight else losing).extend(commands)
        ready: list[str] = []
        maint: list[str] = []
        if self.preview_backend:
            for upstream, names in self.servers.items():
                for name in names:
                    row, ref = rows[(self.preview_backend, name)], f"{self.preview_backend}/{name}"
                    if upstream == state.preview and (row.maint or row.drain):
                        ready.append(f"set server {ref} state ready")
                    elif upstream != state.preview and _routed(row):
                        maint.append(f"set server {ref} state maint")
        toggle: list[str] = []
        if state.maintenance != maintenance and self.maintenance_map:
            value = ON if state.maintenance else "off"
            verb = "set" if self.maintenance_key in entries else "add"
            toggle.append(f"{verb} map {self.maintenance_map} {self.maintenance_key} {value}")
        # Maintenance on first (nothing below is seen by users), off last (everything is in place).
        routing = gaining + losing + ready + maint
        return toggle + routing if state.maintenance else routing + toggle

    def apply(self, state: RoutingState) -> str:
        try:
            rows, entries = self._rows(), self._map()
            before = self._state(rows, entries)
            commands = self._plan(state, rows, entries)
        except ProxyError as exc:
            raise ProxyError(_sentence(str(exc)) + " Nothing was changed.") from exc
        done = 0
        try:
            for command in commands:
                self.api.set(command)
                done += 1
        except ProxyError as exc:
            raise ProxyError(_sentence(str(exc)) + self._restore(before, done)) from exc
        after = self.read()
        asked = RoutingState({**after.weights, **state.weights}, state.maintenance, state.preview)
        if after != asked:
            raise ProxyError(f"haproxy: asked for {asked.to_dict()} but HAProxy reports {after.to_dict()}."
                             + self._restore(before, done))
        if not commands:
            return f"haproxy {self.api.display}: already serving {_describe(after)}"
        return f"haproxy {self.api.display}: {_describe(after)} ({len(commands)} runtime commands, no reload)"

    def _restore(self, before: RoutingState, done: int) -> str:
        """After a refusal part-way, put back what was served before (best effort, said either way)."""
        if done == 0:
            return " Nothing was changed."
        try:
            for command in self._plan(before, self._rows(), self._map()):
                self.api.set(command)
        except ProxyError as exc:
            return f" {done} command(s) had taken effect; restoring the previous state failed: {exc}"
        return f" The previous state was restored ({_describe(before)})."

    # -- draining ------------------------------------------------------------------------------

    def connections(self, upstream: str) -> int | None:
        """Current sessions (`scur`) on the upstream's servers, in the backend and the preview backend."""
        if upstream not in self.servers:
            raise ProxyError(f"haproxy: no upstream {upstream!r} in `servers` (known: {', '.join(self.servers)})")
        names = set(self.servers[upstream])
        backends = {b for b in (self.backend, self.preview_backend) if b}
        total, seen = 0, False
        for row in parse_stat(self.api.command("show stat")):
            if row["pxname"] in backends and row.get("svname") in names:
                seen = True
                total += int(row.get("scur") or 0)
        return total if seen else None


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else text + "."


def _routed(row: ServerRow) -> bool:
    return not (row.maint or row.drain)


def _describe(state: RoutingState) -> str:
    weights = ", ".join(f"{u} {w}" for u, w in state.weights.items())
    extra = [f"preview {state.preview}"] if state.preview else []
    extra.append(f"maintenance {'on' if state.maintenance else 'off'}")
    return f"weights {weights}; {'; '.join(extra)}"
