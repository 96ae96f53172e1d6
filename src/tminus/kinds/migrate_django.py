"""`migrate` with `django:`: `manage.py migrate` run with the release's interpreter and code, under
the migration lock of the other migrate backends.

Before anything is applied (under the lock): the state of every app (the migration `migrate APP X`
returns it to, or zero) is read by tminus.db.django_state run inside the project, and recorded as
the step's `revert_target` effect with the highest django_migrations id; the plan says up front
which migrations cannot be unapplied. After the command, even a failed one, the rows inserted
above that id are what was applied. The derived revert migrates each app that moved back to where
it was, newest app first, with the same manage.py and python (the new release's: only its code has
the migrations' reverse operations)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tminus.kinds.base import AUTO_UNDO, Execution, Observation, StepContext
from tminus.kinds.migrate_process import run_group, text
from tminus.runbook.models import MigrateSpec, Step
from tminus.runbook.roots import OutsideRoots, confine

REVERT_TARGET = "revert_target"  # the effect kinds.migrate records too
Rows = list[tuple[int, str, str]]  # django_migrations: id, app, name


class DjangoError(Exception):
    """The step fails with this message, before or after the command ran."""


@dataclass
class Project:
    """The release's Django project: how to run its manage.py."""

    ctx: StepContext
    python: str
    manage: Path
    env: dict[str, str]
    deadline: float | None

    def run(self, args: list[str], label: str, extra: dict[str, str] | None = None) -> tuple[str, str, int | None]:
        return run_group(self.ctx, [self.python, str(self.manage), *args], {**self.env, **(extra or {})},
                         self.manage.parent, label, self.deadline)

    def state(self, targets: list[list[str | None]] | None) -> dict[str, Any]:
        """tminus.db.django_state's answer (apps, plan, resolved targets), run inside the project."""
        from tminus.db import django_state

        request = json.dumps({"targets": targets})
        out, err, code = self.run(["shell", "--verbosity", "0", "-c", django_state.source()],
                                  "manage.py shell (tminus reads the migration state)",
                                  {django_state.REQUEST_VARIABLE: request})
        if code is None:
            raise DjangoError("stopped with the run while reading the migration state")
        last = out.rstrip("\n").rsplit("\n", 1)[-1]
        if not last.startswith(django_state.MARKER):
            hint = ""
            if "No module named 'django'" in err:
                hint = (f"; {self.python} cannot import Django: set django.python to the release's interpreter"
                        " (e.g. .venv/bin/python of the release)")
            raise DjangoError(f"reading the Django migration state failed (python {self.python}, exit {code}):"
                              f" {self.ctx.tail(err.strip() or out.strip(), 600)}{hint}")
        answer: dict[str, Any] = json.loads(last[len(django_state.MARKER):])
        if answer.get("error"):
            raise DjangoError(f"reading the Django migration state failed (python {self.python}): {answer['error']}")
        return answer


def describe(c: MigrateSpec) -> str:
    assert c.django is not None
    if c.django.targets is not None:
        what = "migrate " + ", ".join(f"{app} to {name}" for app, name in c.django.targets.items())
    elif c.django.apps is not None:
        what = f"migrate {', '.join(c.django.apps)} to the latest"
    else:
        what = "migrate every app to the latest"
    return f"django {what} ({c.django.manage})"


def derive_undo(step: Step, execution: Execution) -> list[Step] | None:
    """Every app back to where the step found it (recorded before the first migration ran, so a step
    killed mid-way is reverted too); apps already there are left alone when the revert runs."""
    config = step.migrate
    assert config is not None and config.django is not None
    if config.dry_run:
        return None
    effect = execution.first(REVERT_TARGET)
    before = effect.get("django") if effect is not None else None
    if before is None:
        before = execution.outputs.get("before", execution.evidence.get("before"))
    if not isinstance(before, dict) or not before:
        return None
    data = config.model_dump(mode="json", exclude_none=True)
    data["django"].pop("apps", None)
    # going back may move an app forwards (the step moved it back): that is restoring, not a risk
    data["django"].update(targets=before, allow_irreversible=True)
    data["dry_run"] = False
    undo = Step.model_validate({"name": f"revert: {step.title}", "migrate": data, "timeout": step.timeout})
    undo._path = step.path
    undo._key = f"{step.key}{AUTO_UNDO}"
    return [undo]


