"""`tminus why`: how a run ended and the chain of causes, in sentences an on-call engineer reads at 3 am.

Built from the run record and its ledger events only, never from the current runbook file: the
stored runbook text is consulted just to read a monitor rule's value out of its samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tminus.projection import Decision, Execution, MonitorAction, RollbackPass, RunMark, RunView, Stop, project
from tminus.reports import stops
from tminus.reports.records import (
    Run,
    clock,
    count,
    decision_record,
    epoch,
    excerpt,
    monitor_record,
    phase_time,
    run_notes,
    section_words,
    stamp,
)

_HEADLINE = {
    "completed": "COMPLETED", "blocked": "BLOCKED", "rolled_back": "ROLLED BACK",
    "rollback_failed": "ROLLBACK FAILED", "aborted": "ABORTED", "interrupted": "INTERRUPTED",
    "needs_operator": "NEEDS AN OPERATOR", "running": "STILL RUNNING (or its process died)",
}


@dataclass
class Cause:
    kind: str  # gate, manifest, step, verify, decision, monitor, operator, stop, interrupted, waiting, reason
    text: str  # one sentence
    short: str  # the cause in a few words, for the summary
    at: float | None = None
    details: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Explanation:
    run: dict[str, Any]
    status: str
    exit_code: int | None
    summary: str = ""
    causes: list[Cause] = field(default_factory=list)
    undone: list[dict[str, Any]] = field(default_factory=list)
    progress: list[str] = field(default_factory=list)  # what went right (gates, phases, verify)
    aftermath: list[str] = field(default_factory=list)  # verify after rollback, where a rollback stopped
    decision: dict[str, Any] | None = None
    monitor: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # resumes, failed notifications
    next_steps: list[str] = field(default_factory=list)
    t0: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run, "status": self.status, "exit_code": self.exit_code, "summary": self.summary,
            "causes": [{"kind": c.kind, "text": c.text, **stamp(c.at, self.t0), "details": c.details, **c.data}
                       for c in self.causes],
            "undone": self.undone, "progress": self.progress, "aftermath": self.aftermath,
            "decision": self.decision, "monitor": self.monitor, "notes": self.notes, "next": self.next_steps,
        }

    def lines(self) -> list[str]:
        r = self.run
        out = [f"Run {r['id']}: {r['runbook']} in {r['environment']}, started {r['started']} UTC by "
               f"{r['operator']}@{r['host']}.",
               f"{_HEADLINE.get(self.status, self.status.upper())} (exit {self.exit_code}). {self.summary}"]
        if self.causes:
            out += ["", "Why:"]
            for c in self.causes:
                out += [f"  {c.text}", *(f"      {d}" for d in c.details)]
        if self.undone or self.aftermath:
            out += ["", "What was undone:" if self.undone else "Rollback:"]
            out += [f"  {u['text']}" for u in self.undone] + [f"  {a}" for a in self.aftermath]
        sections = [("What went right:", self.progress), ("Decision:", (self.decision or {}).get("lines", [])),
                    ("Monitor:", (self.monitor or {}).get("lines", [])), ("Also:", self.notes),
                    ("Next:", self.next_steps)]
        for title, body in sections:
            if body:
                out += ["", title, *(f"  {line}" for line in body)]
        return out


def explain(run: Any, events: Iterable[Any] | RunView) -> Explanation:
    """`events`: the run's ledger events in order, or their projection."""
    view = events if isinstance(events, RunView) else project(events)
    t0 = view.t0 or epoch(run.started_at)
    x = Explanation(
        run={"id": run.id, "runbook": run.runbook_name, "environment": run.environment, "kind": run.kind,
             "operator": run.operator, "host": run.host, "started_at": run.started_at,
             "finished_at": run.finished_at, "started": clock(t0) if t0 else run.started_at,
             "reason": run.reason},
        status=run.status, exit_code=run.exit_code, t0=t0,
    )
    r = Run(view, t0)
    x.decision = decision_record(r)
    x.monitor = monitor_record(r)
    x.notes = run_notes(r) + _refused_stops(r)
    handler = {"blocked": _blocked, "rolled_back": _rolled_back, "rollback_failed": _rolled_back,
               "aborted": _aborted, "interrupted": _interrupted, "running": _interrupted,
               "needs_operator": _needs_operator, "completed": _completed}.get(run.status)
    if handler is None:
        x.summary = f"Run {run.id} ended as {run.status}: {run.reason or 'no reason was recorded'}."
    else:
        handler(x, r, run)
    return x


