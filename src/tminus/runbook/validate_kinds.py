"""Checks of a step's configuration before a run: paths stay inside the runbook's folder or its
`roots:`, and what a kind refuses in a configuration (its descriptor's `validate`).

A value holding a template is left to the run: the kind checks it again once rendered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from tminus.runbook.models import Runbook, Step
from tminus.runbook.roots import HINT, OutsideRoots, confine, glob_base
from tminus.templating.templater import has_template

Add = Callable[..., None]  # _Validator.add(message, path, hint)

_SQLITE_PATH = re.compile(r"^sqlite(?:\+\w+)?:///(?P<db>[^?]*)")


def kind_problems(runbook: Runbook, base_dir: Path, add: Add, warn: Add | None = None) -> None:
    from tminus.kinds.registry import get  # what a kind refuses, asked of the registry (never a kind module)

    for i, root in enumerate(runbook.roots):
        if has_template(root):
            add(f"a root is a folder written out, not a template: {root!r}", ("roots", i),
                "roots are checked before a run; write the folder's path")
    for step in runbook.all_steps():
        at = (*step.path, step.kind)
        for field, path, what in _paths(step):
            if has_template(path):
                continue
            try:
                confine(path, base_dir, runbook.roots, what=what)
            except OutsideRoots as exc:
                add(exc.reason, (*at, field), HINT)
        validate = get(step.kind).validate
        for refusal in validate(step.config) if validate is not None else ():
            report = warn if refusal.warning and warn is not None else add
            report(refusal.message, (*at, refusal.field), refusal.hint)


def _paths(step: Step) -> Iterator[tuple[str, str, str]]:
    """(field, path relative to the runbook's folder, what it is) for each path a step names."""
    if step.file is not None:
        yield "path", glob_base(step.file.path), "the file path"
    if step.run is not None and step.run.cwd:
        yield "cwd", step.run.cwd, "the working directory (cwd)"
    if step.sql is not None:
        if step.sql.file is not None:
            yield "file", step.sql.file, "the SQL file"
        m = _SQLITE_PATH.match(step.sql.url)
        db = m.group("db") if m else ""
        if db and not db.startswith("/") and db != ":memory:" and not db.startswith("file:"):
            yield "url", db, "the SQLite database"
    if step.proxy is not None:  # the files a proxy step writes or serves (kinds/proxy.py confines them again)
        for field, what in (("config", "the nginx include"), ("page", "the maintenance page"),
                            ("template", "the template"), ("output", "the proxy configuration")):
            if getattr(step.proxy, field) is not None:
                yield field, getattr(step.proxy, field), what


__all__ = ["kind_problems"]
