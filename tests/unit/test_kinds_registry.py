"""Every kind is described in one place: its registration. The runbook, plan, rollback and the
session ask the descriptor, never a list of kind names of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import wait_for

from tminus.engine.plan import build_plan, describe
from tminus.engine.rollback import PlannedUndo
from tminus.engine.session import Options, build_templater
from tminus.errors import TminusError
from tminus.kinds import registry
from tminus.kinds.base import AUTO_UNDO, Effect, Execution, Kind, StepContext
from tminus.kinds.transport import LocalTransport, group_members, process_start_time
from tminus.runbook.loader import load_runbook
from tminus.runbook.models import KIND_FIELDS, Step

ROOT = Path(__file__).resolve().parents[2]

# One step of every kind, and the variants whose effect class depends on the configuration.
ALL_KINDS = """
name: every-kind
channels: {ops: {url: "http://127.0.0.1:9/hook"}}
phases:
  - name: p
    steps:
      - run: "echo hi"
      - http: "http://127.0.0.1:9/health"
      - http: {url: "http://127.0.0.1:9/deploy", method: POST}
      - sql: {url: "sqlite:///app.db", query: "select 1"}
      - sql: {url: "sqlite:///app.db", query: "update t set x = 1", write: true}
      - file: {path: "*.txt", exists: true}
      - tcp: {host: 127.0.0.1, port: 5432}
      - env: {present: [HOME]}
      - wait: {check: {tcp: {port: 80}}, interval: 2s}
        timeout: 30s
      - manual: "Is the banner up?"
      - migrate: {url: "sqlite:///app.db", dir: migrations, to: "0002"}
      - backup: {url: "sqlite:///app.db", dir: backups, keep: 3}
      - restore: {url: "sqlite:///app.db", file: backups/x.db}
      - fingerprint: {url: "sqlite:///app.db", tables: [users]}
      - migration_lint: {dir: migrations}
      - notify: {channel: ops, message: "cutover begins"}
      - prometheus: {url: "http://127.0.0.1:9090", query: "up"}
      - redis: {url: "redis://:pw@127.0.0.1:6379/0", command: "LLEN jobs"}
      - proxy: {driver: nginx, action: switch, to: green, config: routing.conf, conf: nginx.conf,
                pid_file: nginx.pid, upstreams: {blue: ["127.0.0.1:8001"], green: ["127.0.0.1:8002"]}}
      - proxy: {driver: nginx, action: drain, from: blue, config: routing.conf, conf: nginx.conf,
                pid_file: nginx.pid, upstreams: {blue: ["127.0.0.1:8001"], green: ["127.0.0.1:8002"]}}
      - service: {action: start, name: green, command: "gunicorn app:app", health: {tcp: {port: 8002}}}
      - watch:
          duration: 5m
          interval: 10s
          probes: [{name: green, http: "http://127.0.0.1:9/"}]
          rules: [{name: errors, when: status >= 500, consecutive: 3}]
      - docs: {file: RUNBOOK.md}