def execute(config: MigrateSpec, ctx: StepContext, migrator: Any, evidence: dict[str, Any]) -> Observation:
    from tminus.db.migrations.lock import migration_lock

    assert config.django is not None
    try:
        project = _project(config, ctx)
    except (DjangoError, OutsideRoots) as exc:
        return Observation(error=str(exc), evidence=evidence)
    evidence.update(manage=str(project.manage), python=project.python)
    me = f"tminus migrate {migrator.operator}@{migrator.host} (django)"
    start = time.perf_counter()
    with migration_lock(migrator.engine, migrator.tables, config.lock_wait, me):
        rows = _rows(migrator.engine)
        try:
            return _locked(config, ctx, project, migrator, rows, evidence, start)
        except subprocess.TimeoutExpired as exc:
            evidence.update(stdout=ctx.tail(text(exc.stdout)), stderr=ctx.tail(text(exc.stderr)))
            error, timed_out = (f"manage.py did not finish within {ctx.timeout:g}s and was killed; the migration"
                                " it was applying rolled back with its transaction"), True
        except DjangoError as exc:
            error, timed_out = str(exc), False
        evidence.update(_progress(rows, _rows(migrator.engine)))
        return Observation(error=error, evidence=evidence, timed_out=timed_out)


def _locked(config: MigrateSpec, ctx: StepContext, project: Project, migrator: Any, rows: Rows,
            evidence: dict[str, Any], start: float) -> Observation:
    dj = config.django
    assert dj is not None
    if dj.targets is not None:  # newest app first: the one whose latest row is newest
        newest = {app: i for i, app, _name in rows}
        order = sorted(dj.targets, key=lambda app: -newest.get(app, 0))
        wanted: list[list[str | None]] | None = [[app, dj.targets[app]] for app in order]
    else:
        wanted = None if dj.apps is None else [[app, None] for app in dj.apps]
    found = project.state(wanted)
    _same_database(found, migrator)
    before = {app: s["leaf"] for app, s in found["apps"].items()}
    plan = found["plan"]
    evidence["plan"] = [f"{m['app']}.{m['name']}{' (backwards)' if m['backwards'] else ''}"
                        + "".join(f" IRREVERSIBLE: {op}" for op in m["irreversible"]) for m in plan]
    _refuse_irreversible(plan, dj.allow_irreversible)
    if config.dry_run:
        evidence.update(before=before, dry_run=True)
        outputs = {"before": before, "after": before, "applied": _names(plan, False), "reverted": _names(plan, True)}
        return Observation(values={**outputs, "count": len(plan)}, outputs=outputs, evidence=evidence)
    before = ctx.shared.setdefault(f"migrate.before:{ctx.step.key}", before)  # a retry's revert goes further back
    ctx.record_effect(REVERT_TARGET, django=before, mark=max((r[0] for r in rows), default=0),
                      url=migrator.engine.url.render_as_string(hide_password=True))
    evidence["before"] = before
    if dj.targets is not None:
        commands = [[app, name] for app, name in found.get("targets", []) if before.get(app) != name]
    else:
        commands = [[app] for app in dj.apps] if dj.apps is not None else [[]]
    runs: list[dict[str, Any]] = []
    evidence["commands"] = runs
    for args in commands:
        argv = ["migrate", *args, "--noinput"]
        out, err, code = project.run(argv, f"manage.py {' '.join(argv)}")
        runs.append({"command": ["manage.py", *argv], "exit_code": code, "stdout": ctx.tail(out, 2000),
                     "stderr": ctx.tail(err, 2000)})
        if code is None:
            raise DjangoError(f"manage.py {' '.join(argv)} was stopped with the run; the migration it was applying"
                              " rolled back with its transaction")
        if code != 0:
            raise DjangoError(f"manage.py {' '.join(argv)} failed (exit {code}): {_why(ctx, err or out)}")
    after = {app: s["leaf"] for app, s in project.state([]).get("apps", {}).items()}
    progress = _progress(rows, _rows(migrator.engine))
    outputs = {"before": before, "after": after, **progress}
    evidence.update(outputs, duration_ms=round((time.perf_counter() - start) * 1000, 1))
    if dj.targets is not None:
        wrong = [f"{app} is at {after.get(app)}, expected {name}" for app, name in found.get("targets", [])
                 if after.get(app) != name]
        if wrong:
            return Observation(error="after manage.py migrate, " + "; ".join(wrong), evidence=evidence)
    values = {**outputs, "count": len(progress["applied"]) + len(progress["reverted"]),
              "duration": evidence["duration_ms"]}
    return Observation(values=values, outputs=outputs, evidence=evidence)


