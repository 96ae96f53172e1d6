"""Alembic for the `migrate` kind, run in a subprocess of the same interpreter:

    python -m tminus.db.alembic_driver INI upgrade|downgrade TARGET [--sql]

The database URL comes from the environment (URL_VARIABLE, not argv: `ps` would show a password) and
is set as the configuration's `sqlalchemy.url`, which alembic's own env.py templates read, so the
step's `url` is the database that is migrated. A subprocess, because env.py imports the project's
models and configures logging: none of that belongs in the tminus process. Alembic's own output
passes through; the result is the last stdout line, MARKER followed by JSON:
{"ok", "before", "after", "revisions", "error"}, with before/after read from the database.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

MARKER = "TMINUS-ALEMBIC-RESULT "
URL_VARIABLE = "TMINUS_ALEMBIC_URL"


def _heads(config: Any, script: Any) -> list[str]:
    """The revisions the database is at, as `alembic current` reads them (through env.py)."""
    from alembic.runtime.environment import EnvironmentContext

    found: list[str] = []

    def read(_rev: Any, context: Any) -> list[Any]:
        found.extend(context.get_current_heads())
        return []  # nothing to run: read only

    with EnvironmentContext(config, script, fn=read, dont_mutate=True):
        script.run_env()
    return sorted(found)


def _resolve(script: Any, target: str) -> str:
    """`head`, a revision or a unique prefix as a full revision id ("" for base); the target itself
    when it cannot be resolved offline (relative targets such as `-1` need the database)."""
    try:
        revisions = script.get_revisions(target)
    except Exception:
        return target
    return ",".join(sorted(r.revision for r in revisions if r is not None))


def _between(script: Any, upper: str, lower: str) -> list[str]:
    """Revisions above `lower` up to and including `upper`, oldest first."""
    if not upper or upper == lower:
        return []
    try:
        found = script.iterate_revisions(upper, lower or "base")
        return [r.revision for r in reversed(list(found))]
    except Exception:  # branches or unknown ids: the endpoints still tell what happened
        return [upper]


def run(ini: str, action: str, target: str, sql: bool, url: str | None) -> dict[str, Any]:
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config(ini)
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser interpolation
    script = ScriptDirectory.from_config(config)
    before = ",".join(_heads(config, script))
    result: dict[str, Any] = {"ok": False, "before": before, "after": before, "revisions": [], "error": None}
    try:
        if sql:  # offline mode starts from base unless told where the database is; downgrade requires it
            if action == "upgrade":
                command.upgrade(config, f"{before}:{target}" if before else target, sql=True)
            else:
                command.downgrade(config, f"{before or 'base'}:{target}", sql=True)
            result["after"] = _resolve(script, target)
        elif action == "upgrade":
            command.upgrade(config, target)
        else:
            command.downgrade(config, target)
        result["ok"] = True
    except Exception as exc:
        traceback.print_exc()
        result["error"] = f"{type(exc).__name__}: {exc}"
    if not sql:
        try:  # also after a failure: some revisions may have been committed (SQLite, transaction_per_migration)
            result["after"] = ",".join(_heads(config, script))
        except Exception as exc:
            result["after"] = None
            result["error"] = result["error"] or f"reading the version after {action}: {exc}"
            result["ok"] = False
    upper, lower = (result["after"], before) if action == "upgrade" else (before, result["after"])
    if upper is not None and lower is not None:
        result["revisions"] = _between(script, upper, lower)
        if action == "downgrade":
            result["revisions"].reverse()  # newest first, the order they were undone
    return result


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4) or argv[1] not in ("upgrade", "downgrade") or argv[3:] not in ([], ["--sql"]):
        print("usage: python -m tminus.db.alembic_driver INI upgrade|downgrade TARGET [--sql]", file=sys.stderr)
        return 2
    ini, action, target = argv[:3]
    try:
        result = run(ini, action, target, sql=len(argv) == 4, url=os.environ.get(URL_VARIABLE))
    except Exception as exc:  # configuration or env.py problems before anything ran
        traceback.print_exc()
        result = {"ok": False, "before": None, "after": None, "revisions": [], "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    print(MARKER + json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
