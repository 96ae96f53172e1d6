"""The contract between the `proxy` kind and one proxy's driver.

The kind reads the proxy's routing state, records it (the undo restores exactly it), computes the
state the action asks for, has the driver apply it, then proves it through the proxy. A driver only
knows its proxy: how to read the state, how to make the proxy serve a state (atomically, validated
before it takes effect), and how many connections a target still holds (for `drain`).

Loading convention: the step's `driver: NAME` is the module `tminus.kinds.proxy_drivers.NAME`, whose
class `Driver(spec, base_dir)` implements `ProxyDriver`; `spec` is the step's rendered `ProxySpec`
(tminus/runbook/proxy_spec.py: the driver's own fields are on it, e.g. `socket`, `backend`,
`servers` for haproxy), `base_dir` the runbook's folder (relative paths are relative to it; the
kind has already confined the paths it names). `load(spec, base_dir)` does exactly that.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast


class ProxyError(Exception):
    """The proxy refused or could not take a state (bad config, reload failed, socket unreachable).
    The message says what the proxy answered; the state it served before is left in place."""


@dataclass
class RoutingState:
    """Where a proxy sends traffic: JSON-able, recorded in the ledger before every change.

    `weights`: upstream (target) name -> weight; 0 means it gets no new traffic. A `switch` to
    green is {blue: 0, green: 100}. `maintenance`: the proxy answers 503 (Retry-After, a page)
    instead of forwarding, except for exempt paths. `preview`: the upstream the preview listener
    (or header route) sends to, None when no preview is routed.
    """

    weights: dict[str, int] = field(default_factory=dict)
    maintenance: bool = False
    preview: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "maintenance": self.maintenance, "preview": self.preview}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoutingState:
        return cls(weights={str(k): int(v) for k, v in dict(data.get("weights") or {}).items()},
                   maintenance=bool(data.get("maintenance", False)), preview=data.get("preview"))

    def active(self) -> list[str]:
        """The upstreams that receive live traffic (weight > 0), by name."""
        return sorted(name for name, weight in self.weights.items() if weight > 0)


class ProxyDriver(Protocol):
    """One proxy. Constructed from the step's rendered `proxy:` config and the run's base folder."""

    def read(self) -> RoutingState:
        """The state the proxy serves now (from the file tminus owns, or the runtime API)."""
        ...

    def apply(self, state: RoutingState) -> str:
        """Make the proxy serve `state`, validated before it takes effect (nginx -t, the API's
        answer); returns a one-line account of what was done, for the evidence. Raises ProxyError
        and leaves the previous state serving when the proxy refuses."""
        ...

    def connections(self, upstream: str) -> int | None:
        """Connections the proxy still holds to `upstream` (drain waits for 0); None: unknown."""
        ...


def load(spec: Any, base_dir: Path) -> ProxyDriver:
    """The driver the step names: `tminus.kinds.proxy_drivers.<spec.driver>.Driver(spec, base_dir)`."""
    try:
        module = importlib.import_module(f"tminus.kinds.proxy_drivers.{spec.driver}")
    except ModuleNotFoundError as exc:
        raise ProxyError(f"no proxy driver {spec.driver!r} is installed ({exc})") from exc
    return cast(ProxyDriver, module.Driver(spec, base_dir))
