"""What the projection hands out: typed, plain records of one run. Times are epoch seconds (None
when unknown); `seq` is the event's position in the run (the ledger's seq when it has one).

Every record keeps `data`, the payload it was read from (upcast to the newest version), for what
the typed fields do not name; readers use the fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RUNNING, OK, FAILED, SKIPPED, INTERRUPTED = "running", "ok", "failed", "skipped", "interrupted"
LOCAL = "local"  # the target of every execution until remote targets exist


def split_section(section_id: str) -> tuple[str, str | None]:
    """A legacy section id as (kind, name): `phase:deploy` -> (phase, deploy), `verify` -> (verify, None).

    The one place an id is parsed: newer events name their kind and name themselves."""
    kind, sep, name = section_id.partition(":")
    return (kind, name) if sep else (section_id, None)


@dataclass
class RunMark:
    """run.started, run.resumed or run.finished."""

    seq: int
    at: float | None
    operator: str | None = None
    host: str | None = None
    reason: str | None = None
    action: str | None = None  # run.resumed: "rollback" for `tminus rollback`
    interrupted: dict[str, str] = field(default_factory=dict)  # run.resumed: key -> retry | skip | rollback
    overrides: dict[str, Any] = field(default_factory=dict)  # run.started: the --var values
    status: str | None = None  # run.finished
    exit_code: int | None = None  # run.finished
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Section:
    """One pass through a section: gates, phase:NAME, verify, decision, monitor, baseline, rollback,
    undo:NAME, verify-after-rollback. Started again after a resume, it stays the same pass."""

    id: str
    kind: str
    name: str | None
    status: str = RUNNING  # running | ok | failed
    started_seq: int | None = None
    finished_seq: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    budget: float | None = None
    planned_start: float | None = None  # seconds after the first phase's planned start
    actual: float | None = None  # seconds, as the engine measured it
    failed_step: str | None = None  # the step key that failed the phase
    failed_seq: int | None = None  # when it was recorded
    failures: list[str] = field(default_factory=list)
    cutover_at: float | None = None
    implicit: bool = False  # read from rollback, monitor, decision or undo step events, not section.*
    stopped: str | None = None  # the stop mode that ended it (its status is then failed)
    stop: Stop | None = None  # the request that stopped it, when recorded
    data: dict[str, Any] = field(default_factory=dict)  # the start's payload, updated by the finish's


@dataclass
class Effect:
    """step.effect: what a kind found or started, recorded before it acted on it."""

    seq: int
    at: float | None
    key: str | None
    effect: str | None  # process | migration | proxy | service | ...
    target: str = LOCAL
    attempt: int | None = None  # of the execution it belongs to (None: no execution of its key yet)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Execution:
    """One execution of a step, keyed by (key, target, attempt): attempt counts the executions of
    the key on the target across the whole run (a retry after a resume is attempt 2)."""

    key: str
    target: str
    attempt: int
    section: str  # the step's section id: gate:NAME, phase:NAME, verify, undo:NAME, rollback, ...
    section_kind: str
    section_name: str | None
    name: str | None = None
    kind: str | None = None  # the step's kind (run, http, migrate, ...)
    status: str = RUNNING  # running | ok | failed | skipped | interrupted
    started_seq: int | None = None
    finished_seq: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    location: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    check: bool = False
    idempotent: bool = False
    attempts: int = 0  # tries inside this execution (retry)
    duration: float = 0.0  # seconds, every try
    message: str = ""
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    failed_tries: list[dict[str, Any]] = field(default_factory=list)  # step.attempt payloads
    effects: list[Effect] = field(default_factory=list)
    # a stop request ended it: the mode (a rollback or abort ends it failed, an interrupt cuts it short)
    stopped: str | None = None
    stop: Stop | None = None  # that request, when recorded
    data: dict[str, Any] = field(default_factory=dict)  # the finished (or skipped) payload

    @property
    def id(self) -> tuple[str, str, int]:
        return self.key, self.target, self.attempt

    @property
    def ended(self) -> bool:
        """Finished or skipped: its outcome is recorded."""
        return self.status in (OK, FAILED, SKIPPED)

    @property
    def finished(self) -> bool:
        """Ran to an outcome (ok or failed), as opposed to skipped or cut short."""
        return self.status in (OK, FAILED)


@dataclass
class Answer:
    seq: int
    at: float | None  # when the answer was recorded in the run
    approved: bool
    by: str | None = None
    how: str | None = None
    reason: str | None = None
    answered_at: float | None = None  # when the operator answered (the approval's own time)
    approval_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Approval:
    """One request for an operator's answer (a manual step, the go/no-go, a monitor pause)."""

    key: str | None
    seq: int | None  # of the request; None when only the answer was recorded
    at: float | None
    prompt: str | None = None
    instructions: str | None = None
    timeout: float | None = None
    second_person: bool = False
    operator: str | None = None
    answer: Answer | None = None
    closed: bool = False  # the run ended before an answer came
    data: dict[str, Any] = field(default_factory=dict)  # the request's payload

    @property
    def requested(self) -> bool:
        return self.seq is not None

    @property
    def pending(self) -> bool:
        return self.answer is None and not self.closed