# --- the endings -----------------------------------------------------------------------------------


def _blocked(x: Explanation, r: Run, run: Any) -> None:
    for note in r.view.notes_for("manifest"):
        x.causes.append(Cause("manifest", f"The environment manifest is not met: {note.message}.",
                              "the environment manifest", note.at))
    checks = r.finished_in("gate")
    x.causes += [_step_cause(e, r) for e in checks if e.status == "failed"]
    if not x.causes:
        for g in r.view.sections_of("gates"):
            if g.finished_seq is not None:
                x.causes += [Cause("gate", f"{f}.", "a gate", g.finished_at) for f in g.failures]
    passed = sum(1 for e in checks if e.status != "failed")
    failed = len(x.causes)
    x.summary = (f"Run {run.id} was blocked at the gates: {count(failed, 'check')} failed, "
                 "so nothing was changed.")
    x.progress.append(f"{passed} of {len(checks)} gate checks passed.")
    x.next_steps.append(f"Fix what the failing checks name, then run again (`tminus gate {run.runbook_path}` "
                        "re-checks the gates alone; it changes nothing).")


def _rolled_back(x: Explanation, r: Run, run: Any) -> None:
    passes = r.view.rollback.passes
    if not passes:
        x.summary = f"Run {run.id} ended as {run.status}: {run.reason}."
        return
    first = passes[0]
    cause = _trigger(r, first.seq, run)
    x.causes.append(cause)
    x.undone = _undone(r, first)
    verify = [s for s in r.view.sections_of("verify-after-rollback") if s.finished_seq is not None]
    confirmed = ""
    if verify:
        checks = [e for e in r.finished_in("verify-after-rollback") if (e.finished_seq or 0) > first.seq]
        if verify[-1].status == "ok":
            confirmed = "verify after the rollback confirms the service is back"
            x.aftermath.append(f"Verify after the rollback passed ({count(len(checks), 'check')}): "
                               "the service is confirmed back.")
        else:
            x.aftermath.append("Verify after the rollback FAILED: nothing confirms the service is back.")
            x.aftermath += [f"  {f}" for f in verify[-1].failures]
    elif run.status == "rolled_back":
        confirmed = "no verify check confirms the service is back"
        x.aftermath.append("No verify check runs after a rollback, so nothing confirmed the service is back: "
                           "check it by hand.")
    if run.status == "rollback_failed":
        end = r.view.rollback.end
        state = str((end.state if end else None) or run.reason or "")
        x.aftermath += [line for line in state.splitlines() if line.strip() and "tminus resume" not in line]
        halted = _stop_cause(r, _last_stop(r, after=first.seq, modes=("abort",))) if end and end.stopped else None
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
    cause = _trigger(r, ends[-1].seq if ends else None, run)
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
    stop = _stop_cause(r, _last_stop(r, after=resumed, modes=("interrupt",)))
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
    if not x.causes:
        x.causes.append(Cause("reason", f"{run.reason or 'A decision only an operator can make is missing'}.",
                              "a decision needs an operator"))
    x.summary = f"Run {run.id} stopped because {x.causes[0].short}; nothing was undone and it can be resumed."
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


# --- causes ----------------------------------------------------------------------------------------


