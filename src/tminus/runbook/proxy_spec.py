"""The `proxy` step's configuration: move traffic behind nginx, HAProxy or any proxy a template and
two commands drive, then prove the result through the proxy.

One model for every driver: the fields of a driver the step does not name are refused by the kind's
validation (kinds/proxy.py), which also checks names against `upstreams` (or `servers`)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from tminus.runbook.types import Duration, Spec

ProxyAction = Literal["switch", "weights", "maintenance", "drain", "preview", "restore"]
# driver -> the fields only it reads (validation refuses them under another driver)
DRIVER_FIELDS: dict[str, tuple[str, ...]] = {
    "nginx": ("config", "conf", "pid_file", "nginx", "prefix", "preview_listen", "reload_timeout"),
    "haproxy": ("socket", "backend", "servers"),
    "generic": ("template", "output", "validate", "reload"),
}
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "nginx": ("config", "conf", "pid_file", "upstreams"),
    "haproxy": ("socket", "backend", "servers"),
    "generic": ("template", "output", "reload", "upstreams"),
}


class ProveSpec(Spec):
    """Requests sent through the proxy after it changed: every answer is judged by `expect` (the
    expectation grammar), or by the action's default (503 with Retry-After in maintenance, else
    status < 500)."""

    url: str = Field(description="A URL served by the proxy (the preview listener for `preview`).")
    requests: int = Field(10, ge=1, le=100_000, description="How many requests; every one must pass.")
    expect: list[str] | None = Field(None, description=(
        'Expectations each answer must meet, e.g. [status == 200, header "X-Release" == "green"].'))
    headers: dict[str, str] = Field(default_factory=dict, description="Headers sent with each request.")
    timeout: Duration = Field(5.0, description="Per request.")
    # rendered with its step (templater.render_config): `url: "{{ vars.site }}/"` is requested rendered
    render_with_parent: ClassVar[bool] = True


class ProxySpec(Spec):
    """Move traffic: switch, weights, maintenance on/off, drain, preview; then prove it through the
    proxy. The state found before is recorded first; the derived undo restores exactly it."""

    driver: Literal["nginx", "haproxy", "generic"] = Field(description="nginx, haproxy or generic.")
    action: ProxyAction = Field(description=(
        "switch (all traffic to `to`), weights (canary), maintenance (on/off), drain (wait for the "
        "old target's connections to end), preview (route the preview to `to`); restore: the undo."))
    to: str | None = Field(None, description="switch, preview: the upstream's name (preview: none clears it).")
    weights: dict[str, int | str] | None = Field(None, description=(
        "weights: upstream -> weight, e.g. {blue: 90, green: 10}."))
    maintenance: bool | None = Field(None, description="maintenance: true (answer 503) or false (serve again).")
    page: str | None = Field(None, description="maintenance: the HTML page answered with the 503.")
    retry_after: Duration = Field(120.0, description="maintenance: the Retry-After header, in seconds.")
    exempt: list[str] = Field(default_factory=list, description=(
        "maintenance: path prefixes still forwarded (e.g. /healthz)."))
    from_: str | None = Field(None, alias="from", description=(
        "drain: the upstream whose connections must end (default: every upstream without weight)."))
    drain_timeout: Duration = Field(60.0, description="drain: fail when connections remain after this long.")
    state: dict[str, Any] | None = Field(None, description=(
        "restore: the recorded routing state to restore (the derived undo writes it)."))
    upstreams: dict[str, list[str]] = Field(default_factory=dict, description=(
        'nginx, generic: upstream name -> its addresses, e.g. {blue: ["127.0.0.1:8001"]}.'))
    prove: ProveSpec | None = Field(None, description="Requests through the proxy that must all pass.")
    # nginx
    config: str | None = Field(None, description="nginx: the include file tminus owns (rewritten whole).")
    conf: str | None = Field(None, description="nginx: the nginx.conf that includes it (for nginx -t).")
    pid_file: str | None = Field(None, description="nginx: the master's pid file (reloaded by its pid).")
    nginx: str = Field("/usr/sbin/nginx", description="nginx: the binary.")
    prefix: str = Field("tminus", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description=(
        "nginx: names the include defines: <prefix>_live, <prefix>_preview, $<prefix>_route."))
    preview_listen: str | None = Field(None, description=(
        "nginx: an address (127.0.0.1:8081) the include listens on for the preview."))
    reload_timeout: Duration = Field(15.0, description="nginx: how long the new configuration may take to serve.")
    # haproxy
    socket: str | None = Field(None, description="haproxy: the stats socket (admin level).")
    backend: str | None = Field(None, description="haproxy: the backend holding the servers.")
    servers: dict[str, str | list[str]] | None = Field(None, description=(
        "haproxy: upstream name -> its server name(s) in `backend`, e.g. {blue: b1, green: g1}."))
    preview_backend: str | None = Field(None, description=(
        "haproxy: a backend with the same server names that the preview route (a header, a listener) uses."))
    maintenance_map: str | None = Field(None, description=(
        "haproxy: the map file, exactly as haproxy.cfg names it, whose key turns maintenance on."))
    maintenance_key: str = Field("maintenance", description="haproxy: the key in `maintenance_map`.")
    socket_timeout: Duration = Field(5.0, description="haproxy: how long one command on the socket may take.")
    # generic
    template: str | None = Field(None, description="generic: a Jinja2 template of the proxy's configuration.")
    output: str | None = Field(None, description="generic: where the rendered configuration is written.")
    validate_: str | None = Field(None, alias="validate", description=(
        "generic: a command that checks the written configuration (exit 0: good)."))
    reload: str | None = Field(None, description="generic: the command that makes the proxy load it.")

    def names(self) -> list[str]:
        """The upstream names the step knows: `upstreams`' keys, or `servers`' for haproxy."""
        if self.driver == "haproxy" and self.servers:
            return list(self.servers)
        return list(self.upstreams)


__all__ = ["DRIVER_FIELDS", "REQUIRED_FIELDS", "ProveSpec", "ProxySpec"]
