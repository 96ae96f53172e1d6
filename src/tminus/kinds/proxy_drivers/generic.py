"""generic: any proxy driven by a configuration file and two commands. A Jinja2 template rendered with
the state is written atomically to `output`, `validate` checks it, `reload` loads it; a refusal puts
the previous file back (and reloads it when the reload itself failed). The state tminus wrote last
is kept in a sidecar `<output>.tminus-state.json`, which `read()` returns."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tminus.kinds.proxy_drivers.base import ProxyError, RoutingState
from tminus.kinds.proxy_drivers.files import read_text, restore, write_atomic

_COMMAND_TIMEOUT = 120.0


class Driver:
    def __init__(self, spec: Any, base_dir: Path) -> None:
        self.spec = spec
        self.base_dir = base_dir
        self.template = base_dir / spec.template
        self.output = base_dir / spec.output
        self.sidecar = self.output.with_name(self.output.name + ".tminus-state.json")

    def read(self) -> RoutingState:
        text = read_text(self.sidecar)
        if text is None:
            return RoutingState()
        try:
            return RoutingState.from_dict(json.loads(text))
        except (ValueError, TypeError) as exc:
            raise ProxyError(f"{self.sidecar} is not a routing state tminus wrote: {exc}") from exc

    def render(self, state: RoutingState) -> str:
        from jinja2 import StrictUndefined, TemplateError
        from jinja2.sandbox import SandboxedEnvironment

        source = read_text(self.template)
        if source is None:
            raise ProxyError(f"template {self.template} does not exist")
        page = None if self.spec.page is None else str((self.base_dir / self.spec.page).resolve())
        context = {"state": state.to_dict(), "weights": state.weights, "maintenance": state.maintenance,
                   "preview": state.preview, "active": state.active(), "upstreams": self.spec.upstreams,
                   "page": page, "retry_after": int(self.spec.retry_after), "exempt": list(self.spec.exempt)}
        try:
            env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
            return env.from_string(source).render(context)
        except TemplateError as exc:
            raise ProxyError(f"template {self.template}: {exc}") from exc

    def apply(self, state: RoutingState) -> str:
        text = self.render(state)
        previous = read_text(self.output)
        write_atomic(self.output, text)
        if self.spec.validate_:
            failed = self._run(self.spec.validate_)
            if failed:
                restore(self.output, previous)
                raise ProxyError(f"validate refused {self.output}: {failed}")
        failed = self._run(self.spec.reload)
        if failed:
            restore(self.output, previous)
            if previous is not None:
                self._run(self.spec.reload)  # best effort: the old file loaded again
            raise ProxyError(f"reload failed: {failed}")
        write_atomic(self.sidecar, json.dumps(state.to_dict(), sort_keys=True) + "\n")
        return f"wrote {self.output}, validated, reloaded"

    def connections(self, upstream: str) -> int | None:
        return None  # a generic proxy has no way to tell

    def _run(self, command: str) -> str | None:
        """None when the command exits 0, else what it said."""
        try:
            done = subprocess.run(["/bin/sh", "-c", command], cwd=self.base_dir, capture_output=True, text=True,
                                  timeout=_COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{command!r} could not run: {exc}"
        if done.returncode == 0:
            return None
        said = (done.stderr.strip() or done.stdout.strip())[-1500:]
        return f"{command!r} exited {done.returncode}: {said}"
