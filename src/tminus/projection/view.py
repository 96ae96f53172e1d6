"""One fold of a run's events into a RunView, whole (`project`) or one event at a time (`apply`).

Resume, status, show, approve, why and replay all read a run through this view; a live reader
tailing the ledger calls `apply` as events arrive. Event types are compared here only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tminus import events as ev
from tminus.projection.model import (
    FAILED,
    INTERRUPTED,
    LOCAL,
    OK,
    RUNNING,
    SKIPPED,
    Answer,
    Approval,
    Decision,
    Effect,
    Execution,
    MonitorAction,
    MonitorEnd,
    MonitorSample,
    MonitorStage,
    MonitorTransition,
    MonitorView,
    Note,
    Notification,
    PlannedStep,
    PolicyUse,
    RollbackEnd,
    RollbackPass,
    RollbackView,
    RunMark,
    Section,
    Stop,
    split_section,
)
from tminus.projection.times import epoch
from tminus.projection.upcast import upcast

DECISION_SECTION = "decision"  # the go/no-go: its section id and the key its approval is asked under


@dataclass(frozen=True)
class Fact:
    """One event as the fold reads it: its payload upcast to the newest version."""

    seq: int
    type: str
    step_key: str | None
    at: float | None
    data: dict[str, Any]
    version: int


@dataclass
class RunView:
    """Everything a run's events say, typed. Build it with `project(events)` or `RunView().apply(e)`."""

    started: RunMark | None = None  # the first run.started
    resumes: list[RunMark] = field(default_factory=list)
    finishes: list[RunMark] = field(default_factory=list)  # run.finished, one per process that ended it
    sections: list[Section] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)  # in the order they began
    effects: list[Effect] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    monitor: MonitorView = field(default_factory=MonitorView)
    rollback: RollbackView = field(default_factory=RollbackView)
    notes: list[Note] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)  # every run.stop, accepted or not
    policies: list[PolicyUse] = field(default_factory=list)  # every policy.applied
    cutover_at: float | None = None  # when the first phase began (resume's reading)
    warnings: list[str] = field(default_factory=list)  # payloads read best effort (newer versions)
    others: list[Fact] = field(default_factory=list)  # events this view does not fold (newer types)
    count: int = 0  # events applied
    last_seq: int = 0
    # step key -> its execution that started and has not ended (insertion order kept across re-starts)
    _in_flight: dict[str, Execution] = field(default_factory=dict, repr=False)
    _waiting: dict[str | None, Approval] = field(default_factory=dict, repr=False)
    _acting: Stop | None = field(default=None, repr=False)  # the accepted stop this process acts on
    _unlinked: list[Execution | Section] = field(default_factory=list, repr=False)  # stopped before run.stop landed

    # --- reading ---------------------------------------------------------------------------

    @property
    def finished(self) -> RunMark | None:
        """The run's end, when the last of its processes recorded one (a resume clears it)."""
        if not self.finishes or (self.resumes and self.resumes[-1].seq > self.finishes[-1].seq):
            return None
        return self.finishes[-1]

    @property
    def t0(self) -> float | None:
        return self.started.at if self.started else None

    @property
    def decision(self) -> Decision | None:
        return self.decisions[-1] if self.decisions else None

    def in_flight(self) -> list[Execution]:
        """Executions that started and never ended (running now, or cut short by a crash or signal)."""
        return list(self._in_flight.values())

    def pending_approvals(self) -> dict[str | None, Approval]:
        """Step key -> its request still waiting for an answer (none once the run has ended)."""
        return dict(self._waiting)

    def section(self, section_id: str) -> Section | None:
        """The last pass through a section."""
        found = [s for s in self.sections if s.id == section_id]
        return found[-1] if found else None

    def sections_of(self, kind: str) -> list[Section]:
        return [s for s in self.sections if s.kind == kind]

    def passed(self, section_id: str) -> bool:
        """The last pass through the section finished ok."""
        s = self.section(section_id)
        return s is not None and s.finished_seq is not None and s.status == OK

    def executions_of(self, key: str) -> list[Execution]:
        return [e for e in self.executions if e.key == key]

    def in_section(self, *kinds: str) -> list[Execution]:
        """Executions whose step ran in a section of one of these kinds."""
        return [e for e in self.executions if e.section_kind in kinds]

    def by_end(self) -> list[Execution]:
        """Ended executions in the order their outcome was recorded."""
        return sorted((e for e in self.executions if e.ended), key=lambda e: e.finished_seq or 0)

    def outcomes(self) -> dict[str, Execution]:
        """Step key -> its last ended execution, keys in the order they first ended."""
        out: dict[str, Execution] = {}
        for e in self.by_end():
            out[e.key] = e
        return out

    def accepted_stops(self, after: int = 0) -> list[Stop]:
        """The stop requests the run acted on, recorded after seq `after`."""
        return [s for s in self.stops if s.accepted and s.seq > after]

    def stopped_by(self, stop: Stop) -> list[Execution | Section]:
        """What `stop` ended: the sections and executions it stopped, in the order they began."""
        found: list[Execution | Section] = [x for x in self.sections if x.stop is stop]
        return found + [e for e in self.executions if e.stop is stop]

    def approvals_for(self, key: str) -> list[Approval]:
        return [a for a in self.approvals if a.key == key]

    def notes_for(self, action: str) -> list[Note]:
        return [n for n in self.notes if n.action == action]

    # --- folding ---------------------------------------------------------------------------

    def apply(self, event: Any) -> RunView:
        """Fold one event: a ledger EventRecord, an engine Event or a mapping with the same fields."""
        fact = _fact(event, self.last_seq + 1)
        self.count += 1
        self.last_seq = max(self.last_seq, fact.seq)
        data, version, warning = upcast(fact.type, fact.data)
        if warning and not any(w.endswith(warning) for w in self.warnings):  # once per kind of surprise
            self.warnings.append(f"event {fact.seq} ({fact.type}) and later: {warning}")
        fact = Fact(fact.seq, fact.type, fact.step_key, fact.at, data, version)
        handler = _HANDLERS.get(fact.type)
        if handler is not None:
            handler(self, fact)
        else:
            self.others.append(fact)
        return self

    def apply_all(self, events: Iterable[Any]) -> RunView:
        for e in events:
            self.apply(e)
        return self

    # run marks ------------------------------------------------------------------------------

    def _run_started(self, f: Fact) -> None:
        if self.started is None:
            self.started = _mark(f)

    def _run_resumed(self, f: Fact) -> None:
        self._cut_short()
        self._acting, self._unlinked = None, []  # a new process: a new stop channel
        self.resumes.append(_mark(f))

    def _run_finished(self, f: Fact) -> None:
        self._cut_short()
        self._close_implicit()
        for a in self._waiting.values():
            a.closed = True
        self._waiting.clear()
        self.finishes.append(_mark(f))

    def _cut_short(self) -> None:
        """The process that ran these steps is gone: what still runs was interrupted."""
        stop = self._acting
        for e in self._in_flight.values():
            if e.status == RUNNING:
                e.status = INTERRUPTED
                if stop is not None and stop.mode == "interrupt" and (e.started_seq or 0) < stop.seq:
                    e.stopped, e.stop = stop.mode, stop  # cut short by the interrupt, not by a crash

    # sections -------------------------------------------------------------------------------

    def _open(self, f: Fact, section_id: str, *, implicit: bool = False, kind: str | None = None,
              name: str | None = None) -> Section:
        """Start a pass, or continue the running one (a resumed run starts its section again)."""
        if not implicit:
            self._close_implicit()
        current = self.section(section_id)
        if current is not None and current.status == RUNNING:
            current.data.update(f.data)
            return current
        parsed_kind, parsed_name = split_section(section_id)
        s = Section(section_id, kind or parsed_kind, name if kind else parsed_name,
                    started_seq=f.seq, started_at=f.at, implicit=implicit, data=dict(f.data))
        self.sections.append(s)
        return s

    def _close(self, f: Fact, section_id: str, ok: bool) -> Section:
        s = self.section(section_id)
        if s is None:  # a finish without its start (an older or partial ledger)
            s = self._open(f, section_id)
            s.started_seq, s.started_at = None, None
        s.status = OK if ok else FAILED
        s.finished_seq, s.finished_at = f.seq, f.at
        s.data.update(f.data)
        if isinstance(f.data.get("stopped"), str):
            self._was_stopped(s, f.data["stopped"])
        return s

    def _close_implicit(self) -> None:
        """Undo sections have no events of their own: they end where the next section begins. One whose
        step was cut short stays running, as a phase does: a resume continues the same pass."""
        cut_short = {e.section for e in self._in_flight.values()}
        for s in self.sections:
            if s.implicit and s.kind == "undo" and s.status == RUNNING and s.id not in cut_short:
                ran = [e for e in self.executions if e.section == s.id and e.ended]
                s.status = FAILED if any(e.status == FAILED for e in ran) else OK
                last = max(ran, key=lambda e: e.finished_seq or 0, default=None)
                if last is not None:
                    s.finished_seq, s.finished_at = last.finished_seq, last.finished_at

    def _section_started(self, f: Fact) -> None:
        d = f.data
        kind = d.get("kind") if isinstance(d.get("kind"), str) else None  # newer events name them
        s = self._open(f, str(d.get("section")), kind=kind, name=d.get("name") if kind else None)
        s.budget = _num(f.data.get("budget"), s.budget)
        s.planned_start = _num(f.data.get("planned_start"), s.planned_start)
        if f.data.get("cutover_at") is not None:
            s.cutover_at = float(f.data["cutover_at"])
            self.cutover_at = s.cutover_at

    def _section_finished(self, f: Fact) -> None:
        s = self._close(f, str(f.data.get("section")), bool(f.data.get("ok")))
        s.actual = _num(f.data.get("actual"), s.actual)
        s.budget = _num(f.data.get("budget"), s.budget)
        s.failures = list(f.data.get("failures") or s.failures)
        if f.data.get("failed_step"):
            s.failed_step, s.failed_seq = str(f.data["failed_step"]), f.seq

    # executions -----------------------------------------------------------------------------

    def _execution(self, f: Fact) -> Execution:
        key = str(f.step_key)
        target = str(f.data.get("target") or LOCAL)
        section = str(f.data.get("section") or "")
        kind, name = split_section(section)
        attempt = 1 + sum(1 for e in self.executions if e.key == key and e.target == target)
        e = Execution(key, target, attempt, section, kind, name, name=f.data.get("name"), kind=f.data.get("kind"))
        self.executions.append(e)
        if kind in ("undo", "rollback") and self.rollback.passes:
            self.rollback.executions.append(e)
        if kind == "undo" and not any(s.id == section and s.status == RUNNING for s in self.sections):
            self._close_implicit()
            self._open(f, section, implicit=True, kind=kind, name=name)
        return e

    def _step_started(self, f: Fact) -> None:
        e = self._execution(f)
        e.started_seq, e.started_at = f.seq, f.at
        e.location = f.data.get("location")
        e.config = dict(f.data.get("config") or {})
        e.check, e.idempotent = bool(f.data.get("check")), bool(f.data.get("idempotent"))
        self._in_flight[e.key] = e

    def _ending(self, f: Fact) -> Execution:
        e = self._in_flight.pop(str(f.step_key), None)
        return e if e is not None else self._execution(f)

    def _step_finished(self, f: Fact) -> None:
        e = self._ending(f)
        d = f.data
        e.status = str(d.get("status", FAILED))
        e.finished_seq, e.finished_at, e.data = f.seq, f.at, d
        e.attempts = int(d.get("attempts", 0) or 0)
        e.duration = float(d.get("duration_ms", 0) or 0) / 1000
        e.message = d.get("message", "")
        e.verdicts, e.outputs, e.evidence = d.get("verdicts", []), d.get("outputs", {}), d.get("evidence", {})
        e.name, e.kind = d.get("name", e.name), d.get("kind", e.kind)
        stopped = e.evidence.get("stopped") if isinstance(e.evidence, Mapping) else None
        if isinstance(stopped, str):
            self._was_stopped(e, stopped)

    def _step_skipped(self, f: Fact) -> None:
        e = self._ending(f)
        e.status = SKIPPED
        e.finished_seq, e.finished_at, e.data = f.seq, f.at, f.data
        e.message = f.data.get("message", "")
        e.name = f.data.get("name", e.name)

    def _step_attempt(self, f: Fact) -> None:
        e = self._in_flight.get(str(f.step_key))
        if e is not None:
            e.failed_tries.append(f.data)

    def _step_effect(self, f: Fact) -> None:
        key = f.step_key
        e = self._in_flight.get(str(key)) or next((x for x in reversed(self.executions) if x.key == key), None)
        effect = Effect(f.seq, f.at, key, f.data.get("effect"), e.target if e else str(f.data.get("target") or LOCAL),
                        e.attempt if e else None, f.data)
        self.effects.append(effect)
        if e is not None:
            e.effects.append(effect)

    # approvals and the decision --------------------------------------------------------------

    def _approval_requested(self, f: Fact) -> None:
        d = f.data
        a = Approval(f.step_key, f.seq, f.at, d.get("prompt"), d.get("instructions"), _num(d.get("timeout")),
                     bool(d.get("second_person")), d.get("operator"), data=d)
        self.approvals.append(a)
        self._waiting[f.step_key] = a
        if f.step_key == DECISION_SECTION:
            self._open(f, DECISION_SECTION, implicit=True)

    def _approval_given(self, f: Fact) -> None:
        d = f.data
        a = self._waiting.pop(f.step_key, None) or next(
            (x for x in reversed(self.approvals) if x.key == f.step_key and x.answer is None), None)
        if a is None:  # the answer without its request
            a = Approval(f.step_key, None, None)
            self.approvals.append(a)
        a.answer = Answer(f.seq, f.at, bool(d.get("approved")), d.get("by"), d.get("how"), d.get("reason"),
                          epoch(d.get("at")), d.get("approval_id"), d)

    def _decision(self, f: Fact) -> None:
        d = f.data
        self.decisions.append(Decision(f.seq, f.at, d.get("mode"), d.get("verdict"), d.get("by"), d.get("how"),
                                       d.get("reason"), list(d.get("criteria") or []), d))
        s = self.section(DECISION_SECTION)
        if s is None or s.status != RUNNING:
            s = self._open(f, DECISION_SECTION, implicit=True)
        if s.implicit:
            self._close(f, DECISION_SECTION, d.get("verdict") == "go")

    # monitor --------------------------------------------------------------------------------

    def _monitor_started(self, f: Fact) -> None:
        d = f.data
        stage = str(d.get("stage") or "window")
        cut = _num(d.get("cutover_at"))
        self.monitor.stages.append(MonitorStage(f.seq, f.at, stage, _num(d.get("duration")), _num(d.get("interval")),
                                                list(d.get("probes") or []), list(d.get("rules") or []), cut, data=d))
        if cut is not None and not any(s.stage == "window" and s.cutover_at is not None
                                       for s in self.monitor.stages[:-1]):
            self.monitor.cutover_at = cut  # the first window's; before it, the last baseline's
        if stage == "window":
            started = f.at or 0.0
            self.monitor.window_segments.append([started, started])
            if self.cutover_at is None and cut is not None:
                self.cutover_at = cut  # a watch-only run has no phases
        self._open(f, "monitor" if stage == "window" else stage, implicit=True, kind="monitor", name=stage)

    def _monitor_sample(self, f: Fact) -> None:
        d = f.data
        at = d.get("at")
        at = float(at) if isinstance(at, int | float) else f.at
        if at is None:
            return
        stage = str(d.get("stage") or "window")
        self.monitor.samples.append(MonitorSample(f.seq, at, str(d.get("probe")), stage, d.get("values"),
                                                  d.get("error"), f.step_key, d))
        if stage == "window" and self.monitor.window_segments:
            self.monitor.window_segments[-1][1] = at

    def _monitor_transition(self, f: Fact) -> None:
        d = f.data
        timed = isinstance(d.get("at"), int | float)
        self.monitor.transitions.append(MonitorTransition(
            f.seq, float(d["at"]) if timed else f.at, d.get("rule"), d.get("to"), d.get("from"), d.get("reason"),
            d.get("probe"), d.get("action"), d.get("stage"), d.get("sample"), list(d.get("recent") or []), timed, d))

    def _monitor_action(self, f: Fact) -> None:
        d = f.data
        self.monitor.actions.append(MonitorAction(f.seq, f.at, d.get("rule"), d.get("action"), d.get("outcome"),
                                                  d.get("reason"), d.get("by"), d.get("how"), d))
        if d.get("outcome") == "continue" and f.at is not None:
            self.monitor.pause_answers[str(d.get("rule"))] = f.at

    def _monitor_finished(self, f: Fact) -> None:
        d = f.data
        stage = str(d.get("stage") or "window")
        end = MonitorEnd(f.seq, f.at, bool(d.get("ok")), d.get("outcome"), d.get("reason"),
                         d.get("samples"), list(d.get("fired") or []), d)
        open_stage = next((s for s in reversed(self.monitor.stages) if s.stage == stage and s.end is None), None)
        if open_stage is not None:
            open_stage.end = end
        else:  # an end without its start: keep it on a stage of its own
            self.monitor.stages.append(MonitorStage(f.seq, None, stage, None, None, end=end, announced=False))
        if stage == "baseline" and end.ok:
            self.monitor.baseline_done = True
        self._close(f, "monitor" if stage == "window" else stage, end.ok)

    # rollback -------------------------------------------------------------------------------

    def _rollback_started(self, f: Fact) -> None:
        d = f.data
        planned = d.get("plan") if d.get("plan") is not None else d.get("steps")
        plan = [PlannedStep(str(p.get("key")), p.get("name"), p.get("section"), dict(p))
                for p in planned or [] if isinstance(p, Mapping)]
        self.rollback.passes.append(RollbackPass(f.seq, f.at, str(d.get("reason", "")), plan, data=d))
        self._open(f, "rollback", implicit=True)

    def _rollback_finished(self, f: Fact) -> None:
        d = f.data
        end = RollbackEnd(f.seq, f.at, bool(d.get("ok")), d.get("state"), list(d.get("undone") or []),
                          d.get("stopped") if isinstance(d.get("stopped"), str) else None, d)
        if self.rollback.passes:
            self.rollback.passes[-1].end = end
        self._close_implicit()
        self._close(f, "rollback", end.ok)

    # stops and policies ---------------------------------------------------------------------

    def _policy_applied(self, f: Fact) -> None:
        d = f.data
        section = d.get("section") if isinstance(d.get("section"), str) else None
        kind, name = (d.get("kind"), d.get("name")) if isinstance(d.get("kind"), str) else \
            split_section(section) if section else (None, None)
        self.policies.append(PolicyUse(f.seq, f.at, d.get("policy"), d.get("hook"), section, kind, name or None,
                                       d.get("step") or f.step_key, d.get("decision"), d.get("reason"), d))

    def _stop_requested(self, f: Fact) -> None:
        d = f.data
        stop = Stop(f.seq, f.at, d.get("mode"), d.get("reason"), d.get("by"), epoch(d.get("requested_at")),
                    bool(d.get("accepted", True)), d.get("note"), data=d)
        asked = [p for p in self.policies if f"policy:{p.policy}" == stop.by
                 and not any(s.policy is p for s in self.stops)]
        if asked:  # the policy decision recorded just before its request
            stop.policy = asked[-1]
            stop.section, stop.step = asked[-1].section, asked[-1].step
        else:
            stop.section = next((s.id for s in reversed(self.sections) if s.status == RUNNING), None)
        running = [key for key, e in self._in_flight.items() if e.status == RUNNING]  # not a crash's leftovers
        if stop.step is None and running:
            stop.step = running[-1]
        self.stops.append(stop)
        if stop.accepted:
            self._acting = stop
            for thing in [x for x in self._unlinked if x.stopped == stop.mode]:
                self._link(thing, stop)
                self._unlinked.remove(thing)

    def _was_stopped(self, thing: Execution | Section, mode: str) -> None:
        """A step or section ended by a stop request: linked to the request (its run.stop may land after
        it, written by the thread that asked)."""
        thing.stopped = mode
        if self._acting is not None and self._acting.mode == mode:
            self._link(thing, self._acting)
        else:
            self._unlinked.append(thing)

    @staticmethod
    def _link(thing: Execution | Section, stop: Stop) -> None:
        thing.stop = stop
        if isinstance(thing, Execution) and stop.step is None:
            stop.step = thing.key

    # notes and notifications ----------------------------------------------------------------

    def _note(self, f: Fact) -> None:
        d = f.data
        self.notes.append(Note(f.seq, f.at, f.step_key, d.get("action"), d.get("message"), d.get("by"),
                               d.get("reason"), d))

    def _notified(self, f: Fact) -> None:
        d = f.data
        self.notifications.append(Notification(f.seq, f.at, f.type == ev.NOTIFY_SENT, d.get("channel"),
                                               d.get("url"), d.get("attempts"), d.get("status"), d.get("error"), d))

    # --- an outline, for tests and tools -----------------------------------------------------

    def outline(self) -> dict[str, Any]:
        """The run in a few JSON lines: what the recorded-ledger tests compare."""
        m, rb = self.monitor, self.rollback
        return {
            "run": {"started": self.started is not None, "resumes": len(self.resumes),
                    "finished": self.finished.status if self.finished else None},
            "sections": [[s.id, s.kind, s.name, s.status] for s in self.sections],
            "executions": [[e.key, e.target, e.attempt, e.status, e.section] for e in self.executions],
            "in_flight": [e.key for e in self.in_flight()],
            "effects": [[x.key, x.attempt, x.effect] for x in self.effects],
            "approvals": [{"key": a.key, "answer": None if a.answer is None else a.answer.approved,
                           "pending": a.pending} for a in self.approvals],
            "decision": self.decision.verdict if self.decision else None,
            "monitor": {"stages": [[s.stage, s.end.outcome if s.end else None] for s in m.stages],
                        "baseline_samples": len(m.samples_of("baseline")),
                        "window_samples": len(m.samples_of("window")),
                        "transitions": [[t.rule, t.from_, t.to] for t in m.transitions],
                        "actions": [[a.rule, a.action, a.outcome] for a in m.actions],
                        "segments": len(m.window_segments), "cutover": m.cutover_at is not None},
            "rollback": {"passes": len(rb.passes), "plan": [p.key for p in rb.plan], "state": rb.state,
                         "undone": [[k, e.status] for k, e in rb.outcomes().items()]},
            "others": [f.type for f in self.others],
            "warnings": list(self.warnings),
            **self._stops_outline(),
        }

    def _stops_outline(self) -> dict[str, Any]:
        """Stops and policies, for runs that have them (older outlines stay as they were checked)."""
        if not (self.stops or self.policies):
            return {}
        return {
            "stops": [{"mode": s.mode, "by": s.by, "accepted": s.accepted, "section": s.section, "step": s.step,
                       "policy": s.policy.policy if s.policy else None,
                       "stopped": [x.id if isinstance(x, Section) else x.key for x in self.stopped_by(s)]}
                      for s in self.stops],
            "policies": [[p.policy, p.hook, p.section, p.step, p.decision] for p in self.policies],
        }


