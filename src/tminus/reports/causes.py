"""The causes `tminus why` names, one sentence each (with details): a failed step or check, a
no-go, a monitor rule that fired, a stop request, an operator's rollback; and `trigger`, which picks
what made a run roll back or abort. Read from the projection; the runbook text stored with the run
is consulted only to read a monitor rule's value out of its samples.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from tminus.projection import Decision, Execution, MonitorAction, RunMark, Stop
from tminus.reports import stops
from tminus.reports.explanation import Cause
from tminus.reports.records import Run, clock, count, excerpt, section_words


def trigger(r: Run, before: int | None, run: Any) -> Cause:
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
            add(stop.seq, partial(stop_cause, r, stop))
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


def stop_cause(r: Run, stop: Stop | None) -> Cause | None:
    if stop is None:
        return None
    told = stops.story(r, stop)
    return Cause("stop", told.text, told.short, told.at, told.details, told.data)


def last_stop(r: Run, after: int, modes: tuple[str, ...]) -> Stop | None:
    found = [s for s in r.view.accepted_stops(after) if s.mode in modes]
    return found[-1] if found else None


def refused_stops(r: Run) -> list[str]:
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
    causes = [step_cause(e, r) for e in failed]
    n = len(failed)
    text = f"At {r.when(at)} {count(n, 'verify check')} failed after the phases completed."
    details = [line for c in causes for line in [c.text, *c.details]]
    return Cause("verify", text, f"{count(n, 'verify check')} failed", at, details,
                 {"checks": [c.data for c in causes]})


def _failed_step(r: Run, key: str, upto: int) -> Cause | None:
    ran = [e for e in r.view.executions_of(key) if e.finished and (e.finished_seq or 0) <= upto]
    return step_cause(max(ran, key=lambda e: e.finished_seq or 0), r) if ran else None


def step_cause(e: Execution, r: Run) -> Cause:
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


__all__ = ["last_stop", "refused_stops", "step_cause", "stop_cause", "trigger"]
