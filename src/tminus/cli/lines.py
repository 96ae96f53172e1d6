"""One formatter of event lines: the live display, `tminus show` and the monitor's plain lines.

An event (a live `Event` or a ledger `EventRecord`: type, step key, at, data) becomes one line, or a
line with continuation lines under it, or nothing. The caller supplies the stamp: the live display
stamps the wall clock and a T+ clock from monotonic time, `show` the T+ offset from the first event.
Everything after the stamp is the same in both.

Two switches: `verbose` (the live display's -v: a line as each step starts and per monitor sample)
and `evidence` (`show`: verdicts and evidence under each finished step, and the monitor samples).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tminus import events as ev
from tminus.durations import format_clock, format_duration, format_tplus

MARK = {"ok": "✓", "failed": "✗", "skipped": "-"}
VERDICT_MARK = {True: "✓", False: "✗", None: "∅"}
CONTINUATION = " " * 10  # continuation lines (messages, evidence) hang at a fixed column
STEP = "  "  # a step, a rule, a note: under the section line
ATTEMPT = "    "  # a failed attempt: under its step


def live_stamp(at: str, since_start: float) -> str:
    """The live display's stamp: wall clock with milliseconds, then the run's T+ clock."""
    return f"{at[11:23]} {format_clock(since_start):>9}"


def show_stamp(offset: float) -> str:
    """`tminus show`'s stamp: T+ and the seconds since the run's first event."""
    return f"{format_tplus(offset):>7} +{offset:7.2f}s"


def format_event(e: Any, stamp: str | Callable[[], str], *, verbose: bool = False,
                 evidence: bool = False) -> str | None:
    """The line(s) for one event, or None when it is not worth a line with these switches. `stamp`
    may be a function, called only for an event that makes a line (most of a run's do not)."""
    fmt = _FORMATS.get(e.type)
    lines = fmt(e, e.data or {}, verbose, evidence) if fmt else None
    if not lines:
        return None
    head, *more = lines
    if not isinstance(stamp, str):
        stamp = stamp()
    return "\n".join([f"{stamp} {head}", *(CONTINUATION + line for line in more)])


Lines = list[str] | None  # the head line (indented under the stamp), then continuation lines
Formatter = Callable[[Any, dict[str, Any], bool, bool], Lines]


def _run_started(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    verb = "resumed" if e.type == ev.RUN_RESUMED else "started"
    why = f" ({d['reason']})" if d.get("reason") else ""
    tag = d.get("rehearsal")
    if isinstance(tag, dict):  # a rehearsal cycle's run names its rehearsal (`tminus show` gives its report)
        after = f" after '{tag['at']}'" if tag.get("at") else ""
        why += f" · rehearsal {tag.get('id')} cycle {_number(tag.get('cycle'))}: fault {tag.get('fault')}{after}"
    return [f"run {_run_id(e)}{verb}: {d.get('runbook')} in {d.get('environment')} "
            f"by {d.get('operator')}@{d.get('host')}{why}"]


def _run_finished(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    return [f"run {_run_id(e)}{d.get('status')} (exit {d.get('exit_code')})"]


def _section_started(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    planned = ""
    if d.get("budget") is not None:
        planned = (f" (budget {format_duration(d['budget'])}, "
                   f"planned start {format_tplus(d.get('planned_start') or 0)})")
    return [f"▶ {d.get('section', '')}{planned}"]


def _section_finished(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    if d.get("actual") is None:
        return None  # only phases time themselves; a failed step already has its ✗ line
    vs = f" vs budget {format_duration(d['budget'])}" if d.get("budget") else ""
    return [f"{STEP}{d.get('section')} done in {format_duration(d['actual'])}{vs}"]


def _step_started(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    return [f"{STEP}… {d.get('name')}"] if verbose else None


def _step_finished(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    status = d.get("status", "")
    took = format_duration((d.get("duration_ms") or 0) / 1000)
    tries = f", {d['attempts']} attempts" if (d.get("attempts") or 0) > 1 else ""
    key = f" [{e.step_key}]" if e.step_key else ""
    lines = [f"{STEP}{MARK.get(status, '?')} {d.get('name')}{key} ({took}{tries})"]
    if status == "failed" and d.get("message"):
        lines += str(d["message"]).splitlines()
    if evidence:
        lines += evidence_lines(d)
    return lines


def _step_attempt(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    return [f"{ATTEMPT}attempt {d.get('attempt')} failed: {_first_line(d.get('message'))}"]


def _step_skipped(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    return [f"{STEP}- {d.get('name')} skipped: {d.get('message')}"]


def _step_effect(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    if not (verbose or evidence):
        return None  # the record behind an undo: for the ledger's reader, not the live log
    return [f"{STEP}· effect of {e.step_key or 'the run'}: {_fields(d)}"]


def _approval_requested(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    lines = [f"{STEP}? approval requested: {d.get('prompt')}"]
    if d.get("approve_with"):
        lines.append(f"approve: {d['approve_with']}")
    return lines


def _approval_given(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    verdict = "approved" if d.get("approved") else "refused"
    why = f": {d['reason']}" if d.get("reason") else ""
    return [f"{STEP}{verdict} by {d.get('by')} via {d.get('how')}{why}"]


def _decision(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    by = f" by {d['by']}" if d.get("by") else ""
    return [f"◆ decision ({d.get('mode')}): {str(d.get('verdict', '')).upper()}{by}"]


def _rollback_started(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    return [f"↺ rollback started: {_first_line(d.get('reason'))}"]


def _rollback_finished(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    lines = [f"↺ rollback {'complete' if d.get('ok') else 'FAILED'}"]
    if d.get("state"):
        lines += str(d["state"]).splitlines()
    return lines


def _stop_requested(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    what = str(d.get("mode") or d.get("kind") or d.get("action") or "stop").replace("_", " ")
    by = f" by {d['by']}" if d.get("by") else ""
    why = f": {_first_line(d.get('reason'))}" if d.get("reason") else ""
    refused = "" if d.get("accepted", True) else f" (not acted on: {d.get('note') or 'refused'})"
    return [f"■ {what} requested{by}{why}{refused}"]


def _policy_applied(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    if not d.get("policy"):
        return [f"{STEP}policy applied" + (f": {_fields(d)}" if d else "")]
    where = ", ".join(str(x) for x in (d.get("hook"), d.get("section"), d.get("step")) if x)
    why = f": {_first_line(d.get('reason'))}" if d.get("reason") else ""
    return [f"{STEP}policy {d['policy']} ({where}) decided {d.get('decision')}{why}"]


def _deadline_exceeded(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    text = _first_line(d.get("message")) or f"deadline exceeded: {d.get('deadline')}"
    return [f"! {text}"]


def _deadline_answered(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    who = f" (by {d['by']}, {d.get('how')})" if d.get("by") else ""
    why = f": {_first_line(d.get('reason'))}" if d.get("reason") else ""
    return [f"{STEP}deadline {d.get('deadline')}: {d.get('outcome')}{who}{why}"]


def _note(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    text = d.get("message") or _fields(d)
    return [f"{STEP}note: {text}"] if text else None


# --- the monitor and notifications --------------------------------------------------------------


def _monitor_started(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    probes, rules = len(d.get("probes") or []), len(d.get("rules") or [])
    return [f"▶ monitor {d.get('stage')}: {format_duration(d.get('duration') or 0)}, "
            f"every {format_duration(d.get('interval') or 0)}; {probes} probe(s), {rules} rule(s)"]


def _monitor_sample(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    if not (verbose or evidence):
        return None  # one per probe per interval: the live table shows them
    return [f"{STEP}· {d.get('probe')} ({d.get('stage')}): {sample_text(d)}"]


def _monitor_transition(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    return [f"{STEP}◎ {d.get('rule')}: {d.get('from')} → {d.get('to')}: {d.get('reason')}"]


def _monitor_action(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    extra = f" ({d['outcome']})" if d.get("outcome") not in (None, d.get("action")) else ""
    return [f"{STEP}! {d.get('rule')}: {d.get('action')}{extra}"]


def _monitor_finished(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    verdict = "passed" if d.get("ok") else str(d.get("outcome"))
    return [f"{STEP}monitor {d.get('stage')} {verdict}: {d.get('samples')} samples"]


def _guard_started(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    probes, rules = len(d.get("probes") or []), len(d.get("rules") or [])
    again = " (resumed: the rest of the phase)" if d.get("resumed") else ""
    return [f"{STEP}◉ guard of phase '{d.get('phase')}': every {format_duration(d.get('interval') or 0)}; "
            f"{probes} probe(s), {rules} rule(s){again}"]


def _guard_sample(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    if not (verbose or evidence):
        return None  # one per probe per interval
    return [f"{STEP}· {d.get('probe')} (guard): {sample_text(d)}"]


def _guard_transition(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    did = f" ({d['outcome']})" if d.get("outcome") else ""
    return [f"{STEP}◎ guard {d.get('rule')}: {d.get('from')} → {d.get('to')}{did}: {d.get('reason')}"]


def _guard_finished(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    verdict = "passed" if d.get("outcome") == "passed" else str(d.get("outcome"))
    return [f"{STEP}◉ guard of phase '{d.get('phase')}' {verdict}: {d.get('samples')} samples; {d.get('reason')}"]


def _watch_sample(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    if not (verbose or evidence):
        return None  # one per probe per interval
    return [f"{STEP}· {d.get('probe')} (watch): {sample_text(d)}"]


def _watch_transition(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    did = " (fails the step)" if d.get("outcome") else ""
    return [f"{STEP}◎ watch {d.get('rule')}: {d.get('from')} → {d.get('to')}{did}: {d.get('reason')}"]


def _number(index: Any) -> Any:
    """A cycle's number as people count (the record keeps the 0-based index)."""
    return index + 1 if isinstance(index, int) else index


def _rehearsal_started(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    cycles = len(d.get("cycles") or [])
    return [f"▶ rehearsal of {d.get('runbook')} in {d.get('environment')}: {cycles} cycle(s)"]


def _rehearsal_cycle(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    where = f"after '{d['at']}'" if d.get("at") else str(d.get("fault") or "")
    rto = d.get("rto_s")
    equal = (d.get("fingerprints") or {}).get("equal")
    state = "" if equal is None else (", state restored" if equal else ", state differs")
    took = "" if rto is None else f", RTO {rto:.2f}s"
    return [f"{'✓' if d.get('ok') else '✗'} rehearsal cycle {_number(d.get('index'))} ({where}): "
            f"{d.get('status')}{took}{state}"]


def _notify_sent(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    tries = len(d.get("attempts") or [])
    return [f"{STEP}✉ notified {d.get('channel')} ({tries} attempt{'s' if tries != 1 else ''})"]


def _notify_failed(e: Any, d: dict[str, Any], verbose: bool, evidence: bool) -> Lines:
    return [f"{STEP}✗ notify {d.get('channel')} failed: {d.get('error')}"]


_FORMATS: dict[str, Formatter] = {
    ev.RUN_STARTED: _run_started,
    ev.RUN_RESUMED: _run_started,
    ev.SECTION_STARTED: _section_started,
    ev.SECTION_FINISHED: _section_finished,
    ev.STEP_STARTED: _step_started,
    ev.STEP_ATTEMPT: _step_attempt,
    ev.STEP_FINISHED: _step_finished,
    ev.STEP_SKIPPED: _step_skipped,
    ev.STEP_EFFECT: _step_effect,
    ev.APPROVAL_REQUESTED: _approval_requested,
    ev.APPROVAL_GIVEN: _approval_given,
    ev.DECISION: _decision,
    ev.ROLLBACK_STARTED: _rollback_started,
    ev.ROLLBACK_FINISHED: _rollback_finished,
    ev.MONITOR_STARTED: _monitor_started,
    ev.MONITOR_SAMPLE: _monitor_sample,
    ev.MONITOR_TRANSITION: _monitor_transition,
    ev.MONITOR_ACTION: _monitor_action,
    ev.MONITOR_FINISHED: _monitor_finished,
    ev.GUARD_STARTED: _guard_started,
    ev.GUARD_SAMPLE: _guard_sample,
    ev.GUARD_TRANSITION: _guard_transition,
    ev.GUARD_FINISHED: _guard_finished,
    ev.WATCH_SAMPLE: _watch_sample,
    ev.WATCH_TRANSITION: _watch_transition,
    ev.REHEARSAL_STARTED: _rehearsal_started,
    ev.REHEARSAL_CYCLE: _rehearsal_cycle,
    ev.NOTIFY_SENT: _notify_sent,
    ev.NOTIFY_FAILED: _notify_failed,
    ev.RUN_FINISHED: _run_finished,
    ev.NOTE: _note,
    ev.STOP_REQUESTED: _stop_requested,
    ev.POLICY_APPLIED: _policy_applied,
    ev.DEADLINE_EXCEEDED: _deadline_exceeded,
    ev.DEADLINE_ANSWERED: _deadline_answered,
}


# --- pieces -------------------------------------------------------------------------------------


def sample_text(d: dict[str, Any]) -> str:
    """A monitor sample in a few words: its error, or status/value, exit code and duration."""
    if d.get("error"):
        return f"error: {d['error']}"
    values = d.get("values") or {}
    shown = [f"{k}={values[k]}" for k in ("status", "value", "scalar", "exit_code", "open") if k in values]
    took = d.get("duration_ms")
    if took is not None:
        shown.append(f"{took:.0f}ms")
    return " ".join(shown) or "ok"


def evidence_lines(d: dict[str, Any]) -> list[str]:
    """A finished step's verdicts, then its evidence (long values: their last lines)."""
    lines = [f"{VERDICT_MARK.get(v.get('passed'), '?')} {v.get('message')}" for v in d.get("verdicts") or []]
    for key, value in (d.get("evidence") or {}).items():
        text = (value if isinstance(value, str) else json.dumps(value, default=str)).strip()
        if not text:
            continue
        if "\n" in text or len(text) > 160:
            lines.append(f"{key}:")
            lines += ["  " + line[:200] for line in text.splitlines()[-6:]]
        else:
            lines.append(f"{key}: {text}")
    return lines


def _run_id(e: Any) -> str:
    run_id = getattr(e, "run_id", None)
    return f"{run_id} " if run_id else ""


def _first_line(text: object) -> str:
    lines = str(text or "").splitlines()
    return lines[0] if lines else ""


def _fields(d: dict[str, Any]) -> str:
    shown = {k: v for k, v in d.items() if k != "v"}  # the payload version is for readers, not people
    return json.dumps(shown, default=str, ensure_ascii=False) if shown else ""
