"""The one registry of step kinds. Kind modules are imported only when first used.

A kind is one module that registers its descriptor (`tminus.kinds.base.Kind`) here: its executor,
its config model, its effect class, how `plan` describes it, its derived undo and the per-run
resources it opens. The runbook model asks this registry (never a kind module) what a kind is.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from tminus.kinds.base import (
    Adopt,
    AsyncExecutor,
    DeriveUndo,
    Describe,
    Effect,
    Executor,
    FindSurvivor,
    Kind,
    Recover,
    Resource,
    Validate,
)

if TYPE_CHECKING:
    from tminus.runbook.models import Step

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
    "redis": "tminus.kinds.redis",
    "proxy": "tminus.kinds.proxy",
    "service": "tminus.kinds.service",
    "watch": "tminus.kinds.watch",
    "docs": "tminus.kinds.docs",
}


def register(
    name: str,
    *,
    config: type | None = None,
    effect: Effect | Callable[[Any], Effect] = Effect.IRREVERSIBLE,
    default_expect: tuple[str, ...] = (),
    queries: tuple[str, ...] = (),
    describe: Describe | None = None,
    derive_undo: DeriveUndo | None = None,
    resources: tuple[Resource, ...] = (),
    on_failure: str = "rollback",
    recover: Recover | None = None,
    validate: Validate | None = None,
    survivor: FindSurvivor | None = None,
    adopt: Adopt | None = None,
    imports: tuple[str, ...] = (),
) -> Callable[[Executor], Executor]:
    """Decorator on the kind's executor: `@register("tcp", config=TcpSpec, effect=Effect.NONE, ...)`."""

    def deco(fn: Executor) -> Executor:
        _KINDS[name] = Kind(name, fn, default_expect, queries, config, effect, describe, derive_undo,
                            resources, on_failure, recover, validate, survivor, adopt, imports=imports)
        return fn

    return deco


def register_async(name: str) -> Callable[[AsyncExecutor], AsyncExecutor]:
    """Decorator on a registered kind's async executor (after its `@register`): the engine runs that
    kind's side-by-side checks concurrently on the run's event loop with it."""

    def deco(fn: AsyncExecutor) -> AsyncExecutor:
        _KINDS[name] = dataclasses.replace(_KINDS[name], execute_async=fn)
        return fn

    return deco


def get(name: str) -> Kind:
    if name not in _KINDS:
        module = MODULES.get(name)
        if module is None:
            raise KeyError(f"unknown step kind '{name}'")
        importlib.import_module(module)
    return _KINDS[name]


def preload(names: Iterable[str]) -> None:
    """Import these kinds and the libraries they import lazily, here, before any of their steps run
    side by side in threads (gates, verify, a guard's probes beside a phase's steps)."""
    for name in sorted(set(names)):
        for module in get(name).imports:
            importlib.import_module(module)


def all_kinds() -> list[Kind]:
    return [get(name) for name in MODULES]


# --- what the runbook model asks -------------------------------------------------------------


def effect_of(step: Step) -> Effect:
    """The step's `effect:` when it declares one, else its kind's class for its configuration."""
    if step.declared_effect is not None:
        return Effect(step.declared_effect)
    return kind_effect_of(step)


def kind_effect_of(step: Step) -> Effect:
    return get(step.kind).effect_of(step.config)


def default_on_failure(kind: str) -> str:
    return get(kind).on_failure


def close_resources(shared: dict[str, Any], kinds: Iterable[str]) -> None:
    """Close, once each, the per-run resources declared by the kinds that ran."""
    closed: set[str] = set()
    for name in kinds:
        for resource in get(name).resources:
            if resource.name not in closed:
                closed.add(resource.name)
                resource.close(shared)
