"""`Kind.imports`: what a kind imports as it runs is imported before its steps run side by side.

Two threads importing one package at once can each see it half initialised ("cannot import name
'AdaptedConnection' from partially initialized module 'sqlalchemy.engine'": a gate's sql and
fingerprint checks, once the ledger stopped importing SQLAlchemy at start-up). So every library a
kind module imports inside a function must be in `sys.modules` once `registry.preload` ran for it.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

from tminus.kinds import registry

# imported inside functions on purpose and light, or of the standard library: not what races
HEAVY_ROOTS = ("sqlalchemy", "httpx", "redis", "psycopg", "alembic", "tminus.db", "tminus.notify",
               "tminus.kinds.proxy_proof")


def _lazy_imports(module: str) -> set[str]:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    with open(spec.origin, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    found: set[str] = set()
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                     else [])
            found.update(n for n in names if n.startswith(HEAVY_ROOTS))
    return found


@pytest.mark.parametrize("kind", sorted(registry.MODULES))
def test_preload_imports_what_the_kind_imports_as_it_runs(kind: str) -> None:
    wanted = _lazy_imports(registry.MODULES[kind])
    code = textwrap.dedent(f"""
        import json, sys
        from tminus.kinds import registry
        registry.preload([{kind!r}])
        print(json.dumps(sorted(sys.modules)))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = set(json.loads(done.stdout))
    missing = sorted(m for m in wanted if m not in loaded)
    assert not missing, f"kind {kind} imports {missing} as it runs: add them to its register(imports=...)"


def test_a_runbook_of_run_steps_preloads_nothing_heavy() -> None:
    code = ("import sys; from tminus.kinds import registry; registry.preload(['run', 'file', 'tcp', 'env']); "
            "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'httpx', 'redis'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
