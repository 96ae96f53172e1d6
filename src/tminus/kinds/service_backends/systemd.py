"""A release as a systemd unit: `systemctl start/stop/restart UNIT`, `systemctl is-active`, and
`systemctl show -p MainPID -p InvocationID` as its identity (a unit started again has another
InvocationID, so an undo never stops a later start of the same unit). systemd's own stop timeout
(TimeoutStopSec) governs TERM and KILL; `stop_timeout` bounds how long tminus waits for systemctl."""

from __future__ import annotations

import shutil

from tminus.kinds.base import StepContext
from tminus.kinds.service_backends.base import Identity, ServiceError, checked, command, last_lines
from tminus.runbook.service_spec import ServiceSpec

_SHOW = ("-p", "MainPID", "-p", "InvocationID", "-p", "ActiveState")
_ANSWER = 30.0  # seconds systemctl may take to answer a query


def _unit(spec: ServiceSpec) -> str:
    if not spec.unit:
        raise ServiceError("the systemd backend needs 'unit'")
    return spec.unit


def show(unit: str, ctx: StepContext) -> dict[str, str]:
    out = checked(["systemctl", "show", *_SHOW, unit], ctx.environ, _ANSWER)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


class Systemd:
    def _identity(self, unit: str, ctx: StepContext) -> Identity:
        props = show(unit, ctx)
        pid = int(props.get("MainPID") or 0)
        return {"unit": unit, "pid": pid or None, "invocation_id": props.get("InvocationID") or None,
                "state": props.get("ActiveState")}

    def running(self, spec: ServiceSpec, ctx: StepContext) -> Identity | None:
        unit = _unit(spec)
        if command(["systemctl", "is-active", "--quiet", unit], ctx.environ, _ANSWER).returncode != 0:
            return None
        return self._identity(unit, ctx)

    def start(self, spec: ServiceSpec, ctx: StepContext) -> Identity:
        unit = _unit(spec)
        checked(["systemctl", "start", unit], ctx.environ, spec.stop_timeout + _ANSWER)
        return self._identity(unit, ctx)

    def exited(self, identity: Identity, ctx: StepContext) -> str | None:
        unit = identity["unit"]
        done = command(["systemctl", "is-active", unit], ctx.environ, _ANSWER)
        state = done.stdout.strip() or "unknown"
        return None if done.returncode == 0 or state in ("activating", "reloading") else f"is {state}"

    def stop(self, identity: Identity, spec: ServiceSpec, ctx: StepContext) -> str:
        unit = identity["unit"]
        now = self.running(spec.model_copy(update={"unit": unit}), ctx)
        if now is None:
            return f"{unit} was not active any more"
        recorded = identity.get("invocation_id")
        if recorded and now.get("invocation_id") != recorded:
            return (f"{unit} was started again since (invocation {now.get('invocation_id')}, recorded "
                    f"{recorded}): left alone")
        checked(["systemctl", "stop", unit], ctx.environ, spec.stop_timeout + _ANSWER)
        return f"{unit} stopped (systemctl stop)"

    def restart(self, identity: Identity | None, spec: ServiceSpec, ctx: StepContext) -> Identity:
        unit = _unit(spec)
        checked(["systemctl", "restart", unit], ctx.environ, 2 * spec.stop_timeout + _ANSWER)
        return self._identity(unit, ctx)

    def logs(self, spec: ServiceSpec, identity: Identity | None, ctx: StepContext) -> str:
        unit = _unit(spec)
        path = ctx.environ.get("PATH")
        if shutil.which("journalctl", path=path) is not None:
            argv = ["journalctl", "-u", unit, "-n", "50", "--no-pager", "-o", "cat"]
            if identity and identity.get("invocation_id"):
                argv[1:3] = [f"_SYSTEMD_INVOCATION_ID={identity['invocation_id']}"]
            done = command(argv, ctx.environ, _ANSWER)
            if done.returncode == 0 and done.stdout.strip():
                return last_lines(done.stdout)
        if spec.log:
            try:
                return last_lines((ctx.base_dir / spec.log).read_text(errors="replace"))
            except OSError as exc:
                return f"(no log: {exc.strerror or exc})"
        return "(no journal, and no 'log:' file given)"
