"""`tminus docs`: a runbook as the Markdown page an operator reads on the day.

Built on `engine/plan.build_plan`, so every step reads in the words of `tminus plan` (its
summaries, `why`, undo and expectations); this module only lays them out. The page is a function of
the runbook and its variables alone, so that a committed copy can be checked (`--check`, the `docs`
kind): no clock, no ledger, no process environment (`env.*` stay placeholders, secrets are `***`),
no file paths or line numbers (a comment added to the runbook changes nothing here).

Everything taken from the runbook is escaped: a step name holding Markdown, HTML or a `|` renders
as its text and cannot break a table or open a tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from tminus.durations import format_duration
from tminus.engine.context import Options
from tminus.engine.plan import Plan, PlannedPhase, PlannedStep, build_plan
from tminus.kinds import registry
from tminus.runbook.document import RunbookDocument
from tminus.runbook.models import Runbook
from tminus.templating.masking import MASK, hide_url_passwords

OPERATOR = "⟨run.operator⟩"  # the page is the same whoever renders it

# Backslash-escaped wherever runbook text lands in Markdown (CommonMark escapes any ASCII punctuation).
_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~&!])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def text(value: object) -> str:
    """Runbook text as Markdown text: one line, every character with a meaning escaped."""
    one_line = " ".join(_CONTROL.sub(" ", str(value)).split())
    return _SPECIAL.sub(r"\\\1", one_line)


def code(value: object) -> str:
    """Runbook text as an inline code span: literal (no HTML, no emphasis), on one line, fenced
    with more backticks than it holds. Never used in a table (a `|` would end the cell)."""
    one_line = " ".join(_CONTROL.sub(" ", str(value)).split())
    if not one_line:
        return "` `"
    longest = max((len(m) for m in re.findall(r"`+", one_line)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if one_line.startswith("`") or one_line.endswith("`") or longest else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def _dur(seconds: float | None) -> str:
    return format_duration(seconds) if seconds is not None else "-"


def docs_options(doc: RunbookDocument, environment: str, overrides: dict[str, Any]) -> Options:
    """The options a page is rendered with: no process environment (a secret reads `***`, any
    other `env.X` its placeholder) and a placeholder operator, so the page is the same anywhere."""
    return Options(environment=environment, overrides=overrides, operator=OPERATOR,
                   environ={name: MASK for name in doc.runbook.secrets})


def render_page(doc: RunbookDocument, opts: Options) -> str:
    """The Markdown page (ends with one newline)."""
    plan = build_plan(doc, opts)
    page = _Page(doc, plan)
    return hide_url_passwords(page.render())


class _Page:
    def __init__(self, doc: RunbookDocument, plan: Plan) -> None:
        self.doc, self.rb, self.plan = doc, doc.runbook, plan
        self.out: list[str] = []
        ponr = plan.point_of_no_return
        self.ponr_key = ponr["key"] if ponr else None

    # --- layout helpers ---------------------------------------------------------------------

    def line(self, value: str = "") -> None:
        self.out.append(value)

    def heading(self, level: int, title: str) -> None:
        if self.out and self.out[-1] != "":
            self.line()
        self.line(f"{'#' * level} {title}")
        self.line()

    def para(self, value: str) -> None:
        if self.out and self.out[-1] != "":
            self.line()
        self.line(value)
        self.line()

    def table(self, header: list[str], rows: Iterable[list[str]]) -> None:
        if self.out and self.out[-1] != "":
            self.line()
        self.line("| " + " | ".join(header) + " |")
        self.line("|" + "|".join(" --- " for _ in header) + "|")
        for row in rows:
            self.line("| " + " | ".join(cell or " " for cell in row) + " |")
        self.line()

    def step(self, s: PlannedStep, indent: str = "", *, in_phase: bool = False, number: int | None = None) -> None:
        """One step in words: its title and plan summary, then (in a phase) its effect and undo."""
        bullet = f"{number}." if number is not None else "-"
        self.line(f"{indent}{bullet} **{text(s.title)}**: {code(s.summary)}")
        sub = indent + " " * (len(bullet) + 1)
        why = s.why if s.why.startswith(f"{s.effect}:") else f"{s.effect}, {s.why}"
        warn = "**NO UNDO**: " if in_phase and not s.reversible else ""
        self.line(f"{sub}- effect: {warn}{text(why)}")
        for u in s.undo if in_phase else []:
            self.line(f"{sub}- undo: {code(u)}")
        if s.retry:
            self.line(f"{sub}- retry: {s.retry} attempts")
        if s.timeout:
            self.line(f"{sub}- timeout: {_dur(s.timeout)}")
        for e in s.expect:
            self.line(f"{sub}- expect {code(e)}")

    def steps(self, steps: list[PlannedStep], *, in_phase: bool = False, numbered: bool = False) -> None:
        if self.out and self.out[-1] != "":
            self.line()
        for i, s in enumerate(steps, 1):
            if in_phase and s.key == self.ponr_key:
                if self.out[-1] != "":
                    self.line()
                self.line("> **Point of no return**: the next step has no undo; once it has run, a rollback "
                          "cannot reverse it (see [Point of no return](#point-of-no-return)).")
                self.line()
            self.step(s, in_phase=in_phase, number=i if numbered else None)
        self.line()

    # --- the page ---------------------------------------------------------------------------

    def render(self) -> str:
        p = self.plan
        self.line(f"# Runbook: {text(p.runbook)} ({text(p.environment)})")
        self.line()
        self.line(f"<!-- generated by `tminus docs {text(self.doc.path.name)} -e {text(p.environment)}`; "
                  "do not edit: regenerate it -->")
        if self.rb.description:
            self.para(text(self.rb.description))
        self.summary()
        self.variables()
        self.before()
        self.gates()
        self.timeline()
        self.phases("Phases", p.phases)
        self.verify()
        self.decision()
        if p.after_go:  # plan's words for both
            self.phases("After go", p.after_go, lead="The cutover is live; a failure stops the run, not finalized, "
                        "unless the phase says on\\_failure: rollback.")
        self.monitor()
        if p.finalize:
            self.phases("Finalize", p.finalize, lead="After the monitor window; a failure stops the run, not "
                        "finalized: nothing is rolled back, `tminus resume` finishes it.")
        self.point_of_no_return()
        self.rollback_path()
        self.kill_switch()
        self.deadlines()
        self.notifications()
        self.data_safety()
        while self.out and self.out[-1] == "":
            self.out.pop()
        return "\n".join(self.out) + "\n"

    def summary(self) -> None:
        p = self.plan
        rows = [["runbook", text(p.runbook)], ["environment", text(p.environment)],
                ["cutover (T+0)", text(p.at) if p.at else "when the run starts"],
                ["phases", str(len(p.phases))],
                ["total budget",
                 _dur(p.total_budget) if p.total_budget is not None else "unknown (a phase has no budget)"],
                ["end of phases", text(p.end_tplus or "T+?")],
                ["point of no return", text(p.point_of_no_return["step"]) if p.point_of_no_return else "none"]]
        self.table(["fact", "value"], rows)

    def variables(self) -> None:
        if not self.plan.vars:
            return
        self.heading(2, "Variables")
        self.para(f"As this environment has them (secrets as `{MASK}`; `--var` overrides change the page).")
        self.table(["name", "value"], ([text(k), text(_value(v))] for k, v in self.plan.vars.items()))

    def before(self) -> None:
        p = self.plan
        self.heading(2, "Before T+0")
        said = False
        if p.manifest["required"] or p.manifest["forbidden"]:
            said = True
            self.line("- environment variables required: "
                      + (", ".join(code(n) for n in p.manifest["required"]) or "none"))
            if p.manifest["forbidden"]:
                self.line("- values forbidden in: " + ", ".join(code(n) for n in p.manifest["forbidden"]))
            self.line()
        if p.at:
            said = True
            self.para(f"Cutover (T+0): **{text(p.at)}** (the runbook's `at:`).")
        if p.stages:
            said = True
            rule = ("a stage not passed in its window blocks the run" if p.require_stages
                    else "shown by the run, not required (require_stages: true blocks on them)")
            self.heading(3, "Stages")
            self.para(f"Run with `tminus gate --stage ...`; {text(rule)}.")
            for s in p.stages:
                opens = f"window opens {s['opens']}" if s["opens"] else f"within {s['stage'][2:]} before the run"
                self.heading(4, f"{text(s['stage'])}: {text(opens)}")
                for g in s["gates"]:
                    self.gate(g)
        if p.requires:
            said = True
            self.heading(3, "Requires")
            self.para("Checked in the ledger with the gates:")
            for r in p.requires:
                self.line(f"- {text(r['describe'])}")
            self.line()
        if p.rehearsal:
            said = True
            r = p.rehearsal
            self.heading(3, "Rehearsal")
            if r["applies"]:
                self.para("Required (decision.require\\_rehearsal, checked in the ledger with the gates): "
                          f"{text(r['describe'])}")
            else:
                where = "where it is rehearsed" if r["environment"] == p.environment else "not in enforced_in"
                self.para(f"Not required in {text(p.environment)} ({text(where)}).")
        if not said:
            self.para("Nothing: no environment manifest, cutover time, stages, required runs or rehearsal.")

    def gate(self, g: dict[str, Any]) -> None:
        self.para(f"**{text(g['name'])}**" + (f": {text(g['description'])}" if g.get("description") else ""))
        self.steps(g["checks"])

    def gates(self) -> None:
        self.heading(2, "Gates")
        if not self.plan.gates:
            self.para("None: nothing is checked before the first phase.")
            return
        self.para("All must pass; nothing changes before.")
        for g in self.plan.gates:
            self.heading(3, text(g["name"]))
            if g.get("description"):
                self.para(text(g["description"]))
            self.steps(g["checks"])

    def timeline(self) -> None:
        p = self.plan
        self.heading(2, "Timeline")
        rows: list[list[str]] = []
        for section, phases in (("phase", p.phases), ("after_go", p.after_go), ("finalize", p.finalize)):
            for ph in phases:
                rows.append([text(ph.tplus), text(ph.name), section,
                             _dur(ph.budget) if ph.budget is not None else "no budget"])
            if section == "phase" and p.end_tplus is not None:
                rows.append([text(p.end_tplus), "end of phases", "", ""])
        self.table(["planned start", "phase", "section", "budget"], rows)

    def phases(self, title: str, phases: list[PlannedPhase], *, lead: str = "") -> None:
        self.heading(2, title)
        if lead:
            self.para(lead)
        if not phases:
            self.para("None.")
        for ph in phases:
            budget = f"budget {_dur(ph.budget)}" if ph.budget is not None else "no budget"
            self.heading(3, f"{text(ph.tplus)} {text(ph.name)} ({budget})")
            described = next((x.description for x in (*self.rb.phases, *self.rb.live_phases)
                              if x.name == ph.name and x.description), None)
            if described:
                self.para(text(described))
            if ph.guard:
                self.guard(ph.guard)
            self.steps(ph.steps, in_phase=True, numbered=True)
            if ph.undo:
                self.para("Undo of the phase (after the steps' own undo):")
                for u in ph.undo:
                    self.line(f"- {code(u.summary)}")
                self.line()

    def guard(self, g: dict[str, Any]) -> None:
        settle = f", and {_dur(g['settle'])} after the last step" if g["settle"] else ""
        self.para(f"Guard: a probe every {_dur(g['interval'])} while the steps run{settle}.")
        for s in g["probes"]:
            self.line(f"- probe **{text(s.title)}**: {code(s.summary)}")
        self.rules(g["rules"])
        if g["notify"]:
            self.para("Every firing and resolution is told to: " + ", ".join(text(n) for n in g["notify"]))

    def rules(self, rules: list[dict[str, Any]]) -> None:
        for r in rules:
            on = f" (probe {text(r['probe'])})" if r["probe"] else ""
            told = f"; tells {', '.join(text(n) for n in r['notify'])}" if r["notify"] else ""
            self.line(f"- rule **{text(r['name'])}**{on}: {code(r['rule'])} → **{text(r['action'])}**; "
                      f"no data: {text(r['on_no_data'])}, error: {text(r['on_error'])}{told}")
        self.line()

    def verify(self) -> None:
        self.heading(2, "Verify")
        if not self.plan.verify:
            self.para("No verify checks.")
            return
        self.para("After the phases; a failure rolls back.")
        self.steps(self.plan.verify)

    def decision(self) -> None:
        p, d = self.plan, self.plan.decision
        self.heading(2, "Go / no-go")
        if d["mode"] == "auto":
            self.para("**auto**: go when every verify check passed; no operator is asked.")
        else:
            timeout = f" No answer in {_dur(d['timeout'])} = no-go." if d["timeout"] else ""
            second = (" It must be approved by a second person (not the operator who started the run)."
                      if d.get("second_person") else "")
            prompt = f" The question: {text(self.rb.decision.prompt)}" if self.rb.decision.prompt else ""
            self.para(f"**manual**: an operator answers go or no-go (`tminus approve --step decision RUN_ID`).{timeout}"
                      f"{second}{prompt}")
        manual = [s for s in _all_planned(p) if s.kind == "manual"]
        if manual:
            self.para("Who approves what: each manual step waits for an operator "
                      "(at the prompt, or `tminus approve --step KEY RUN_ID` from another terminal):")
            self.table(["step", "key", "asks"],
                       ([text(s.title), text(s.key), text(s.summary)] for s in manual))

    def monitor(self) -> None:
        m = self.plan.monitor
        if not m:
            return
        self.heading(2, "Monitor")
        baseline = f", baseline {_dur(m['baseline'])} before the first phase" if m["baseline"] else ""
        self.para(f"{_dur(m['duration'])} after the go, a probe every {_dur(m['interval'])}{baseline}.")
        for s in m["probes"]:
            self.line(f"- probe **{text(s.title)}**: {code(s.summary)}")
        self.rules(m["rules"])
        if m["notify"]:
            self.para("Every firing and resolution is told to: " + ", ".join(text(n) for n in m["notify"]))

    def point_of_no_return(self) -> None:
        r = self.plan.point_of_no_return
        self.heading(2, "Point of no return")
        if r is None:
            self.para("None: every step is a check or has undo.")
            return
        where = {"after_go": "after_go phase", "finalize": "finalize phase"}.get(r.get("section", ""), "phase")
        self.para(f"**{text(r['step'])}** ({where} {text(r['phase'])}, {text(r['tplus'])}): {text(r['meaning'])}")

    def rollback_path(self) -> None:
        """The order a full rollback would undo in (engine/rollback.py derives it from what ran):
        the phases newest first, in each its steps' undo newest first, then its own undo; then the
        rollback steps; then verify again."""
        p = self.plan
        self.heading(2, "Rollback path")
        self.para("If everything ran, a rollback undoes in this order (only what was touched is undone):")
        n = 0
        for ph in [*reversed(p.after_go + p.finalize), *reversed(p.phases)]:
            for s in reversed(ph.steps):
                if s.undo:
                    for u in s.undo:
                        n += 1
                        self.line(f"{n}. undo of **{text(s.title)}** ({text(ph.name)}): {code(u)}")
                elif s.effect == "reversible" and registry.get(s.kind).derive_undo is not None:
                    n += 1
                    self.line(f"{n}. undo of **{text(s.title)}** ({text(ph.name)}): its kind's own revert, "
                              "from what the run recorded")
            for phase_undo in ph.undo:
                n += 1
                self.line(f"{n}. undo of phase **{text(ph.name)}**: {code(phase_undo.summary)}")
        for s in p.rollback:
            n += 1
            self.line(f"{n}. rollback step **{text(s.title)}**: {code(s.summary)}")
        again = [s for s, spec in zip(p.verify, self.rb.verify, strict=True) if spec.after_rollback]
        for s in again:
            n += 1
            self.line(f"{n}. verify again **{text(s.title)}**: {code(s.summary)}")
        if n == 0:
            self.line("Nothing: no step has undo, and there are no rollback steps.")
        self.line()
        kept = [s for ph in (*p.phases, *p.after_go, *p.finalize) for s in ph.steps if not s.reversible]
        if kept:
            self.para("Not undone (no undo): " + ", ".join(f"**{text(s.title)}**" for s in kept) + ".")

    def kill_switch(self) -> None:
        ks = self.plan.kill_switch
        if not ks:
            return
        self.heading(2, "Kill switch")
        self.para(f"`tminus kill-switch`, at any time: no gates, target **{_dur(ks['target'])}**; "
                  "a failure stops it, nothing is undone.")
        self.steps(ks["steps"], numbered=True)

    def deadlines(self) -> None:
        if not self.plan.deadlines:
            return
        self.heading(2, "Deadlines")
        self.para("Each measured from its first start; a resume keeps the clock.")
        for d in self.plan.deadlines:
            told = f"; tells {', '.join(text(n) for n in d['notify'])}" if d["notify"] else ""
            self.line(f"- {text(d['what'])}: {_dur(d['after'])} → **{text(d['action'])}**{told}")
        self.line()

    def notifications(self) -> None:
        channels = self.rb.channels
        if not channels:
            return
        self.heading(2, "Notifications")
        used = _channel_uses(self.plan, self.rb)
        rows = [[text(name), text(f"{c.method} {_where(c.url)}"), text(", ".join(used.get(name, [])) or "not used")]
                for name, c in channels.items()]
        self.table(["channel", "webhook", "told of"], rows)

    def data_safety(self) -> None:
        if not self.plan.data_loss:
            return
        self.heading(2, "Data safety")
        for loss in self.plan.data_loss:
            self.line(f"- **{text(loss['title'])}**: {text(loss['message'])}")
        self.line()


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        import json

        return json.dumps(v, ensure_ascii=False, default=str)
    return str(v)


def _where(url: str) -> str:
    """A webhook's scheme and host only: its path often is the credential (a chat's hook token)."""
    if "{{" in url:
        return "(URL from a template)"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(URL)"
    return f"{parts.scheme}://{parts.hostname or ''}/..." if parts.scheme else "(URL)"


def _all_planned(p: Plan) -> list[PlannedStep]:
    out: list[PlannedStep] = []
    for g in [*(g for s in p.stages for g in s["gates"]), *p.gates]:
        out += g["checks"]
    for ph in (*p.phases, *p.after_go, *p.finalize):
        out += ph.steps
    out += p.verify + p.rollback
    return out


def _channel_uses(p: Plan, rb: Runbook) -> dict[str, list[str]]:
    """channel -> what it is told of (the monitor's, a guard's or a rule's firings, deadlines, notify steps)."""
    uses: dict[str, list[str]] = {}

    def add(name: str, what: str) -> None:
        if what not in uses.setdefault(name, []):
            uses[name].append(what)

    if p.monitor:
        for n in p.monitor["notify"]:
            add(n, "monitor")
        for r in p.monitor["rules"]:
            for n in r["notify"]:
                add(n, f"rule {r['name']}")
    for ph in (*p.phases, *p.after_go, *p.finalize):
        if ph.guard:
            for n in ph.guard["notify"]:
                add(n, f"guard of {ph.name}")
            for r in ph.guard["rules"]:
                for n in r["notify"]:
                    add(n, f"rule {r['name']}")
    for d in p.deadlines:
        for n in d["notify"]:
            add(n, f"deadline {d['id']}")
    for step in rb.all_steps():
        if step.notify is not None and step.notify.channel is not None:
            add(step.notify.channel, f"step {step.title}")
    return uses