@dataclass
class Decision:
    seq: int
    at: float | None
    mode: str | None
    verdict: str | None  # go | no-go
    by: str | None = None
    how: str | None = None
    reason: str | None = None
    criteria: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class MonitorEnd:
    seq: int
    at: float | None
    ok: bool
    outcome: str | None
    reason: str | None
    samples: int | None
    fired: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class MonitorStage:
    """The baseline or the watch window (monitor.started, and its monitor.finished)."""

    seq: int
    at: float | None
    stage: str  # baseline | window
    duration: float | None
    interval: float | None
    probes: list[str] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)  # name, probe, action, text
    cutover_at: float | None = None
    end: MonitorEnd | None = None
    announced: bool = True  # False: only its end was recorded
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class MonitorSample:
    seq: int
    at: float  # when the probe answered (the sample's own time)
    probe: str
    stage: str  # baseline | window
    values: Any = None
    error: str | None = None
    key: str | None = None  # the probe's step key
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class MonitorTransition:
    seq: int
    at: float | None  # the sample's time when recorded, else the event's
    rule: str | None
    to: str | None
    from_: str | None = None
    reason: str | None = None
    probe: str | None = None
    action: str | None = None
    stage: str | None = None
    sample: dict[str, Any] | None = None
    recent: list[dict[str, Any]] = field(default_factory=list)
    timed: bool = False  # `at` came from the transition itself, not from the event
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class MonitorAction:
    seq: int
    at: float | None
    rule: str | None
    action: str | None  # rollback | abort | pause | notify
    outcome: str | None  # rollback | abort | notified | continue | no answer
    reason: str | None = None
    by: str | None = None
    how: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class MonitorView:
    stages: list[MonitorStage] = field(default_factory=list)
    samples: list[MonitorSample] = field(default_factory=list)
    transitions: list[MonitorTransition] = field(default_factory=list)
    actions: list[MonitorAction] = field(default_factory=list)
    # the cutover as the monitor recorded it: the window's, else the baseline's
    cutover_at: float | None = None
    window_segments: list[list[float]] = field(default_factory=list)  # [start, last sample] per watch
    pause_answers: dict[str, float] = field(default_factory=dict)  # rule -> its last "keep watching"
    baseline_done: bool = False  # a baseline ran to its end

    def samples_of(self, stage: str) -> list[MonitorSample]:
        return [s for s in self.samples if s.stage == stage]

    def ends(self) -> list[MonitorEnd]:
        return [s.end for s in self.stages if s.end is not None]

    @property
    def last_end(self) -> MonitorEnd | None:
        """The window's last end when there is one, else the last end of any stage."""
        window = [s.end for s in self.stages if s.end is not None and s.stage == "window"]
        ends = window or self.ends()
        return ends[-1] if ends else None

    @property
    def rules(self) -> dict[str, dict[str, Any]]:
        """Every rule the stages announced, by name (the last announcement wins)."""
        return {str(r.get("name")): r for s in self.stages for r in s.rules}


@dataclass
class GuardWatch:
    """A phase's guard in one process: guard.started, its samples and transitions, guard.finished."""

    seq: int
    at: float | None
    section: str | None  # the phase's section id
    phase: str | None
    interval: float | None = None
    settle: float | None = None
    probes: list[str] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)  # name, probe, action, text
    resumed: bool = False  # started again by a resumed run, for the rest of the phase
    samples: list[MonitorSample] = field(default_factory=list)
    transitions: list[MonitorTransition] = field(default_factory=list)
    end: MonitorEnd | None = None
    announced: bool = True  # False: its start was not recorded
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def firings(self) -> list[MonitorTransition]:
        """Transitions to firing or inconclusive: the moments the guard acted (or told)."""
        return [t for t in self.transitions if t.to in ("firing", "inconclusive")]


@dataclass
class PlannedStep:
    """One step of a recorded undo plan: its key and name, and its spec when the plan carries one."""

    key: str
    name: str | None
    section: str | None = None  # where it runs (undo:NAME, rollback) when the plan says
    spec: dict[str, Any] = field(default_factory=dict)  # the plan's entry as recorded


