"""A release as a Docker container: `docker run -d --name NAME ... IMAGE`, `docker stop`/`rm` by name,
the container id as its identity (a container of the same name made later has another id)."""

from __future__ import annotations

from tminus.kinds.base import StepContext
from tminus.kinds.service_backends.base import Identity, ServiceError, checked, command, last_lines
from tminus.runbook.service_spec import ServiceSpec

_ANSWER = 60.0  # seconds docker may take (an image pull is a run's, not a query's)


def run_argv(spec: ServiceSpec) -> list[str]:
    if not spec.image:
        raise ServiceError("the docker backend needs 'image' to start a container")
    argv = ["docker", "run", "-d", "--name", spec.container_name, "--stop-timeout", f"{int(spec.stop_timeout)}"]
    for key, value in spec.env.items():
        argv += ["--env", f"{key}={value}"]
    argv += [*spec.options, spec.image]
    if spec.command:
        argv += ["sh", "-c", spec.command]
    return argv


def stop_argv(container: str, stop_timeout: float) -> list[list[str]]:
    return [["docker", "stop", "--time", f"{int(stop_timeout)}", container], ["docker", "rm", container]]


def inspect_argv(container: str) -> list[str]:
    return ["docker", "inspect", "--format", "{{.Id}} {{.State.Running}} {{.State.ExitCode}}", container]


class Docker:
    def _inspect(self, container: str, ctx: StepContext) -> tuple[str, bool, str] | None:
        done = command(inspect_argv(container), ctx.environ, _ANSWER)
        if done.returncode != 0:
            return None  # no such container
        cid, running, code = ([*done.stdout.split(), "", "", ""])[:3]
        return cid, running == "true", code

    def running(self, spec: ServiceSpec, ctx: StepContext) -> Identity | None:
        found = self._inspect(spec.container_name, ctx)
        return None if found is None else {"container": spec.container_name, "id": found[0], "running": found[1]}

    def start(self, spec: ServiceSpec, ctx: StepContext) -> Identity:
        cid = checked(run_argv(spec), ctx.environ, _ANSWER).strip()
        return {"container": spec.container_name, "id": cid}

    def exited(self, identity: Identity, ctx: StepContext) -> str | None:
        found = self._inspect(identity["container"], ctx)
        if found is None or found[0] != identity["id"]:
            return "is gone (removed)"
        return None if found[1] else f"exited with status {found[2]}"

    def stop(self, identity: Identity, spec: ServiceSpec, ctx: StepContext) -> str:
        container = identity["container"]
        found = self._inspect(container, ctx)
        if found is None:
            return f"container {container} was gone"
        if identity.get("id") and found[0] != identity["id"]:
            return f"container {container} is now another container ({found[0][:12]}): left alone"
        for argv in stop_argv(container, spec.stop_timeout):
            checked(argv, ctx.environ, spec.stop_timeout + _ANSWER)
        return f"container {container} ({found[0][:12]}) stopped and removed"

    def restart(self, identity: Identity | None, spec: ServiceSpec, ctx: StepContext) -> Identity:
        if identity is not None:
            self.stop(identity, spec, ctx)
        return self.start(spec, ctx)

    def logs(self, spec: ServiceSpec, identity: Identity | None, ctx: StepContext) -> str:
        container = identity["container"] if identity else spec.container_name
        done = command(["docker", "logs", "--tail", "50", container], ctx.environ, _ANSWER)
        return last_lines(done.stdout + done.stderr)
