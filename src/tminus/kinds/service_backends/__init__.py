"""The `service` kind's backends: a plain process, a systemd unit, a Docker container."""

from __future__ import annotations

from tminus.kinds.service_backends.base import Backend, ServiceError


def backend_for(name: str) -> Backend:
    if name == "systemd":
        from tminus.kinds.service_backends.systemd import Systemd

        return Systemd()
    if name == "docker":
        from tminus.kinds.service_backends.docker import Docker

        return Docker()
    from tminus.kinds.service_backends.process import Process

    return Process()


__all__ = ["Backend", "ServiceError", "backend_for"]