@dataclass
class RollbackEnd:
    seq: int
    at: float | None
    ok: bool
    state: str | None = None
    undone: list[str] = field(default_factory=list)
    stopped: str | None = None  # the stop mode that ended the rollback where it was (abort)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class RollbackPass:
    """One rollback.started (a resumed rollback starts again) and its rollback.finished."""

    seq: int
    at: float | None
    reason: str
    plan: list[PlannedStep] = field(default_factory=list)
    end: RollbackEnd | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class RollbackView:
    passes: list[RollbackPass] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)  # undo and rollback steps, in start order

    @property
    def started(self) -> bool:
        return bool(self.passes)

    @property
    def active(self) -> bool:
        """Started and not finished well: a resume continues the rollback."""
        return bool(self.passes) and not (self.passes[-1].end is not None and self.passes[-1].end.ok)

    @property
    def reason(self) -> str:
        return self.passes[-1].reason if self.passes else ""

    @property
    def plan(self) -> list[PlannedStep]:
        """The plan the first rollback recorded (a resumed one records the same steps again)."""
        return self.passes[0].plan if self.passes else []

    @property
    def end(self) -> RollbackEnd | None:
        ended = [p.end for p in self.passes if p.end is not None]
        return ended[-1] if ended else None

    @property
    def state(self) -> str | None:
        """None (no rollback), running, ok or failed."""
        if not self.passes:
            return None
        end = self.passes[-1].end
        return RUNNING if end is None else OK if end.ok else FAILED

    def outcomes(self) -> dict[str, Execution]:
        """The last ended execution of each undo or rollback step."""
        return {e.key: e for e in self.executions if e.ended}


@dataclass
class PolicyUse:
    """policy.applied: a policy hook asked the run to stop (before a section or a step, after a section)."""

    seq: int
    at: float | None
    policy: str | None
    hook: str | None  # before_section | before_step | after_section
    section: str | None  # the section's id
    section_kind: str | None
    section_name: str | None
    step: str | None  # before_step: the step kept from starting
    decision: str | None  # the stop mode it asked for: interrupt | rollback | abort | kill_switch
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stop:
    """run.stop: a request through the stop channel, from a signal, a lost lease, a policy, a guard or
    a kill switch; accepted (the run acts on it) or not (`note` says why)."""

    seq: int
    at: float | None
    mode: str | None  # interrupt | rollback | abort | kill_switch
    reason: str | None
    by: str | None  # "signal SIGINT", "lease", "policy:NAME", a guard's or an operator's name
    requested_at: float | None = None
    accepted: bool = True
    note: str | None = None
    section: str | None = None  # the section running when it was asked (or the policy's section)
    step: str | None = None  # the step it stopped: running then, or kept from starting by a policy
    policy: PolicyUse | None = None  # the policy decision behind it
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """policy, signal, lease or other."""
        by = self.by or ""
        if by.startswith("policy:"):
            return "policy"
        if by.startswith("signal"):
            return "signal"
        return "lease" if by == "lease" else "other"


@dataclass
class Note:
    seq: int
    at: float | None
    key: str | None
    action: str | None  # manifest, unlock, secret-output-lost, monitor-restored, self-approval-refused, ...
    message: str | None = None
    by: str | None = None
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Notification:
    seq: int
    at: float | None
    ok: bool
    channel: str | None = None
    url: str | None = None
    attempts: int | None = None
    status: int | None = None
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeadlineAlert:
    """deadline.exceeded, and the deadline.answered that says what came of it."""

    seq: int
    at: float | None
    id: str  # phase:NAME | rollback | downtime
    after: float | None  # the deadline, seconds
    action: str | None  # notify | pause | rollback
    elapsed: float | None = None  # seconds since its clock started, when it was noticed
    outcome: str | None = None  # told | continue | rollback | abort | needs_operator | went on
    by: str | None = None  # who answered a pause
    how: str | None = None  # tty | approve-command | --yes | no-input | ...
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class RehearsalCycle:
    """One cycle of a rehearsal (a `rehearsal.cycle` event): a run up to a phase, a fault, the rollback,
    the state compared. Times in seconds; None when the cycle never got that far."""

    seq: int
    index: int
    at: str | None  # the phase the fault followed (None: roll-forward, monitor, kill switch cycles)
    fault: str  # fail | kill | monitor | kill_switch | roll_forward
    rehearsed_as: str  # rollback | roll_forward_only
    run_id: str | None
    status: str | None  # how the cycle's run ended (rolled_back, ...)
    ok: bool
    problems: list[str] = field(default_factory=list)
    reached_s: float | None = None  # run start to the end of the phase (the fault point)
    rto_s: float | None = None  # injected fault to rollback finished
    verify_s: float | None = None  # injected fault to the first passing verify check after the rollback
    budget_s: float | None = None  # the phase's budget, which the RTO is judged against
    fingerprints_equal: bool | None = None  # None: nothing to fingerprint
    differences: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class RehearsalView:
    """A rehearsal's own record (a run of kind `rehearsal`): what it planned and what each cycle measured."""

    seq: int
    at: float | None
    environment: str | None
    content_hash: str | None
    procedure_hashes: dict[str, str] = field(default_factory=dict)
    planned: list[dict[str, Any]] = field(default_factory=list)  # the cycles, as planned
    not_rehearsed: list[dict[str, Any]] = field(default_factory=list)  # {phase, why}
    all_phases: bool = False  # every phase is covered by a planned cycle
    cycles: list[RehearsalCycle] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def max_rto(self) -> float | None:
        rtos = [c.rto_s for c in self.cycles if c.rto_s is not None]
        return max(rtos) if rtos else None