def _trigger(r: Run, before: int | None, run: Any) -> Cause:
    """What made the run roll back (or abort): the last trigger recorded before `before` (a seq)."""
    view = r.view
    limit = before if before is not None else view.last_seq + 1
    found: list[tuple[int, Callable[[], Cause | None]]] = []

    def add(seq: int | None, make: Callable[[], Cause | None]) -> None:
        if seq is not None and seq < limit:
            found.append((seq, make))

    for a in view.monitor.actions:
        if a.action in ("rollback", "abort") or a.outcome == "rollback":
            add(a.seq, partial(_monitor_cause, r, a, run))
    for d in view.decisions:
        if d.verdict == "no-go":
            add(d.seq, partial(_no_go, r, d))
    for stop in view.stops:
        if stop.accepted and stop.mode != "interrupt":
            add(stop.seq, partial(_stop_cause, r, stop))
    for s in view.sections_of("verify"):
        if s.finished_seq is not None and s.status != "ok" and not s.stopped:  # a stopped verify: the stop
            add(s.finished_seq, partial(_verify_cause, r, s.started_seq or 0, s.finished_seq, s.finished_at))
    for s in view.sections_of("phase"):
        if s.failed_step and s.failed_seq is not None:
            add(s.failed_seq, partial(_failed_step, r, s.failed_step, s.failed_seq))
    for m in view.resumes:
        if m.action == "rollback" or "rollback" in m.interrupted.values():
            add(m.seq, partial(_operator_rollback, r, m))
    for _seq, make in sorted(found, key=lambda item: item[0], reverse=True):
        cause = make()
        if cause is not None:
            return cause
    reason = str(run.reason or "no cause was recorded").splitlines()
    return Cause("reason", reason[0], reason[0], details=reason[1:])


def _stop_cause(r: Run, stop: Stop | None) -> Cause | None:
    if stop is None:
        return None
    told = stops.story(r, stop)
    return Cause("stop", told.text, told.short, told.at, told.details, told.data)


def _last_stop(r: Run, after: int, modes: tuple[str, ...]) -> Stop | None:
    found = [s for s in r.view.accepted_stops(after) if s.mode in modes]
    return found[-1] if found else None


def _refused_stops(r: Run) -> list[str]:
    """Stop requests the run did not act on (the first request wins)."""
    return [f"At {r.when(s.at)} {stops.asker(s)} asked for {stops.mode_words(s.mode)}: not acted on"
            + (f" ({s.note})." if s.note else ".") for s in r.view.stops if not s.accepted]


def _operator_rollback(r: Run, m: RunMark) -> Cause:
    if m.action == "rollback":
        return Cause("operator", f"At {r.when(m.at)} {m.operator} asked for a rollback of the completed run "
                     f"with `tminus rollback`: {m.reason}.", f"{m.operator} asked for it", m.at)
    return Cause("operator", f"At {r.when(m.at)} {m.operator} resumed the interrupted run with --rollback.",
                 "the operator chose --rollback after an interruption", m.at)


def _verify_cause(r: Run, started: int, finished: int, at: float | None) -> Cause:
    failed = [e for e in r.finished_in("verify") if started <= (e.finished_seq or 0) < finished
              and e.status == "failed"]
    causes = [_step_cause(e, r) for e in failed]
    n = len(failed)
    text = f"At {r.when(at)} {count(n, 'verify check')} failed after the phases completed."
    details = [line for c in causes for line in [c.text, *c.details]]
    return Cause("verify", text, f"{count(n, 'verify check')} failed", at, details,
                 {"checks": [c.data for c in causes]})


def _failed_step(r: Run, key: str, upto: int) -> Cause | None:
    ran = [e for e in r.view.executions_of(key) if e.finished and (e.finished_seq or 0) <= upto]
    return _step_cause(max(ran, key=lambda e: e.finished_seq or 0), r) if ran else None


