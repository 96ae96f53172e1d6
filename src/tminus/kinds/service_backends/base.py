"""What every service backend does. An identity is a plain dict recorded in the ledger (a
`service_started` or `service_found` effect) and handed back to stop the exact thing it names."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tminus.kinds.base import StepContext
from tminus.runbook.service_spec import ServiceSpec

Identity = dict[str, Any]
LOG_LINES = 50  # lines of a release's log kept as evidence of a failed start


class ServiceError(Exception):
    """The backend could not do what was asked; the message says what and how to fix it."""


class Backend(Protocol):
    def running(self, spec: ServiceSpec, ctx: StepContext) -> Identity | None:
        """What runs under the spec's name now (pid file, unit, container), or None."""

    def start(self, spec: ServiceSpec, ctx: StepContext) -> Identity:
        """Start it; return its identity as soon as it exists (the caller records it)."""

    def exited(self, identity: Identity, ctx: StepContext) -> str | None:
        """Why the started thing is gone ("exited with status 3"), or None while it runs."""

    def stop(self, identity: Identity, spec: ServiceSpec, ctx: StepContext) -> str:
        """Stop exactly what `identity` names: words saying how (or why nothing was done)."""

    def restart(self, identity: Identity | None, spec: ServiceSpec, ctx: StepContext) -> Identity:
        """Replace what runs (`identity`, None: nothing) with the spec's release; its identity."""

    def logs(self, spec: ServiceSpec, identity: Identity | None, ctx: StepContext) -> str:
        """The last lines of the release's log (unmasked: the caller masks)."""


def command(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """A backend's tool (systemctl, docker, journalctl), its output captured; refusals as ServiceError."""
    try:
        return subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ServiceError(f"{argv[0]} not found on PATH; install it or choose another backend") from None
    except subprocess.TimeoutExpired:
        raise ServiceError(f"{' '.join(argv)} did not answer within {timeout:g}s") from None


def checked(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> str:
    """stdout of a tool that must succeed; its stderr in the error otherwise."""
    done = command(argv, env, timeout)
    if done.returncode != 0:
        why = (done.stderr.strip() or done.stdout.strip())[-500:]
        raise ServiceError(f"{' '.join(argv)} failed (exit {done.returncode}): {why}")
    return done.stdout


def last_lines(text: str, lines: int = LOG_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])
