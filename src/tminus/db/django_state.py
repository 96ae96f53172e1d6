"""Read a Django project's migration state and plan, with the release's own code.

Not imported by tminus: its source is run inside the project as `python manage.py shell -c SOURCE`
(`source()` below), so the project's settings, apps and migrations are the release's, and tminus
needs neither Django nor the project's dependencies in its own environment. Stdlib and Django only.

The request is JSON in REQUEST_VARIABLE: {"targets": [[app, name-or-prefix-or-"zero"-or-null], ...]
or null (every app to its latest); a null name is the app's latest}. The answer is the last
stdout line, MARKER followed by JSON:
{"vendor", "database", "apps": {app: {"leaf", "heads", "latest"}}, "plan": [{"app", "name",
"backwards", "irreversible": [operation, ...]}], "targets": [[app, name-or-"zero"]] (resolved),
"error"}. An app's `leaf` is the migration that
`migrate APP LEAF` returns it to ("zero" when none is applied): the applied node of that app in the
graph with no applied child in the app (squashed migrations count as the graph counts them).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

MARKER = "TMINUS-DJANGO-STATE "
REQUEST_VARIABLE = "TMINUS_DJANGO_REQUEST"


def _state(loader: Any) -> dict[str, Any]:
    graph, applied = loader.graph, set(loader.applied_migrations)
    apps: dict[str, Any] = {}
    for app in sorted(loader.migrated_apps):
        nodes = [n for n in graph.nodes if n[0] == app]
        done = [n for n in nodes if n in applied]
        heads = sorted(n[1] for n in done
                       if not any(c in applied and c[0] == app for c in graph.node_map[n].children))
        apps[app] = {"leaf": heads[-1] if heads else "zero", "heads": heads,
                     "latest": sorted(n[1] for n in graph.leaf_nodes(app))}
    return apps


def _targets(loader: Any, app: str, name: str | None) -> list[tuple[str, str | None]]:
    """As `manage.py migrate APP [NAME]` reads them: no name is the app's latest."""
    if app not in loader.migrated_apps:
        raise LookupError(f"app {app!r} has no migrations (migrated apps: {', '.join(sorted(loader.migrated_apps))})")
    if name is None:
        return list(loader.graph.leaf_nodes(app))
    if name == "zero":
        return [(app, None)]
    try:
        migration = loader.get_migration_by_prefix(app, name)
    except KeyError:
        raise LookupError(f"app {app!r} has no migration named {name!r}") from None
    except Exception as exc:  # AmbiguityError
        raise LookupError(f"{exc}") from None
    return [(app, migration.name)]


def run(request: dict[str, Any]) -> dict[str, Any]:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    loader = executor.loader
    result: dict[str, Any] = {"vendor": connection.vendor, "database": str(connection.settings_dict.get("NAME")),
                              "apps": _state(loader), "plan": [], "error": None}
    wanted = request.get("targets")
    if wanted is None:
        targets = list(loader.graph.leaf_nodes())
    else:
        targets = [t for app, name in wanted for t in _targets(loader, app, name)]
        result["targets"] = [[app, name or "zero"] for app, name in targets]
    for migration, backwards in executor.migration_plan(targets):
        irreversible = [op.describe() for op in migration.operations if not op.reversible]
        result["plan"].append({"app": migration.app_label, "name": migration.name, "backwards": backwards,
                               "irreversible": irreversible})
    return result


def main() -> None:
    try:
        result = run(json.loads(os.environ.get(REQUEST_VARIABLE) or "{}"))
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    print(MARKER + json.dumps(result), flush=True)


def source() -> str:
    """This module's text, and the call that runs it: what `manage.py shell -c` executes."""
    from pathlib import Path

    return Path(__file__).read_text(encoding="utf-8") + "\nmain()\n"
