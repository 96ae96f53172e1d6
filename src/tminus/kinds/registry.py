"""The one registry of step kinds. Kind modules are imported only when first used."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from tminus.kinds.base import Executor, Kind

_KINDS: dict[str, Kind] = {}

# kind name -> module that registers it; keeps start-up light (httpx, SQLAlchemy load lazily)
MODULES: dict[str, str] = {
    "run": "tminus.kinds.run",
    "http": "tminus.kinds.http",
    "sql": "tminus.kinds.sql",
    "file": "tminus.kinds.file",
    "tcp": "tminus.kinds.tcp",
    "env": "tminus.kinds.env",
    "wait": "tminus.kinds.wait",
    "manual": "tminus.kinds.manual",
    "migrate": "tminus.kinds.migrate",
    "backup": "tminus.kinds.backup",
    "restore": "tminus.kinds.restore",
    "fingerprint": "tminus.kinds.fingerprint",
    "migration_lint": "tminus.kinds.migration_lint",
    "notify": "tminus.kinds.notify",
    "prometheus": "tminus.kinds.prometheus",
}


def register(
    name: str,
    *,
    default_expect: tuple[str, ...] = (),
    queries: tuple[str, ...] = (),
) -> Callable[[Executor], Executor]:
    """Decorator: `@register("http", default_expect=("status < 400",))`."""

    def deco(fn: Executor) -> Executor:
        _KINDS[name] = Kind(name, fn, default_expect, queries)
        return fn

    return deco


def get(name: str) -> Kind:
    if name not in _KINDS:
        module = MODULES.get(name)
        if module is None:
            raise KeyError(f"unknown step kind '{name}'")
        importlib.import_module(module)
    return _KINDS[name]