def _project(config: MigrateSpec, ctx: StepContext) -> Project:
    dj = config.django
    assert dj is not None
    manage = confine(dj.manage, ctx.base_dir, ctx.roots, what="django.manage")
    if not manage.is_file():
        raise DjangoError(f"{manage} not found (django.manage is the project's manage.py, relative to the runbook)")
    env = {**ctx.environ, **dj.env, "PYTHONUNBUFFERED": "1"}
    if dj.settings is not None:
        env["DJANGO_SETTINGS_MODULE"] = dj.settings
    deadline = None if ctx.timeout is None else time.monotonic() + ctx.timeout
    return Project(ctx, _python(dj.python, ctx.base_dir, env), manage, env, deadline)


def _python(given: str | None, base: Path, env: dict[str, str]) -> str:
    """The release's interpreter: a path relative to the runbook (a virtualenv's python is a symlink
    that must not be resolved, or the virtualenv is lost), or a name on the step's PATH."""
    name = given or "python3"
    if "/" in name:
        path = Path(os.path.abspath(base / name))
        if not os.access(path, os.X_OK):
            raise DjangoError(f"django.python {path} is not an executable interpreter")
        return str(path)
    found = shutil.which(name, path=env.get("PATH", os.defpath))
    if found is None:
        raise DjangoError(f"{name} is not on the step's PATH; set django.python to the release's interpreter"
                          " (e.g. .venv/bin/python)")
    return found


def _rows(engine: Any) -> Rows:
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table("django_migrations"):
            return []
        return [(int(r[0]), str(r[1]), str(r[2]))
                for r in conn.execute(text("SELECT id, app, name FROM django_migrations ORDER BY id"))]


def _progress(before: Rows, after: Rows) -> dict[str, list[str]]:
    """What the command did, from django_migrations: rows above the highest id found before were
    applied (oldest first); rows gone were unapplied (newest first). Squashed migrations show as the
    rows Django wrote (the replaced ones and the squash)."""
    mark = max((r[0] for r in before), default=0)
    now = {(a, n) for _i, a, n in after}
    return {"applied": [f"{a}.{n}" for i, a, n in after if i > mark],
            "reverted": [f"{a}.{n}" for _i, a, n in reversed(before) if (a, n) not in now]}


def _names(plan: list[dict[str, Any]], backwards: bool) -> list[str]:
    return [f"{m['app']}.{m['name']}" for m in plan if m["backwards"] == backwards]


def _refuse_irreversible(plan: list[dict[str, Any]], allowed: bool) -> None:
    back = [m for m in plan if m["backwards"] and m["irreversible"]]
    if back:
        named = "; ".join(f"{m['app']}.{m['name']} ({', '.join(m['irreversible'])})" for m in back)
        raise DjangoError(f"cannot unapply {named}: Django has no reverse for these operations (RunPython without"
                          " reverse_code, RunSQL without reverse_sql). Nothing was unapplied. Add the reverse to"
                          " the release's migration and run the revert again, or restore the database from a backup")
    forward = [m for m in plan if not m["backwards"] and m["irreversible"]]
    if forward and not allowed:
        named = "; ".join(f"{m['app']}.{m['name']} ({', '.join(m['irreversible'])})" for m in forward)
        raise DjangoError(f"refusing to apply {named}: it cannot be unapplied, so this step's revert would fail."
                          " Nothing was applied. Give it a reverse (RunPython(code, reverse_code=...),"
                          " RunSQL(sql, reverse_sql=...); migrations.RunPython.noop when nothing needs undoing),"
                          " or set django.allow_irreversible: true")


def _same_database(found: dict[str, Any], migrator: Any) -> None:
    """Django's settings and the step's url must name one database: the state and the lock are
    read through the url, the migrations go where the settings say."""
    url = migrator.engine.url
    theirs, ours = str(found.get("database") or ""), str(url.database or "")
    dialect = "postgresql" if url.get_backend_name() == "postgresql" else url.get_backend_name()
    if found.get("vendor") != dialect:
        raise DjangoError(f"Django's settings use a {found.get('vendor')} database, the step's url a {dialect} one:"
                          " make them name the same database (django.env can pass it, e.g. DATABASE_URL)")
    same = (Path(theirs).resolve() == Path(ours).resolve()) if dialect == "sqlite" else theirs == ours
    if not same:
        raise DjangoError(f"Django's settings use database {theirs!r}, the step's url {ours!r}: the state and the"
                          " lock would be read in one and the migrations applied to the other; make them the same"
                          " (django.env can pass it, e.g. DATABASE_URL)")


def _why(ctx: StepContext, output: str) -> str:
    """The end of the traceback: Django's own message is on its last lines."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return ctx.tail("\n".join(lines[-3:]), 800)

