"""How each ending of a run is explained (blocked, rolled back, rollback failed, aborted, interrupted
or still running, needs an operator, completed): its causes, summary, what was undone, what went
right and what to do next, written into the `Explanation` that reports/why.py starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tminus.projection import Execution, RollbackPass
from tminus.reports import stops
from tminus.reports.causes import last_stop, step_cause, stop_cause, trigger
from tminus.reports.explanation import Cause, Explanation
from tminus.reports.records import Run, count, phase_time, section_words


def _blocked(x: Explanation, r: Run, run: Any) -> None:
    for note in r.view.notes_for("manifest"):
        x.causes.append(Cause("manifest", f"The environment manifest is not met: {note.message}.",
                              "the environment manifest", note.at))
    # what the ledger had to hold (engine/preconditions.py): a requirement not met, a required stage not passed
    unmet = [n for action in ("requirement", "rehearsal-required") for n in r.view.notes_for(action)
             if n.data.get("ok") is False]
    stages = [n for n in r.view.notes_for("stage") if n.data.get("required") and n.data.get("status") != "passed"]
    x.causes += [Cause("requires", f"{n.message}.", "a requirement", n.at) for n in unmet]
    x.causes += [Cause("stage", f"{n.message}.", "a stage", n.at) for n in stages]
    checks = r.finished_in("gate")
    x.causes += [step_cause(e, r) for e in checks if e.status == "failed"]
    if not x.causes:
        for g in r.view.sections_of("gates"):
            if g.finished_seq is not None:
                x.causes += [Cause("gate", f"{f}.", "a gate", g.finished_at) for f in g.failures]
    passed = sum(1 for e in checks if e.status != "failed")
    failed = len(x.causes) - len(unmet) - len(stages)
    what = [count(failed, "check") + " failed"] if failed or not (unmet or stages) else []
    what += [count(len(unmet), "requirement") + " not met"] if unmet else []
    what += [count(len(stages), "stage") + " not passed"] if stages else []
    x.summary = f"Run {run.id} was blocked at the gates: {', '.join(what)}, so nothing was changed."
    x.progress.append(f"{passed} of {len(checks)} gate checks passed.")
    for n in stages:
        x.next_steps.append(f"Run the stage when its window is open: `tminus gate {run.runbook_path} "
                            f"--stage {n.data.get('stage')}`.")
    for n in unmet:
        wanted = n.data.get("wanted") or {}
        if n.action == "rehearsal-required":  # decision.require_rehearsal: a rehearsal, not a run
            x.next_steps.append(f"Rehearse it first: `tminus rehearse {run.runbook_path} -e "
                                f"{wanted.get('environment')}` (`tminus rehearsals {wanted.get('runbook')}` lists "
                                "the rehearsals).")
            continue
        x.next_steps.append(f"Run what is required first: {wanted.get('runbook')} in {wanted.get('environment')} "
                            f"(`tminus history --runbook {wanted.get('runbook')}` shows its runs).")
    first = "Fix what the failing checks name, then run" if failed else "Then run"
    x.next_steps.append(f"{first} again (`tminus gate {run.runbook_path}` re-checks the gates alone; "
                        "it changes nothing).")


def _rolled_back(x: Explanation, r: Run, run: Any) -> None:
    passes = r.view.rollback.passes
    if not passes:
        x.summary = f"Run {run.id} ended as {run.status}: {run.reason}."
        return
    first = passes[0]
    cause = trigger(r, first.seq, run)
    x.causes.append(cause)
    x.undone = _undone(r, first)
    verify = [s for s in r.view.sections_of("verify-after-rollback") if s.finished_seq is not None]
    confirmed = ""
    if verify:
        checks = [e for e in r.finished_in("verify-after-rollback") if (e.finished_seq or 0) > first.seq]
        # checks that read outputs of steps that never ran: not judged, with the reason recorded
        skipped = [e for e in r.view.by_end() if e.status == "skipped" and e.section_kind == "verify-after-rollback"
                   and (e.finished_seq or 0) > first.seq]
        if verify[-1].status == "ok":
            confirmed = "verify after the rollback confirms the service is back"
            judged = ", as far as it could be judged:" if skipped else "."
            x.aftermath.append(f"Verify after the rollback passed ({count(len(checks), 'check')}): "
                               f"the service is confirmed back{judged}")
        else:
            x.aftermath.append("Verify after the rollback FAILED: nothing confirms the service is back.")
            x.aftermath += [f"  {f}" for f in verify[-1].failures]
        x.aftermath += [f"  '{e.name}' was not judged: it {e.message}." for e in skipped]
    elif run.status == "rolled_back":
        confirmed = "no verify check confirms the service is back"
        x.aftermath.append("No verify check runs after a rollback, so nothing confirmed the service is back: "
                           "check it by hand.")
    if run.status == "rollback_failed":
        end = r.view.rollback.end
        state = str((end.state if end else None) or run.reason or "")
        x.aftermath += [line for line in state.splitlines() if line.strip() and "tminus resume" not in line]
        halted = stop_cause(r, last_stop(r, after=first.seq, modes=("abort",))) if end and end.stopped else None
        if halted is not None:
            x.causes.append(halted)
        stopped = [u for u in x.undone if u["status"] in ("failed", "stopped")]
        where = f"the rollback stopped at '{stopped[-1]['name']}'" if stopped else \
            "the rollback ran, but verify does not confirm the service is back"
        if halted is not None:
            where = f"{halted.short} during it" + (f" at '{stopped[-1]['name']}'" if stopped else "")
        x.summary = f"Run {run.id} could not roll back: {cause.short}, and {where}."
        x.next_steps.append(f"Fix the cause, then `tminus resume {run.id}` continues the rollback "
                            "(what was undone is not undone again).")
    else:
        ran = sum(1 for u in x.undone if u["status"] in ("ok", "skipped"))
        x.summary = (f"Run {run.id} rolled back because {cause.short}; {count(ran, 'undo/rollback step')} ran"
                     + (f" and {confirmed}." if confirmed else "."))


def _aborted(x: Explanation, r: Run, run: Any) -> None:
    ends = r.view.finishes
    cause = trigger(r, ends[-1].seq if ends else None, run)
    x.causes.append(cause)
    kept = [e for e in r.finished_in("phase") if e.status == "ok"]
    x.summary = f"Run {run.id} was aborted because {cause.short}; nothing was undone."
    if kept:
        x.aftermath.append("Still in place (not undone): " + ", ".join(
            f"'{e.name}' ({section_words(e)})" for e in kept) + ".")
    x.next_steps.append("An aborted run does not resume: undo what is still in place by hand, or fix forward.")


def _interrupted(x: Explanation, r: Run, run: Any) -> None:
    running = r.view.in_flight()
    for note in r.view.notes_for("unlock"):
        x.causes.append(Cause("operator", f"At {r.when(note.at)} {note.by} broke the run's lease with "
                              f"`tminus unlock`: {note.reason}.", "its lease was broken", note.at))
    resumed = r.view.resumes[-1].seq if r.view.resumes else 0
    stop = stop_cause(r, last_stop(r, after=resumed, modes=("interrupt",)))
    if stop is not None:
        x.causes.append(stop)
    if running:
        e = running[-1]
        x.causes.append(Cause("interrupted", f"Step '{e.name}' ({section_words(e)}, {e.key}) started at "
                              f"{r.when(e.started_at)} and never finished.", f"step '{e.name}' was running",
                              e.started_at, data={"step": e.key}))
    ends = r.view.finishes
    if run.status == "running" and not ends:
        x.summary = (f"The ledger still shows run {run.id} as running: it is running now, or its process died "
                     "without recording an end (`tminus status` tells which).")
    else:
        what = f" while step '{running[-1].name}' was running" if running else " between steps"
        at = f" at {r.when(ends[-1].at)}" if ends else ""
        how = f" because {stop.short}" if stop is not None else ""
        x.summary = f"Run {run.id} was interrupted{at}{what}{how}; nothing is lost and it can be resumed."
    if running and not (running[-1].check or running[-1].idempotent):
        x.next_steps.append(f"`tminus resume {run.id}`: '{running[-1].name}' may have half-acted, so "
                            "choose --retry (run it again), --skip --reason '...' (it completed) or --rollback.")
    else:
        x.next_steps.append(f"`tminus resume {run.id}` continues where it stopped (completed steps do not run again).")


def _needs_operator(x: Explanation, r: Run, run: Any) -> None:
    answered = {a.key for a in r.view.approvals if a.answer is not None}
    waiting = [a for a in r.view.approvals if a.requested and a.key not in answered]
    for a in waiting:
        x.causes.append(Cause("waiting", f"Since {r.when(a.at)} it waits for an answer to \"{a.prompt}\" "
                              f"({a.key}).", f"it waits for an answer to {a.key}", a.at, data={"step": a.key}))
    for m in r.view.monitor.actions:
        if m.action == "pause" and m.outcome == "no answer":
            x.causes.append(Cause("monitor", f"Monitor rule '{m.rule}' paused the window and nobody "
                                  f"answered: {m.reason}.", "a paused monitor got no answer", m.at))
    for d in r.view.alerts:
        if d.action == "pause" and d.outcome == "needs_operator":
            x.causes.append(Cause("deadline", f"At {r.when(d.at)} {d.data.get('what') or d.id} passed its deadline, "
                                  "which pauses for an operator, and nobody could answer (--no-input).",
                                  "a paused deadline got no answer", d.at, data={"deadline": d.id}))
    if not x.causes:
        x.causes.append(Cause("reason", f"{run.reason or 'A decision only an operator can make is missing'}.",
                              "a decision needs an operator"))
    # A rollback can stop for an operator too (a restore that would discard writes, under --no-input).
    done = ("its rollback is not finished (see what was undone) and `tminus resume` continues it"
            if r.view.rollback.passes else "nothing was undone and it can be resumed")
    x.summary = f"Run {run.id} stopped because {x.causes[0].short}; {done}."
    for key in [a.key for a in waiting]:
        x.next_steps.append(f"`tminus resume {run.id}` asks again; answer there, or from another terminal with "
                            f"`tminus approve {run.id} --step {key}` (refuse with `--no-go --reason '...'`).")
    if not waiting:
        x.next_steps.append(f"`tminus resume {run.id}` asks again (run it where an operator can answer).")


def _completed(x: Explanation, r: Run, run: Any) -> None:
    gates = r.finished_in("gate")
    gate_names = {e.section_name for e in gates}
    x.progress.append(f"All {count(len(gates), 'gate check')} of {count(len(gate_names), 'gate')} passed.")
    if run.kind == "gate":
        x.summary = f"Run {run.id} was a gate run: all {len(gates)} gate checks passed; nothing was changed."
        return
    phases = sorted((s for s in r.view.sections_of("phase") if s.finished_seq is not None and s.status == "ok"),
                    key=lambda s: s.finished_seq or 0)
    for s in phases:
        x.progress.append(phase_time(s))
    verify = r.finished_in("verify")
    x.progress.append(f"{count(len(verify), 'verify check')} passed.")
    parts = [f"{count(len(gates), 'gate check')}, {count(len(phases), 'phase')} and "
             f"{count(len(verify), 'verify check')} passed"]
    if x.decision:
        by = "auto" if x.decision["mode"] == "auto" else f"{x.decision.get('by')} via {x.decision.get('how')}"
        parts.append(f"the decision was {x.decision['verdict']} ({by})")
    if x.monitor and x.monitor.get("outcome"):
        parts.append(f"the monitor window {x.monitor['outcome']} ({x.monitor['samples']} samples)")
    x.summary = f"Run {run.id} completed: " + "; ".join(parts) + "."


def _not_finalized(x: Explanation, r: Run, run: Any) -> None:
    """The cutover is live; an after_go or finalize step failed: what is not finalized, and how to finish."""
    _completed(x, r, run)
    live = [s for s in r.view.sections if s.kind in ("after-go", "finalize") and s.finished_seq is not None]
    failed = [s for s in live if s.status == "failed"]
    last = failed[-1] if failed else None
    ran = [e for e in r.view.by_end() if e.section_kind in ("after-go", "finalize")]
    x.causes += [step_cause(e, r) for e in ran if e.status == "failed" and last is not None
                 and e.key == last.failed_step]
    done = sorted({e.key for e in ran if e.status in ("ok", "skipped")})
    x.progress.append(f"{count(len(done), 'after_go/finalize step')} done.")
    not_done = list(last.data.get("not_done") or []) if last is not None else []
    x.aftermath.append("The cutover is live and stays: nothing was rolled back.")
    x.aftermath += [f"Not finalized: '{n.get('name')}' ({n.get('key')}), {n.get('status')}." for n in not_done]
    where = f" in {_live_words(last.kind, last.name)}" if last is not None else ""
    x.summary = (f"Run {run.id} went live but is not finalized: a step{where} failed, "
                 f"{count(len(not_done), 'step')} not done; nothing was rolled back.")
    x.next_steps.append(f"Fix the cause, then `tminus resume {run.id}` finishes what is not done (steps done are "
                        f"not run again); or `tminus rollback {run.id} --reason '...'` undoes the whole run.")


def _live_words(kind: str, name: str | None) -> str:
    return {"after-go": f"after_go phase '{name}'", "finalize": f"finalize phase '{name}'"}.get(kind, kind)


def _undone(r: Run, first: RollbackPass) -> list[dict[str, Any]]:
    """Each step of the first rollback's plan (and any other undo it ran): done, failed, stopped or not run."""
    ran: dict[str, Execution] = {}
    for x in r.view.by_end():
        if x.section_kind in ("undo", "rollback") and (x.finished_seq or 0) > first.seq:
            ran[x.key] = x
    keys = list(dict.fromkeys([p.key for p in first.plan] + list(ran)))
    names = {p.key: p.name for p in first.plan}
    out = []
    for key in keys:
        e = ran.get(key)
        if e is None:
            out.append({"key": key, "name": names.get(key), "section": None, "status": "not run", "at": None,
                        "text": f"'{names.get(key)}' did not run: it is NOT undone."})
            continue
        status = "stopped" if e.stopped else e.status
        line = f"At {r.when(e.finished_at)} '{e.name}' ({section_words(e)}): {status}."
        if e.stopped:
            line += (f" {stops.mode_words(e.stopped).capitalize()}" + (f" by {stops.asker(e.stop)}" if e.stop else "")
                     + " stopped it before it finished: it may be half undone.")
        elif e.status == "failed":
            line += " " + " ".join(str(e.message or "").splitlines()[:2])
        out.append({"key": key, "name": e.name, "section": e.section, "status": status,
                    **r.stamp(e.finished_at), "message": e.message, "text": line})
    return out


# run status -> how its ending is explained
ENDINGS: dict[str, Callable[[Explanation, Run, Any], None]] = {
    "blocked": _blocked, "rolled_back": _rolled_back, "rollback_failed": _rolled_back, "aborted": _aborted,
    "interrupted": _interrupted, "running": _interrupted, "needs_operator": _needs_operator,
    "completed": _completed, "not_finalized": _not_finalized,
}


__all__ = ["ENDINGS"]
