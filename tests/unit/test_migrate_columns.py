"""`migrate: columns:` as written in a runbook: careless mappings are refused where they stand."""

from __future__ import annotations

import pytest

from tminus.errors import Problem, RunbookError
from tminus.runbook.loader import load_runbook

RUNBOOK = """\
name: a
phases:
  - name: p
    steps:
      - migrate:
          url: sqlite:///app.db
          dir: migrations
          table: schema_migrations
          columns: {columns}
"""


def problems(columns: str) -> list[Problem]:
    with pytest.raises(RunbookError) as info:
        load_runbook("rb.yaml", RUNBOOK.replace("{columns}", columns))
    return info.value.problems


def test_a_mapping_loads() -> None:
    doc = load_runbook("rb.yaml", RUNBOOK.replace("{columns}", "{version: version, applied_at: installed_on}"))
    step = doc.runbook.phases[0].steps[0]
    assert step.migrate is not None and step.migrate.columns is not None
    assert step.migrate.columns.model_dump(exclude_none=True) == {"version": "version", "applied_at": "installed_on"}


@pytest.mark.parametrize(("columns", "line", "says"), [
    ("{applied_at: applied_at}", 9, "version"),  # version is required
    ("{version: v, verison: x}", 9, "verison"),
    ("{version: 'v; DROP TABLE users'}", 9, "expected a plain column name"),
    ("{version: ''}", 9, "expected a plain column name"),
    ("{version: v, name: V}", 9, "mapped twice"),
    ("[version]", 9, ""),
    ("{version: [a]}", 9, ""),
])
def test_careless_mappings_are_positioned(columns: str, line: int, says: str) -> None:
    found = problems(columns)
    assert found, columns
    p = found[0]
    assert p.location is not None and p.location.line == line, (p.location, p.message)
    assert says in p.message + (p.hint or "")


def test_columns_with_alembic_is_refused() -> None:
    text = RUNBOOK.replace("dir: migrations", "alembic: alembic.ini").replace("{columns}", "{version: v}")
    with pytest.raises(RunbookError) as info:
        load_runbook("rb.yaml", text)
    assert any("Alembic keeps its own" in p.message for p in info.value.problems)