"""


def _doc(tmp_path: Path, text: str = ALL_KINDS) -> Any:
    path = tmp_path / "runbook.yaml"
    path.write_text(textwrap.dedent(text))
    return load_runbook(path)


def _old_is_check(step: Step) -> bool:
    """The definition the descriptors replace (Step.is_check before issue 8), as the reference, with
    issue 11's changes: a step's `effect:` decides, and `manual` is a check unless it says otherwise."""
    if step.declared_effect is not None:
        return step.declared_effect == "none"
    kind = step.kind
    if kind in ("file", "tcp", "env", "wait", "fingerprint", "migration_lint", "prometheus", "redis", "manual",
                "watch", "docs"):
        return True
    if kind == "proxy":  # issue 12: a drain only waits
        assert step.proxy is not None
        return step.proxy.action == "drain"
    if kind == "http":
        assert step.http is not None
        return step.http.method.upper() in ("GET", "HEAD", "OPTIONS")
    if kind == "sql":
        assert step.sql is not None
        return not step.sql.write
    return False


def _old_needs_undo(step: Step) -> bool:
    if step.declared_effect is not None:
        return step.declared_effect == "irreversible"
    return not _old_is_check(step) and step.kind not in ("backup", "migrate", "notify", "proxy", "service")


def _fixture_runbooks() -> list[Path]:
    paths = sorted((ROOT / "tests" / "fixtures" / "runbooks").glob("*.yaml"))
    return paths + sorted((ROOT / "examples").glob("*/runbook.yaml"))


def test_every_kind_has_a_descriptor(tmp_path: Path) -> None:
    assert set(registry.MODULES) == set(KIND_FIELDS)
    configs = {s.kind: s.config for s in _doc(tmp_path).runbook.phases[0].steps}
    for name in KIND_FIELDS:
        kind = registry.get(name)
        assert isinstance(kind, Kind) and kind.name == name
        # the config model is the runbook's (spec apart from execution)
        assert kind.config is type(configs[name]), name
        assert kind.describe is not None, f"{name}: plan cannot describe it"
        assert kind.queries, f"{name}: no queries declared"
        assert kind.on_failure in ("rollback", "continue", "abort")
    assert registry.get("migrate").derive_undo is not None
    assert [k.name for k in registry.all_kinds() if k.derive_undo is not None] == ["migrate", "proxy", "service"]


def test_plan_describes_every_kind(tmp_path: Path) -> None:
    doc = _doc(tmp_path)
    opts = Options(environment="default", environ={"HOME": "/root"})
    t = build_templater(doc, opts, {}, plan_mode=True)
    steps = doc.runbook.phases[0].steps
    assert {s.kind for s in steps} == set(KIND_FIELDS)
    lines = {s.key: describe(s, t) for s in steps}
    for step in steps:
        line = lines[step.key]
        assert line != step.kind and "cannot render" not in line, (step.kind, line)
    by_kind = {s.kind: lines[s.key] for s in reversed(steps)}  # the first of each kind
    assert by_kind["run"] == "$ echo hi"
    assert by_kind["http"] == "GET http://127.0.0.1:9/health"
    assert by_kind["wait"] == "every 2.0s up to 30.0s: tcp 127.0.0.1:80 is open"
    assert by_kind["migrate"] == "apply migrations in migrations up to 0002 on sqlite:///app.db"
    assert by_kind["notify"] == "notify channel ops: cutover begins"
    assert by_kind["prometheus"] == "prometheus http://127.0.0.1:9090: up"
    assert by_kind["redis"] == "redis redis://:***@127.0.0.1:6379/0: LLEN jobs"  # the password never shown
    assert by_kind["docs"] == "docs RUNBOOK.md is current (tminus docs this runbook)"
    assert by_kind["proxy"] == "nginx: switch all traffic to green"
    assert by_kind["service"] == ("start process green ($ gunicorn app:app); "
                                  "healthy within 30.0s: tcp 127.0.0.1:8002 is open")
    assert by_kind["watch"] == ("for 5m00s, every 10.0s: green; fails on errors: status >= 500 for 3 consecutive "
                                "probes")
    plan = build_plan(doc, opts)
    assert [s.summary for s in plan.phases[0].steps] == [lines[s.key] for s in steps]


@pytest.mark.parametrize("path", [*_fixture_runbooks(), None],
                         ids=lambda p: f"{p.parent.name}/{p.name}" if p else "all")
def test_effect_classes_agree_with_the_old_definitions(path: Path | None, tmp_path: Path) -> None:
    try:
        doc = _doc(tmp_path) if path is None else load_runbook(path)
    except TminusError:
        pytest.skip("a fixture that does not load (it tests error messages)")
    steps = doc.runbook.all_steps()
    assert steps
    for step in steps:
        assert step.is_check == _old_is_check(step), step.key
        assert step.needs_undo == _old_needs_undo(step), step.key
        assert step.failure_policy == (step.on_failure or ("continue" if step.kind == "notify" else "rollback"))
        assert Effect(step.effect) == registry.effect_of(step)


def test_effect_class_follows_the_configuration(tmp_path: Path) -> None:
    """manual (index 9) is none since issue 11: asking a person changes nothing by itself."""
    effects = [s.effect for s in _doc(tmp_path).runbook.phases[0].steps]
    assert effects == ["irreversible", "none", "irreversible", "none", "irreversible", "none", "none", "none",
                       "none", "none", "reversible", "additive", "irreversible", "none", "none",
                       "additive", "none", "none", "reversible", "none", "reversible", "none", "none"]


def test_a_recorded_plan_entry_rebuilds_the_step(tmp_path: Path) -> None:
    """rollback.started records each step whole: it must come back equal, key and place included."""
    for path in [*_fixture_runbooks(), None]:
        try:
            doc = _doc(tmp_path) if path is None else load_runbook(path)
        except TminusError:
            continue
        for step in doc.runbook.all_steps():
            entry = PlannedUndo(step, "undo:p").to_record()
            back = PlannedUndo.from_record(entry)
            assert back.step == step and back.step.key == step.key and back.step.path == step.path, step.key
            assert back.to_record() == entry


def _migrate_step(tmp_path: Path, **extra: Any) -> Step:
    doc = _doc(tmp_path, """
        name: m
        phases:
          - name: p
            steps:
              - name: schema
                timeout: 40s
                migrate: {url: "sqlite:///app.db", dir: migrations, to: "0003"}
    """)
    return doc.runbook.phases[0].steps[0]


def test_migrate_derives_its_revert_from_the_recorded_effect(tmp_path: Path) -> None:
    step = _migrate_step(tmp_path)
    derive = registry.get("migrate").derive_undo
    assert derive is not None
    # interrupted (no finished result) but the effect was recorded before the first migration
    undo = derive(step, Execution(step.key, effects=[{"effect": "revert_target", "before": "0001", "execution": 1},
                                                     {"effect": "revert_target", "before": "0002", "execution": 2}]))
    assert undo is not None and len(undo) == 1
    revert = undo[0]
    assert revert.key == step.key + AUTO_UNDO and revert.path == step.path
    assert revert.migrate is not None and revert.migrate.revert_to == "0001" and revert.migrate.to is None
    assert revert.timeout == 40 and revert.title == "revert: schema"

    def target(execution: Execution) -> str | None:
        steps = derive(step, execution)
        assert steps is not None and steps[0].migrate is not None
        return steps[0].migrate.revert_to

    assert target(Execution(step.key, effects=[{"effect": "revert_target", "before": ""}])) == "0"  # nothing applied
    # a ledger without effects: the finished step's report
    assert target(Execution(step.key, status="failed", evidence={"before": "0002"})) == "0002"
    # nothing recorded, nothing reported: nothing safe to revert to
    assert derive(step, Execution(step.key)) is None


def test_record_effect_goes_to_the_sink_before_returning(tmp_path: Path) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    step = _migrate_step(tmp_path)
    ctx = StepContext(step=step, base_dir=tmp_path, timeout=None, effect_sink=lambda k, d: seen.append((k, d)))
    ctx.record_effect("process", pgid=12)
    assert seen == [("process", {"pgid": 12})]
    StepContext(step=step, base_dir=tmp_path, timeout=None).record_effect("process", pgid=1)  # outside a run: no-op
    assert ctx.transport.target == "local"


def test_local_transport_spawns_a_group_leader_with_a_start_time(tmp_path: Path) -> None:
    transport = LocalTransport()
    proc = transport.spawn(["/bin/sh", "-c", "sleep 30"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"},
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = transport.process_identity(proc.pid)
        assert started is not None and started == process_start_time(proc.pid)
        assert proc.pid in group_members(proc.pid)  # its own group: killed as one
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    wait_for(lambda: group_members(proc.pid) == [])
    assert process_start_time(proc.pid) is None


def test_stop_group_leaves_a_recycled_pid_alone(tmp_path: Path) -> None:
    """A recorded group whose leader's pid now belongs to another process (another start time) is
    not signalled."""
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert LocalTransport().stop_group(other.pid, "not-its-start-time", grace=0.1) is None
        assert other.poll() is None
        assert LocalTransport().stop_group(other.pid, process_start_time(other.pid), grace=2) == "terminated (SIGTERM)"
        assert other.wait(timeout=5) == -signal.SIGTERM
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()


def test_resources_are_closed_once_for_the_kinds_that_ran() -> None:
    closed: list[str] = []

    class Client:
        def close(self) -> None:
            closed.append("http")

    shared: dict[str, Any] = {"http.client": Client()}
    registry.close_resources(shared, ["notify", "http", "prometheus", "tcp"])  # one client, shared by three
    assert closed == ["http"] and "http.client" not in shared
    assert {r.name for r in registry.get("restore").resources} == {"sql.engines"}
