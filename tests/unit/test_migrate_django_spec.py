"""`migrate: {django: ...}` as written (validation) and its derived revert, without Django running:
the revert is read from the recorded state alone (tests/integration/test_migrate_django.py runs it)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tminus.kinds import registry
from tminus.kinds.base import Execution
from tminus.kinds.migrate_django import _progress
from tminus.runbook.models import MigrateSpec, Step

URL = "postgresql://db/app"


def spec(**django: Any) -> dict[str, Any]:
    return {"url": URL, "django": {"manage": "app/manage.py", **django}}


@pytest.mark.parametrize(("data", "message"), [
    ({**spec(), "dir": "migrations"}, "give exactly one of 'dir', 'alembic' or 'django'"),
    ({**spec(), "to": "0002"}, "'to' does not apply to 'django': name each app's migration in django.targets"),
    ({**spec(), "revert_to": "0", "columns": {"version": "v"}}, "'revert_to', 'columns' do not apply"),
    (spec(apps=["blog"], targets={"blog": "zero"}), "give 'apps' (each to its latest) or 'targets'"),
    (spec(apps=["blog; rm -rf /"]), "expected a Django app label"),
    (spec(targets={"a.b": "zero"}), "expected a Django app label"),
])
def test_refused_as_written(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        MigrateSpec.model_validate(data)
    assert message in str(info.value)


def _step(**django: Any) -> Step:
    step = Step.model_validate({"name": "schema", "migrate": spec(python=".venv/bin/python", **django),
                                "timeout": "5m"})
    step._key = "phases[0].steps[0]"
    return step


def _undo(step: Step, execution: Execution) -> list[Step] | None:
    derive = registry.get("migrate").derive_undo
    assert derive is not None
    return derive(step, execution)


def test_revert_every_app_to_the_recorded_state_with_the_same_release() -> None:
    state = {"blog": "0001_initial", "shop": "zero"}
    execution = Execution(key="phases[0].steps[0]", effects=[
        {"effect": "revert_target", "django": state, "mark": 7, "execution": 1},
        {"effect": "revert_target", "django": {"blog": "0003_seed_posts", "shop": "zero"}, "execution": 2}])
    undo = _undo(_step(apps=["blog"], allow_irreversible=False), execution)
    assert undo is not None and len(undo) == 1
    config = undo[0].migrate
    assert config is not None and config.django is not None
    assert config.django.targets == state  # the first attempt's: a retry goes back past what others did
    assert config.django.apps is None and config.django.allow_irreversible is True
    assert (config.django.manage, config.django.python) == ("app/manage.py", ".venv/bin/python")
    assert undo[0].key == "phases[0].steps[0].undo[auto]" and undo[0].timeout == 300


def test_revert_from_a_finished_step_s_evidence_or_nothing() -> None:
    finished = Execution(key="k", status="failed", evidence={"before": {"blog": "zero"}})
    undo = _undo(_step(), finished)
    assert undo is not None and undo[0].migrate is not None and undo[0].migrate.django is not None
    assert undo[0].migrate.django.targets == {"blog": "zero"}
    assert _undo(_step(), Execution(key="k")) is None  # killed before it recorded anything: nothing to undo
    dry = _step()
    assert dry.migrate is not None
    dry.migrate.dry_run = True
    assert _undo(dry, finished) is None


def test_plan_line() -> None:
    describe = registry.get("migrate").describe
    assert describe is not None
    line = describe(MigrateSpec.model_validate(spec(targets={"blog": "0001", "shop": "zero"})), _step(), str)
    assert line == f"django migrate blog to 0001, shop to zero (app/manage.py) on {URL}"
    line = describe(MigrateSpec.model_validate({**spec(), "dry_run": True}), _step(), str)
    assert line == f"django migrate every app to the latest (app/manage.py) on {URL} (dry run)"


def test_progress_from_django_migrations_rows() -> None:
    before = [(1, "blog", "0001_initial"), (2, "shop", "0001_initial"), (3, "shop", "0002_price")]
    after = [(1, "blog", "0001_initial"), (2, "shop", "0001_initial"), (9, "blog", "0002_slug"),
             (10, "blog", "0003_seed")]
    assert _progress(before, after) == {"applied": ["blog.0002_slug", "blog.0003_seed"],
                                        "reverted": ["shop.0002_price"]}
    assert _progress([], []) == {"applied": [], "reverted": []}
