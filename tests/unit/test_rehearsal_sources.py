"""What a rehearsal fingerprints (engine/rehearsal/state.py `sources`), from the runbook alone: a
`fingerprint` step's table names are templates like its URL, rendered with the environment's vars."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import write_runbook

from tminus.engine.context import Options
from tminus.engine.rehearsal.state import sources
from tminus.runbook.loader import load_runbook

RUNBOOK = """
    name: tables-templated
    vars: {schema: app, db: data.db}
    environments:
      staging: {vars: {schema: app_staging}}
    gates:
      - name: data
        checks:
          - name: the app's table
            fingerprint:
              url: "sqlite:///{{ vars.db }}"
              tables: ["{{ vars.schema }}.greeting", plain]
    phases:
      - name: one
        steps:
          - id: later
            run: "echo x"
            undo: [{run: "echo undo"}]
          - name: a table only the run knows
            fingerprint:
              url: "sqlite:///{{ vars.db }}"
              tables: ["{{ steps.later.stdout }}"]
"""


def test_table_names_are_rendered_with_the_environments_vars(tmp_path: Path) -> None:
    doc = load_runbook(write_runbook(tmp_path, RUNBOOK))
    found = sources(doc, Options(environment="staging", overrides={"db": "other.db"}))
    (source,) = found.found
    assert source.tables == ("app_staging.greeting", "plain")
    assert source.url.endswith("other.db")
    # a table name that needs a step's output cannot be known before the run: skipped, with why
    assert len(found.notes) == 1 and "known only during the run" in found.notes[0], found.notes
    assert found.notes[0].startswith("phases[0].steps[1]")


def test_the_same_rendered_tables_are_fingerprinted_once(tmp_path: Path) -> None:
    text = RUNBOOK.replace('["{{ steps.later.stdout }}"]', '["{{ vars.schema }}.greeting", "plain"]')
    doc = load_runbook(write_runbook(tmp_path, text))
    found = sources(doc, Options(environment="staging"))
    assert [s.tables for s in found.found] == [("app_staging.greeting", "plain")]
    assert found.notes == []