def _step_cause(e: Execution, r: Run) -> Cause:
    name, where = e.name, section_words(e)
    evidence = e.evidence or {}
    how = ""
    if e.kind == "run" and evidence.get("exit_code") not in (None, 0):
        how = f" with exit code {evidence['exit_code']}"
    elif e.kind == "http" and evidence.get("status") is not None:
        how = f" with HTTP status {evidence['status']}"
    attempts = e.attempts or 1
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    failing = [v for v in e.verdicts or [] if v.get("passed") is not True]
    details = [f"{v.get('location')}: {v.get('message')}" if v.get("location") else str(v.get("message"))
               for v in failing]
    if not details:  # no verdict: the step itself errored; its message says where and why
        details = [ln for ln in str(e.message or "").splitlines()
                   if ln.strip() and not ln.startswith(("stdout:", "stderr:", "body:"))]
    for key in ("stderr", "stdout", "body"):
        text = evidence.get(key)
        if isinstance(text, str) and text.strip():
            details.append(f"{key}: {excerpt(' | '.join(text.strip().splitlines()[-3:]))}")
    kind = "gate" if e.section_kind == "gate" else "step"
    failed = "failed"
    if e.stopped:  # ended by a stop request, not by what it found
        failed = f"was stopped by {stops.mode_words(e.stopped)}" + (f" ({stops.asker(e.stop)})" if e.stop else "")
        how, tries, details = "", "", [d for d in details if not d.startswith("stopped: ")]
    text = f"At {r.when(e.finished_at)} step '{name}' ({where}) {failed}{how}{tries}."
    return Cause(kind, text, f"step '{name}' ({where}) {failed}{how}", e.finished_at, details,
                 {"step": e.key, "name": name, "section": e.section,
                  "exit_code": evidence.get("exit_code"), "verdicts": failing})


def _no_go(r: Run, d: Decision) -> Cause:
    if d.how == "timeout":
        text = f"At {r.when(d.at)} the go/no-go decision timed out: {d.reason}."
        short = "nobody answered the go/no-go in time (silence counts as no-go)"
    else:
        text = (f"At {r.when(d.at)} {d.by} decided no-go via {d.how}"
                + (f": {d.reason}." if d.reason else "."))
        short = f"the go/no-go decision was no-go (by {d.by})"
    details = [f"[{c.get('verdict')}] {c.get('check')}" for c in d.criteria]
    return Cause("decision", text, short, d.at, details, {"by": d.by, "how": d.how})


def _monitor_cause(r: Run, action: MonitorAction, run: Any) -> Cause:
    m = r.view.monitor
    rule = action.rule
    spec: dict[str, Any] = next((x for s in m.stages for x in s.rules if x.get("name") == rule), {})
    firing = [t for t in m.transitions if t.rule == rule and t.to == "firing" and t.seq < action.seq]
    fired = firing[-1] if firing else None
    at = fired.at if fired is not None and fired.timed else action.at
    reason = (fired.reason if fired else None) or action.reason
    text = (f"At {r.when(at)} monitor rule '{rule}' fired" + (f" ({spec['text']})" if spec.get("text") else "")
            + f": {reason}; its action is {action.action}"
            + (f" and the operator answered {action.outcome}." if action.action == "pause" else "."))
    probe = spec.get("probe") or (fired.probe if fired else None)
    samples = [s for s in m.samples if (probe is None or s.probe == probe) and (at is None or s.at <= at)][-4:]
    read = _reader(run, str(rule))
    details = []
    if samples:
        details.append("The last samples it read: " + ", ".join(
            f"{clock(s.at)} {read(s.values, s.error)}" for s in samples) + ".")
    return Cause("monitor", text, f"monitor rule '{rule}' fired", at, details,
                 {"rule": rule, "action": action.action, "reason": reason})


def _reader(run: Any, rule: str) -> Any:
    """How `rule` reads a sample, from the runbook text stored with the run; raw values otherwise."""
    from tminus.monitor.overrides import reading

    try:
        from tminus.runbook.loader import load_runbook

        monitor = load_runbook(run.runbook_path, text=run.runbook_text).runbook.monitor
        config = next(r for r in monitor.rules if r.name == rule).to_rule().config  # type: ignore[union-attr]
    except Exception:  # an old or unreadable runbook text: show the raw values instead
        return lambda values, error: f"error: {error}" if error else excerpt(values, 80)
    return lambda values, error: reading(config, values, error)


# --- the rest ----------------------------------------------------------------------------------------


def _undone(r: Run, first: RollbackPass) -> list[dict[str, Any]]:
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


__all__ = ["Cause", "Explanation", "explain"]
