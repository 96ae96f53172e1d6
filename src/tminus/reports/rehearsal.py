"""A rehearsal read back: its record (a run of kind `rehearsal`) and its projection (`RunView.rehearsal`)
as report lines (`tminus show REHEARSAL_ID`, the end of `tminus rehearse`), as JSON (`--json`) and as
one listing row (`tminus rehearsals`).

Everything comes from the ledger: the plan (`rehearsal.started`) and each cycle's figures
(`rehearsal.cycle`), never from the runbook file as it is now. A figure the cycle never reached is
None, printed "-". Every text is scrubbed of URL passwords on the way out, as a second line of
defence behind the writer, which records URLs masked already.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tminus.durations import format_duration
from tminus.projection.model import RehearsalCycle, RehearsalView
from tminus.templating.masking import hide_url_passwords

HASH_PREFIX = 12  # characters of a procedure hash shown (the JSON has the whole hash)
VERDICTS = {"completed": "passed", "failed": "failed"}  # the record's status -> the rehearsal's verdict
FAULT_WORDS = {"monitor": "monitor window", "roll_forward": "full run, then rolled back",
               "kill_switch": "kill switch"}


def verdict(record: Any) -> str:
    """passed | failed | unfinished (the rehearse process has not recorded its end: running or gone)."""
    return VERDICTS.get(record.status, "unfinished")


def scrub(value: Any) -> Any:
    """`value` with any URL password replaced by ***, in every string it holds."""
    if isinstance(value, str):
        return hide_url_passwords(value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def seconds(value: float | None) -> str:
    return "-" if value is None else format_duration(value)


# --- JSON -----------------------------------------------------------------------------------------


def to_json(record: Any, view: RehearsalView | None) -> dict[str, Any]:
    """The record as `show --json` and `rehearse --json` print it: every key always present (None or
    empty when not recorded); documented in docs/cli.md ("show of a rehearsal")."""
    plan = view.data if view is not None else {}
    cycles = view.cycles if view is not None else []
    return scrub({
        "rehearsal_id": record.id, "kind": record.kind, "runbook": record.runbook_name,
        "runbook_path": record.runbook_path, "environment": record.environment, "operator": record.operator,
        "host": record.host, "started_at": record.started_at, "finished_at": record.finished_at,
        "status": record.status, "verdict": verdict(record), "exit_code": record.exit_code, "reason": record.reason,
        "content_hash": record.content_hash,
        "procedure_hashes": dict(view.procedure_hashes) if view is not None else {},
        "options": dict(plan.get("options") or {}),
        "point_of_no_return": plan.get("point_of_no_return"),
        "fingerprint_sources": list(plan.get("fingerprints") or []),
        "all_phases": view.all_phases if view is not None else False,
        "planned": list(view.planned) if view is not None else [],
        "not_rehearsed": list(view.not_rehearsed) if view is not None else [],
        "cycles": [cycle_json(c) for c in cycles],
        "summary": {"cycles": len(cycles), "ok": sum(1 for c in cycles if c.ok),
                    "planned": len(view.planned) if view is not None else 0,
                    "max_rto_s": view.max_rto() if view is not None else None},
    })


def cycle_json(c: RehearsalCycle) -> dict[str, Any]:
    d = c.data
    prints = d.get("fingerprints") or {}
    return {
        "index": c.index, "at": c.at, "phase_index": d.get("phase_index"), "fault": c.fault,
        "rehearsed_as": c.rehearsed_as, "run_id": c.run_id, "status": c.status, "exit_code": d.get("exit_code"),
        "ok": c.ok, "problems": list(c.problems), "reached_s": c.reached_s, "fault_at": d.get("fault_at"),
        "rto_s": c.rto_s, "verify_s": c.verify_s, "budget_s": c.budget_s, "within_budget": within_budget(c),
        "over_budget_s": over_budget(c), "kill_switch": d.get("kill_switch"),
        "fingerprints": {"equal": c.fingerprints_equal, "differences": list(c.differences),
                         "expected": prints.get("expected"), "errors": list(prints.get("errors") or []),
                         "sources": prints.get("sources")},
        "undo_failed": list(d.get("undo_failed") or []), "undo_missing": list(d.get("undo_missing") or []),
        "drills": list(d.get("drills") or []), "fingerprint_s": d.get("fingerprint_s"), "run_s": d.get("run_s"),
    }


def within_budget(c: RehearsalCycle) -> bool | None:
    """As recorded; else RTO <= budget; None without both."""
    recorded = c.data.get("within_budget")
    if recorded is not None:
        return bool(recorded)
    if c.rto_s is None or c.budget_s is None:
        return None
    return c.rto_s <= c.budget_s


def over_budget(c: RehearsalCycle) -> float | None:
    if c.rto_s is None or c.budget_s is None or c.rto_s <= c.budget_s:
        return None
    return c.rto_s - c.budget_s


def summary(record: Any, view: RehearsalView | None) -> dict[str, Any]:
    """One row of `tminus rehearsals`."""
    cycles = view.cycles if view is not None else []
    hashes = dict(view.procedure_hashes) if view is not None else {}
    return scrub({
        "rehearsal_id": record.id, "started_at": record.started_at, "finished_at": record.finished_at,
        "runbook": record.runbook_name, "environment": record.environment, "operator": record.operator,
        "status": record.status, "verdict": verdict(record),
        "cycles": {"ok": sum(1 for c in cycles if c.ok), "total": len(cycles)},
        "max_rto_s": view.max_rto() if view is not None else None,
        "procedure_hash": hashes.get(record.environment), "procedure_hashes": hashes,
    })


# --- text -----------------------------------------------------------------------------------------


def render(view: RehearsalView | None, record: Any) -> list[str]:
    """The report as plain lines: header, one block per cycle, the phases not rehearsed, the verdict."""
    out = header(view, record)
    if view is None:
        out.append("no plan recorded: the rehearsal stopped before it began")
        return [scrub(line) for line in out]
    out.append("")
    out.append(f"Cycles ({sum(1 for c in view.cycles if c.ok)} of {len(view.cycles)} ok"
               + (f", {len(view.planned)} planned" if len(view.planned) != len(view.cycles) else "") + "):")
    if not view.cycles:
        out.append("  none measured")
    for c in view.cycles:
        out.extend(cycle_lines(c))
    missing = not_measured(view)
    if missing:
        out.append("")
        out.append("Planned, not measured (the rehearsal ended first):")
        out.extend(f"  {cycle_label(p)}" for p in missing)
    out.extend(not_rehearsed_lines(view))
    out.append("")
    out.extend(verdict_lines(view, record))
    return [scrub(line) for line in out]


def header(view: RehearsalView | None, record: Any) -> list[str]:
    plan = view.data if view is not None else {}
    took = ""
    if record.finished_at:
        took = f" · finished {_when(record.finished_at)} · took {seconds(_elapsed(record))}"
    out = [f"Rehearsal {record.id}: {record.runbook_name} in {record.environment} · {verdict(record).upper()}",
           f"operator {record.operator}@{record.host} · started {_when(record.started_at)}{took}",
           f"runbook {record.runbook_path} (sha256 {record.content_hash[:HASH_PREFIX]})"]
    if view is not None and view.procedure_hashes:
        hashes = ", ".join(f"{env} {h[:HASH_PREFIX]}" for env, h in sorted(view.procedure_hashes.items()))
        out.append(f"procedure hash: {hashes}")
    options = plan.get("options") or {}
    if options or plan:
        out.append(f"options: {_options(options)}")
    for source in plan.get("fingerprints") or []:
        out.append(f"fingerprinted: {_source(source)}")
    ponr = plan.get("point_of_no_return")
    if ponr:
        out.append(f"point of no return: {_ponr(ponr)}")
    return out


def cycle_lines(c: RehearsalCycle) -> list[str]:
    """A cycle: what it was, then its figures, then each thing that went wrong, one per line."""
    d = c.data
    mark = "✓" if c.ok else "✗"
    run = f" · run {c.run_id}" if c.run_id else ""
    out = [f"  {mark} {c.index + 1} {cycle_label(d, c)} · fault {c.fault or '-'} · rehearsed as "
           f"{_rehearsed_as(c.rehearsed_as)} · ended {c.status or '-'}{run}"]
    figures = [f"reached {seconds(c.reached_s)}", f"RTO {seconds(c.rto_s)}{_budget(c)}"]
    drills = [f"drill {dr.get('name') or dr.get('step')} {seconds(dr.get('drill_seconds'))}"
              for dr in d.get("drills") or []]
    figures += drills
    figures.append(f"verify {seconds(c.verify_s)}")
    out.append("      " + " · ".join(figures))
    ks = d.get("kill_switch")
    if ks:
        out.append("      " + _kill_switch(ks))
    out.extend("      " + line for line in _fingerprints(c))
    for u in d.get("undo_failed") or []:
        out.append(f"      undo FAILED: {u.get('name') or u.get('step')} ({u.get('step')}): {u.get('error') or '-'}")
    for u in d.get("undo_missing") or []:
        out.append(f"      undo MISSING: {u.get('name') or u.get('step')} ({u.get('step')}): {u.get('why') or '-'}")
    out.extend(f"      problem: {p}" for p in c.problems)
    return out


def not_rehearsed_lines(view: RehearsalView) -> list[str]:
    """The phases no fail/kill cycle covers, and why; covered or not by a roll-forward cycle."""
    if not view.not_rehearsed:
        return []
    forward = [c for c in view.cycles if c.fault == "roll_forward"]
    if any(c.ok for c in forward):
        cover = "roll-forward only: covered by the roll-forward cycle"
    elif forward:
        cover = "roll-forward only: the roll-forward cycle FAILED"
    else:
        cover = "roll-forward only: not rehearsed (rehearse with --roll-forward)"
    out = ["", "Not rehearsed with a rollback:"]
    for p in view.not_rehearsed:
        why = f" ({p['why']})" if p.get("why") else ""
        out.append(f"  {p.get('phase')}: {cover}{why}")
    return out


def not_measured(view: RehearsalView) -> list[dict[str, Any]]:
    done = {c.index for c in view.cycles}
    return [p for p in view.planned if p.get("index") not in done]


def verdict_lines(view: RehearsalView, record: Any) -> list[str]:
    failed = [c for c in view.cycles if not c.ok]
    word = verdict(record)
    if word == "unfinished":
        text = f"Verdict: UNFINISHED (record {record.status}: the rehearsal did not record its end)"
    elif word == "passed":
        text = f"Verdict: PASSED: every cycle ok ({len(view.cycles)})"
    else:
        which = ", ".join(str(c.index + 1) for c in failed) or "none measured"
        text = f"Verdict: FAILED: cycle(s) not ok: {which}"
    rto = view.max_rto()
    text += f" · max RTO {seconds(rto)}"
    if record.exit_code is not None:
        text += f" · exit {record.exit_code}"
    return [text] + ([f"Why: {record.reason}"] if record.reason and word != "passed" else [])


# --- pieces ---------------------------------------------------------------------------------------


def cycle_label(d: dict[str, Any], c: RehearsalCycle | None = None) -> str:
    at = c.at if c is not None else d.get("at")
    fault = c.fault if c is not None else str(d.get("fault") or "")
    if at:
        return f"phase {at}"
    return FAULT_WORDS.get(fault, fault or "-")


def _rehearsed_as(word: str) -> str:
    return {"roll_forward_only": "roll-forward only"}.get(word, word.replace("_", " "))


def _budget(c: RehearsalCycle) -> str:
    if c.budget_s is None:
        return " (no budget)" if c.rto_s is not None else ""
    over = over_budget(c)
    if over is not None or within_budget(c) is False:
        by = f" by {format_duration(over)}" if over is not None else ""
        return f" against budget {format_duration(c.budget_s)}: OVER BUDGET{by}"
    return f" against budget {format_duration(c.budget_s)}"


def _kill_switch(ks: dict[str, Any]) -> str:
    actual, target, within = ks.get("actual_s"), ks.get("target_s"), ks.get("within")
    if within is None and actual is not None and target is not None:
        within = actual <= target
    verdict_words = "" if within is None else (": within target" if within else ": LATE")
    if within is False and actual is not None and target is not None:
        verdict_words += f" by {format_duration(actual - target)}"
    run = f" (run {ks['run_id']}, {ks.get('status') or '-'})" if ks.get("run_id") else ""
    return f"kill switch {seconds(actual)} against target {seconds(target)}{verdict_words}{run}"


def _fingerprints(c: RehearsalCycle) -> list[str]:
    prints = c.data.get("fingerprints") or {}
    sources = prints.get("sources")
    count = len(sources) if isinstance(sources, list) else sources
    of = f" ({count} source{'s' if count != 1 else ''})" if isinstance(count, int) else ""
    expected = prints.get("expected")
    if c.fingerprints_equal is None and not c.differences:
        out = ["fingerprints: -" + (" (nothing fingerprinted)" if not prints.get("errors") else "")]
    elif c.fingerprints_equal and not c.differences:
        out = [f"fingerprints equal{of}"]
    else:
        why = " (expected after the point of no return)" if expected is True else ""
        out = [f"fingerprints DIFFER{of}{why}:"]
        expected_set = set(expected) if isinstance(expected, list) else set()
        for diff in c.differences:
            note = " (expected after the point of no return)" if diff in expected_set else ""
            out.append(f"  {diff}{note}")
    out.extend(f"fingerprint error: {e}" for e in prints.get("errors") or [])
    return out


def _options(options: dict[str, Any]) -> str:
    at = options.get("at")
    where = ", ".join(str(a) for a in at) if at else "every phase before the point of no return"
    parts = [f"fault {options.get('fault') or 'fail'}", f"at {where}"]
    parts.append("roll-forward" if options.get("roll_forward") else "no roll-forward")
    for key in sorted(set(options) - {"at", "fault", "roll_forward"}):
        parts.append(f"{key} {options[key]}")
    return " · ".join(parts)


def _source(source: Any) -> str:
    if not isinstance(source, dict):
        return str(source)
    tables = source.get("tables")
    which = ", ".join(tables) if tables else "all tables"
    origin = f" [{source['source']}]" if source.get("source") else ""
    return f"{source.get('name') or '-'}: {source.get('url') or '-'} ({which}){origin}"


def _ponr(ponr: Any) -> str:
    if not isinstance(ponr, dict):
        return str(ponr)
    where = f" ({ponr['location']})" if ponr.get("location") else ""
    return f"{ponr.get('step') or '-'}{where} in phase {ponr.get('phase') or '-'}: later phases are roll-forward only"


def _elapsed(record: Any) -> float | None:
    try:
        return (datetime.fromisoformat(record.finished_at) - datetime.fromisoformat(record.started_at)).total_seconds()
    except (TypeError, ValueError):
        return None


def _when(iso: str | None) -> str:
    """A ledger time as `2026-12-03 13:35:03Z` (UTC, to the second)."""
    if not iso:
        return "-"
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.strftime("%Y-%m-%d %H:%M:%SZ")


__all__ = ["cycle_json", "cycle_label", "cycle_lines", "render", "scrub", "summary", "to_json", "verdict"]
