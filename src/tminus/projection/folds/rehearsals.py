"""rehearsal.started and rehearsal.cycle: a rehearsal's plan and each cycle's figures (the cycles'
own runs are ordinary runs, tagged in their run.started; this is the record that groups them)."""

from __future__ import annotations

from typing import Any

from tminus.projection.fact import Fact
from tminus.projection.model import RehearsalCycle, RehearsalView
from tminus.projection.state import ViewState


def rehearsal_started(view: ViewState, f: Fact) -> None:
    d = f.data
    view.rehearsal = RehearsalView(
        f.seq, f.at, d.get("environment"), d.get("content_hash"), dict(d.get("procedure_hashes") or {}),
        list(d.get("cycles") or []), list(d.get("not_rehearsed") or []), bool(d.get("all_phases")), [], d)


def rehearsal_cycle(view: ViewState, f: Fact) -> None:
    if view.rehearsal is None:  # a cycle without its plan: keep it all the same, on an empty record
        view.rehearsal = RehearsalView(f.seq, f.at, None, None)
    d = f.data
    prints: dict[str, Any] = d.get("fingerprints") or {}
    view.rehearsal.cycles.append(RehearsalCycle(
        f.seq, int(d.get("index", len(view.rehearsal.cycles))), d.get("at"), str(d.get("fault", "")),
        str(d.get("rehearsed_as", "rollback")), d.get("run_id"), d.get("status"), bool(d.get("ok")),
        list(d.get("problems") or []), d.get("reached_s"), d.get("rto_s"), d.get("verify_s"), d.get("budget_s"),
        prints.get("equal"), list(prints.get("differences") or []), d))