def project(events: Iterable[Any]) -> RunView:
    """Fold a run's events, in order, into one view."""
    return RunView().apply_all(events)


# --- reading one event -------------------------------------------------------------------------


def _fact(event: Any, next_seq: int) -> Fact:
    get: Callable[[str], Any]
    if isinstance(event, Mapping):
        get = event.get
    else:
        def get(name: str) -> Any:
            return getattr(event, name, None)
    seq = get("seq")
    return Fact(seq if isinstance(seq, int) else next_seq, str(get("type")), get("step_key"), epoch(get("at")),
                get("data") or {}, 0)


def _mark(f: Fact) -> RunMark:
    d = f.data
    code = d.get("exit_code")
    return RunMark(f.seq, f.at, d.get("operator"), d.get("host"), d.get("reason"), d.get("action"),
                   dict(d.get("interrupted") or {}), dict(d.get("overrides") or {}), d.get("status"),
                   code if isinstance(code, int) else None, d)


def _num(value: Any, default: float | None = None) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


_HANDLERS: dict[str, Callable[[RunView, Fact], None]] = {
    ev.RUN_STARTED: RunView._run_started,
    ev.RUN_RESUMED: RunView._run_resumed,
    ev.RUN_FINISHED: RunView._run_finished,
    ev.SECTION_STARTED: RunView._section_started,
    ev.SECTION_FINISHED: RunView._section_finished,
    ev.STEP_STARTED: RunView._step_started,
    ev.STEP_ATTEMPT: RunView._step_attempt,
    ev.STEP_FINISHED: RunView._step_finished,
    ev.STEP_SKIPPED: RunView._step_skipped,
    ev.STEP_EFFECT: RunView._step_effect,
    ev.APPROVAL_REQUESTED: RunView._approval_requested,
    ev.APPROVAL_GIVEN: RunView._approval_given,
    ev.DECISION: RunView._decision,
    ev.MONITOR_STARTED: RunView._monitor_started,
    ev.MONITOR_SAMPLE: RunView._monitor_sample,
    ev.MONITOR_TRANSITION: RunView._monitor_transition,
    ev.MONITOR_ACTION: RunView._monitor_action,
    ev.MONITOR_FINISHED: RunView._monitor_finished,
    ev.ROLLBACK_STARTED: RunView._rollback_started,
    ev.ROLLBACK_FINISHED: RunView._rollback_finished,
    ev.NOTE: RunView._note,
    ev.NOTIFY_SENT: RunView._notified,
    ev.NOTIFY_FAILED: RunView._notified,
    ev.STOP_REQUESTED: RunView._stop_requested,
    ev.POLICY_APPLIED: RunView._policy_applied,
}
