"""The `service` kind's configuration: start, stop or restart a release (a process, a systemd unit or a
Docker container), a start gated on a health check. Imported by models.py (the `health` check is a
`Step`, resolved there once `Step` exists)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from tminus.runbook.types import Duration, Spec

if TYPE_CHECKING:
    from tminus.runbook.models import Step

ServiceAction = Literal["start", "stop", "restart"]
ServiceBackend = Literal["process", "systemd", "docker"]


class ServicePrevious(Spec):
    """How a `restart` brings the previous version back (its derived undo): the fields that differ
    from the restart's own, e.g. `{env: {RELEASE: v1}}` or `{image: myapp:v1}`."""

    command: str | None = Field(None, description="process: the previous release's command.")
    cwd: str | None = Field(None, description="process: its working directory.")
    env: dict[str, str] | None = Field(None, description="process / docker: its environment.")
    image: str | None = Field(None, description="docker: its image tag.")
    unit: str | None = Field(None, description="systemd: its unit.")
    health: Step | None = Field(None, description="Its health check (default: the restart's).")


class ServiceSpec(Spec):
    """A release as a service: `start` it (and wait until its health check passes), `stop` it (TERM, a
    drain wait of `stop_timeout`, then KILL) or `restart` it. What it started (pid and start time, unit
    invocation, container id) is recorded before the health wait, so its undo, resume and rollback act
    on that exact process. Values: pid, started, healthy, attempts, duration."""

    action: ServiceAction = Field(description="start | stop | restart.")
    backend: ServiceBackend = Field("process", description="process (default) | systemd | docker.")
    name: str = Field(description="The release's label in plan, evidence and default file names.")
    command: str | None = Field(None, description="process: the shell command (run with /bin/sh -c); "
                                                  "docker: the container's command.")
    cwd: str | None = Field(None, description="process: working directory, relative to the runbook.")
    env: dict[str, str] = Field(default_factory=dict, description="process / docker: environment variables.")
    log: str | None = Field(None, description=(
        "process: stdout and stderr are appended here (default .tminus/services/NAME.log); "
        "systemd: read on a failed health check when journalctl is not available."))
    pid_file: str | None = Field(None, description=(
        "process: where the pid is written (default .tminus/services/NAME.pid); stop and restart read it."))
    unit: str | None = Field(None, description="systemd: the unit, e.g. myapp-green.service.")
    image: str | None = Field(None, description="docker: the image, e.g. myapp:v2.")
    container: str | None = Field(None, description="docker: the container's name (default: name).")
    options: list[str] = Field(default_factory=list, description=(
        "docker: more `docker run` arguments, e.g. ['-p', '127.0.0.1:8002:8000']."))
    stop_timeout: Duration = Field(10.0, description="How long a stop waits after TERM (drain) before KILL.")
    health: Step | None = Field(None, description="start / restart: any check step that proves it serves.")
    health_interval: Duration = Field(0.5, description="Pause between two health checks.")
    health_timeout: Duration = Field(30.0, description="How long a start waits for its health check to pass.")
    previous: ServicePrevious | None = Field(None, description=(
        "restart: how to bring the previous version back; without it a restart has no derived undo."))
    target: dict[str, Any] | None = Field(None, description=(
        "Set by tminus on a derived undo: the exact process, unit invocation or container to act on."))

    @property
    def container_name(self) -> str:
        return self.container or self.name
