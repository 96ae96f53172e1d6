"""`tminus why`: how a run ended and the chain of causes, in sentences an on-call engineer reads at 3 am.

Built from the run record and its ledger events only, never from the current runbook file: the
stored runbook text is consulted just to read a monitor rule's value out of its samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tminus.reports.records import (
    Events,
    clock,
    count,
    decision_record,
    epoch,
    excerpt,
    monitor_record,
    phase_time,
    run_notes,
    run_start,
    section_words,
    stamp,
    when,
)

_HEADLINE = {
    "completed": "COMPLETED", "blocked": "BLOCKED", "rolled_back": "ROLLED BACK",
    "rollback_failed": "ROLLBACK FAILED", "aborted": "ABORTED", "interrupted": "INTERRUPTED",
    "needs_operator": "NEEDS AN OPERATOR", "running": "STILL RUNNING (or its process died)",
}


@dataclass
class Cause:
    kind: str  # gate, manifest, step, verify, decision, monitor, operator, interrupted, waiting, reason
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


def explain(run: Any, events: list[Any]) -> Explanation:
    t0 = run_start(events) or epoch(run.started_at)
    x = Explanation(
        run={"id": run.id, "runbook": run.runbook_name, "environment": run.environment, "kind": run.kind,
             "operator": run.operator, "host": run.host, "started_at": run.started_at,
             "finished_at": run.finished_at, "started": clock(t0) if t0 else run.started_at,
             "reason": run.reason},
        status=run.status, exit_code=run.exit_code, t0=t0,
    )
    ev = Events(events, t0)
    x.decision = decision_record(ev)
    x.monitor = monitor_record(ev)
    x.notes = run_notes(ev)
    handler = {"blocked": _blocked, "rolled_back": _rolled_back, "rollback_failed": _rolled_back,
               "aborted": _aborted, "interrupted": _interrupted, "running": _interrupted,
               "needs_operator": _needs_operator, "completed": _completed}.get(run.status)
    if handler is None:
        x.summary = f"Run {run.id} ended as {run.status}: {run.reason or 'no reason was recorded'}."
    else:
        handler(x, ev, run)
    return x


# --- the endings -----------------------------------------------------------------------------------


def _blocked(x: Explanation, ev: Events, run: Any) -> None:
    for note in ev.of("note"):
        if note.data.get("action") == "manifest":
            x.causes.append(Cause("manifest", f"The environment manifest is not met: {note.data.get('message')}.",
                                  "the environment manifest", ev.at(note)))
    checks = ev.sections("gate:")
    x.causes += [_step_cause(e, ev) for e in checks if e.data.get("status") == "failed"]
    if not x.causes:
        for g in ev.of("section.finished"):
            if g.data.get("section") == "gates":
                x.causes += [Cause("gate", f"{f}.", "a gate", ev.at(g)) for f in g.data.get("failures") or []]
    passed = sum(1 for e in checks if e.data.get("status") != "failed")
    failed = len(x.causes)
    x.summary = (f"Run {run.id} was blocked at the gates: {count(failed, 'check')} failed, "
                 "so nothing was changed.")
    x.progress.append(f"{passed} of {len(checks)} gate checks passed.")
    x.next_steps.append(f"Fix what the failing checks name, then run again (`tminus gate {run.runbook_path}` "
                        "re-checks the gates alone; it changes nothing).")


def _rolled_back(x: Explanation, ev: Events, run: Any) -> None:
    starts = ev.of("rollback.started")
    if not starts:
        x.summary = f"Run {run.id} ended as {run.status}: {run.reason}."
        return
    first = ev.index(starts[0])
    cause = _trigger(ev, first, run)
    x.causes.append(cause)
    x.undone = _undone(ev, first)
    verify = [e for e in ev.of("section.finished") if e.data.get("section") == "verify-after-rollback"]
    finished = ev.of("rollback.finished")
    confirmed = ""
    if verify:
        checks = [e for e in ev.sections("verify-after-rollback") if ev.index(e) > first]
        if verify[-1].data.get("ok"):
            confirmed = "verify after the rollback confirms the service is back"
            x.aftermath.append(f"Verify after the rollback passed ({count(len(checks), 'check')}): "
                               "the service is confirmed back.")
        else:
            x.aftermath.append("Verify after the rollback FAILED: nothing confirms the service is back.")
            x.aftermath += [f"  {f}" for f in verify[-1].data.get("failures") or []]
    elif run.status == "rolled_back":
        confirmed = "no verify check confirms the service is back"
        x.aftermath.append("No verify check runs after a rollback, so nothing confirmed the service is back: "
                           "check it by hand.")
    if run.status == "rollback_failed":
        state = str((finished[-1].data.get("state") if finished else None) or run.reason or "")
        x.aftermath += [line for line in state.splitlines() if line.strip() and "tminus resume" not in line]
        stopped = [u for u in x.undone if u["status"] == "failed"]
        where = f"the rollback stopped at '{stopped[-1]['name']}'" if stopped else \
            "the rollback ran, but verify does not confirm the service is back"
        x.summary = f"Run {run.id} could not roll back: {cause.short}, and {where}."
        x.next_steps.append(f"Fix the cause, then `tminus resume {run.id}` continues the rollback "
                            "(what was undone is not undone again).")
    else:
        ran = sum(1 for u in x.undone if u["status"] in ("ok", "skipped"))
        x.summary = (f"Run {run.id} rolled back because {cause.short}; {count(ran, 'undo/rollback step')} ran"
                     + (f" and {confirmed}." if confirmed else "."))


def _aborted(x: Explanation, ev: Events, run: Any) -> None:
    end = ev.of("run.finished")
    cause = _trigger(ev, ev.index(end[-1]) if end else len(ev.all), run)
    x.causes.append(cause)
    kept = [e for e in ev.sections("phase:") if e.data.get("status") == "ok"]
    x.summary = f"Run {run.id} was aborted because {cause.short}; nothing was undone."
    if kept:
        x.aftermath.append("Still in place (not undone): " + ", ".join(
            f"'{e.data.get('name')}' ({section_words(e.data.get('section'))})" for e in kept) + ".")
    x.next_steps.append("An aborted run does not resume: undo what is still in place by hand, or fix forward.")


def _interrupted(x: Explanation, ev: Events, run: Any) -> None:
    running = _in_flight(ev)
    for note in ev.of("note"):
        if note.data.get("action") == "unlock":
            x.causes.append(Cause("operator", f"At {ev.when(note)} {note.data.get('by')} broke the run's lease with "
                                  f"`tminus unlock`: {note.data.get('reason')}.", "its lease was broken", ev.at(note)))
    if running:
        e = running[-1]
        x.causes.append(Cause("interrupted", f"Step '{e.data.get('name')}' ({section_words(e.data.get('section'))}, "
                              f"{e.step_key}) started at {ev.when(e)} and never finished.",
                              f"step '{e.data.get('name')}' was running", ev.at(e), data={"step": e.step_key}))
    ends = ev.of("run.finished")
    if run.status == "running" and not ends:
        x.summary = (f"The ledger still shows run {run.id} as running: it is running now, or its process died "
                     "without recording an end (`tminus status` tells which).")
    else:
        what = f" while step '{running[-1].data.get('name')}' was running" if running else " between steps"
        at = f" at {ev.when(ends[-1])}" if ends else ""
        x.summary = f"Run {run.id} was interrupted{at}{what}; nothing is lost and it can be resumed."
    if running and not (running[-1].data.get("check") or running[-1].data.get("idempotent")):
        x.next_steps.append(f"`tminus resume {run.id}`: '{running[-1].data.get('name')}' may have half-acted, so "
                            "choose --retry (run it again), --skip --reason '...' (it completed) or --rollback.")
    else:
        x.next_steps.append(f"`tminus resume {run.id}` continues where it stopped (completed steps do not run again).")


def _needs_operator(x: Explanation, ev: Events, run: Any) -> None:
    answered = {e.step_key for e in ev.of("approval.given")}
    waiting = [e for e in ev.of("approval.requested") if e.step_key not in answered]
    for e in waiting:
        x.causes.append(Cause("waiting", f"Since {ev.when(e)} it waits for an answer to \"{e.data.get('prompt')}\" "
                              f"({e.step_key}).", f"it waits for an answer to {e.step_key}", ev.at(e),
                              data={"step": e.step_key}))
    for e in ev.of("monitor.action"):
        if e.data.get("action") == "pause" and e.data.get("outcome") == "no answer":
            x.causes.append(Cause("monitor", f"Monitor rule '{e.data.get('rule')}' paused the window and nobody "
                                  f"answered: {e.data.get('reason')}.", "a paused monitor got no answer", ev.at(e)))
    if not x.causes:
        x.causes.append(Cause("reason", f"{run.reason or 'A decision only an operator can make is missing'}.",
                              "a decision needs an operator"))
    x.summary = f"Run {run.id} stopped because {x.causes[0].short}; nothing was undone and it can be resumed."
    for key in [e.step_key for e in waiting]:
        x.next_steps.append(f"`tminus resume {run.id}` asks again; answer there, or from another terminal with "
                            f"`tminus approve {run.id} --step {key}` (refuse with `--no-go --reason '...'`).")
    if not waiting:
        x.next_steps.append(f"`tminus resume {run.id}` asks again (run it where an operator can answer).")


def _completed(x: Explanation, ev: Events, run: Any) -> None:
    gates = ev.sections("gate:")
    gate_names = {str(e.data.get("section")) for e in gates}
    x.progress.append(f"All {count(len(gates), 'gate check')} of {count(len(gate_names), 'gate')} passed.")
    if run.kind == "gate":
        x.summary = f"Run {run.id} was a gate run: all {len(gates)} gate checks passed; nothing was changed."
        return
    phases = [e for e in ev.of("section.finished") if str(e.data.get("section", "")).startswith("phase:")
              and e.data.get("ok")]
    for e in phases:
        x.progress.append(phase_time(e))
    verify = [e for e in ev.sections("verify") if e.data.get("section") == "verify"]
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


def _trigger(ev: Events, before: int, run: Any) -> Cause:
    """What made the run roll back (or abort): the last trigger recorded before `before`."""
    for e in reversed(ev.all[:before]):
        d = e.data or {}
        if e.type == "monitor.action" and (d.get("action") in ("rollback", "abort") or d.get("outcome") == "rollback"):
            return _monitor_cause(ev, e, run)
        if e.type == "decision" and d.get("verdict") == "no-go":
            return _no_go(ev, e)
        if e.type == "section.finished" and d.get("section") == "verify" and not d.get("ok"):
            start = max((i for i, s in enumerate(ev.all[:before]) if s.type == "section.started"
                         and s.data.get("section") == "verify"), default=0)
            failed = [s for s in ev.all[start:before] if s.type == "step.finished"
                      and s.data.get("section") == "verify" and s.data.get("status") == "failed"]
            causes = [_step_cause(s, ev) for s in failed]
            n = len(failed)
            text = f"At {ev.when(e)} {count(n, 'verify check')} failed after the phases completed."
            details = [line for c in causes for line in [c.text, *c.details]]
            return Cause("verify", text, f"{count(n, 'verify check')} failed", ev.at(e), details,
                         {"checks": [c.data for c in causes]})
        if e.type == "section.finished" and str(d.get("section", "")).startswith("phase:") and d.get("failed_step"):
            step = ev.last_finished(str(d["failed_step"]), ev.index(e) + 1)
            if step is not None:
                return _step_cause(step, ev)
        if e.type == "run.resumed" and d.get("action") == "rollback":
            return Cause("operator", f"At {ev.when(e)} {d.get('operator')} asked for a rollback of the completed run "
                         f"with `tminus rollback`: {d.get('reason')}.", f"{d.get('operator')} asked for it", ev.at(e))
        if e.type == "run.resumed" and "rollback" in (d.get("interrupted") or {}).values():
            return Cause("operator", f"At {ev.when(e)} {d.get('operator')} resumed the interrupted run with "
                         "--rollback.", "the operator chose --rollback after an interruption", ev.at(e))
    reason = str(run.reason or "no cause was recorded").splitlines()
    return Cause("reason", reason[0], reason[0], details=reason[1:])


def _step_cause(e: Any, ev: Events) -> Cause:
    d = e.data or {}
    name, where = d.get("name"), section_words(d.get("section"))
    evidence = d.get("evidence") or {}
    how = ""
    if d.get("kind") == "run" and evidence.get("exit_code") not in (None, 0):
        how = f" with exit code {evidence['exit_code']}"
    elif d.get("kind") == "http" and evidence.get("status") is not None:
        how = f" with HTTP status {evidence['status']}"
    attempts = d.get("attempts") or 1
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    failing = [v for v in d.get("verdicts") or [] if v.get("passed") is not True]
    details = [f"{v.get('location')}: {v.get('message')}" if v.get("location") else str(v.get("message"))
               for v in failing]
    if not details:  # no verdict: the step itself errored; its message says where and why
        details = [ln for ln in str(d.get("message") or "").splitlines()
                   if ln.strip() and not ln.startswith(("stdout:", "stderr:", "body:"))]
    for key in ("stderr", "stdout", "body"):
        text = evidence.get(key)
        if isinstance(text, str) and text.strip():
            details.append(f"{key}: {excerpt(' | '.join(text.strip().splitlines()[-3:]))}")
    kind = "gate" if str(d.get("section", "")).startswith("gate:") else "step"
    text = f"At {ev.when(e)} step '{name}' ({where}) failed{how}{tries}."
    return Cause(kind, text, f"step '{name}' ({where}) failed{how}", ev.at(e), details,
                 {"step": e.step_key, "name": name, "section": d.get("section"),
                  "exit_code": evidence.get("exit_code"), "verdicts": failing})


def _no_go(ev: Events, e: Any) -> Cause:
    d = e.data
    if d.get("how") == "timeout":
        text = f"At {ev.when(e)} the go/no-go decision timed out: {d.get('reason')}."
        short = "nobody answered the go/no-go in time (silence counts as no-go)"
    else:
        text = (f"At {ev.when(e)} {d.get('by')} decided no-go via {d.get('how')}"
                + (f": {d.get('reason')}." if d.get("reason") else "."))
        short = f"the go/no-go decision was no-go (by {d.get('by')})"
    details = [f"[{c.get('verdict')}] {c.get('check')}" for c in d.get("criteria") or []]
    return Cause("decision", text, short, ev.at(e), details, {"by": d.get("by"), "how": d.get("how")})


def _monitor_cause(ev: Events, action: Any, run: Any) -> Cause:
    d = action.data
    rule = d.get("rule")
    started = [s.data for s in ev.of("monitor.started")]
    spec: dict[str, Any] = next((r for s in started for r in s.get("rules") or [] if r.get("name") == rule), {})
    firing = [t for t in ev.of("monitor.transition")
              if t.data.get("rule") == rule and t.data.get("to") == "firing" and ev.index(t) < ev.index(action)]
    fired = firing[-1].data if firing else {}
    at = fired.get("at") if isinstance(fired.get("at"), int | float) else ev.at(action)
    reason = fired.get("reason") or d.get("reason")
    text = (f"At {when(at, ev.t0)} monitor rule '{rule}' fired" + (f" ({spec['text']})" if spec.get("text") else "")
            + f": {reason}; its action is {d.get('action')}"
            + (f" and the operator answered {d['outcome']}." if d.get("action") == "pause" else "."))
    probe = spec.get("probe") or fired.get("probe")
    samples = [s for s in ev.of("monitor.sample") if (probe is None or s.data.get("probe") == probe)
               and (at is None or float(s.data.get("at") or 0) <= at)][-4:]
    read = _reader(run, str(rule))
    details = []
    if samples:
        details.append("The last samples it read: " + ", ".join(
            f"{clock(float(s.data['at']))} {read(s.data.get('values'), s.data.get('error'))}"
            for s in samples if s.data.get("at") is not None) + ".")
    return Cause("monitor", text, f"monitor rule '{rule}' fired", at, details,
                 {"rule": rule, "action": d.get("action"), "reason": reason})


def _reader(run: Any, rule: str) -> Any:
    """How `rule` reads a sample, from the runbook text stored with the run; raw values otherwise."""
    from tminus.monitor.replay import reading

    try:
        from tminus.runbook.loader import load_runbook

        monitor = load_runbook(run.runbook_path, text=run.runbook_text).runbook.monitor
        config = next(r for r in monitor.rules if r.name == rule).to_rule().config  # type: ignore[union-attr]
    except Exception:  # an old or unreadable runbook text: show the raw values instead
        return lambda values, error: f"error: {error}" if error else excerpt(values, 80)
    return lambda values, error: reading(config, values, error)


# --- the rest ----------------------------------------------------------------------------------------


def _undone(ev: Events, first: int) -> list[dict[str, Any]]:
    planned = [dict(s) for s in ev.all[first].data.get("steps") or []]
    ran: dict[str, Any] = {}
    for e in ev.all[first:]:
        if e.type in ("step.finished", "step.skipped") and str(e.data.get("section", "")).startswith(("undo:",
                                                                                                    "rollback")):
            ran[str(e.step_key)] = e
    keys = list(dict.fromkeys([str(p.get("key")) for p in planned] + list(ran)))
    names = {str(p.get("key")): p.get("name") for p in planned}
    out = []
    for key in keys:
        e = ran.get(key)
        if e is None:
            out.append({"key": key, "name": names.get(key), "section": None, "status": "not run", "at": None,
                        "text": f"'{names.get(key)}' did not run: it is NOT undone."})
            continue
        d = e.data
        status = d.get("status") or "skipped"
        line = f"At {ev.when(e)} '{d.get('name')}' ({section_words(d.get('section'))}): {status}."
        if status == "failed":
            line += " " + " ".join(str(d.get("message") or "").splitlines()[:2])
        out.append({"key": key, "name": d.get("name"), "section": d.get("section"), "status": status,
                    **stamp(ev.at(e), ev.t0), "message": d.get("message"), "text": line})
    return out


def _in_flight(ev: Events) -> list[Any]:
    started: dict[str, Any] = {}
    for e in ev.all:
        if e.type == "step.started":
            started[str(e.step_key)] = e
        elif e.type in ("step.finished", "step.skipped"):
            started.pop(str(e.step_key), None)
    return list(started.values())


__all__ = ["Cause", "Explanation", "explain"]
