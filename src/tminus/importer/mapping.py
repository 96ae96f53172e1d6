"""The outline of a Markdown runbook -> a tminus runbook as plain data, each guess marked.

Every mapping the importer guesses is a `Guessed` dict carrying a note ("from line 123: ..."),
which writer.py turns into a YAML comment. Imported text is escaped for the templater (`escape`),
and a first gate that always fails keeps the skeleton from running before someone reviewed it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tminus.durations import parse_duration
from tminus.importer import commands
from tminus.importer.markdown import Code, Item, Outline, Para, Section, clean
from tminus.runbook.types import MAX_DURATION

MAX_STEPS = 600  # a hand-written runbook has tens to a few hundred; the YAML limit is 20,000 values
BUDGET = 360_000  # characters the YAML may take, estimated as it is built: the runbook file limit is 512 KiB
BRACKETS = 160  # '[' and '{' imported text may leave open in all: the loader refuses 256 open at once
_BRACKET = re.compile(r"[\[\]{}]")
ENTRY_COST = 120  # a mapping's keys, indentation and comment marks, beside its texts
MAX_FIELD = 8_000  # characters of one imported text
NAME_LEN = 100
DATABASE_VAR = "database_url"
DATABASE_PLACEHOLDER = "postgresql://CHANGE-ME@localhost/CHANGE-ME"
REVIEW_GATE = "review the imported runbook"
REVIEW_COMMAND = ("echo 'tminus import wrote this runbook as a skeleton: review every step marked guessed, "
                  "then delete this gate' >&2; exit 1")

SHELL = frozenset({"bash", "sh", "shell", "console", "zsh", "shell-session", "shellsession", "ksh"})
SQL = frozenset({"sql", "psql", "pgsql", "postgresql", "postgres", "plpgsql", "mysql", "sqlite"})
_MARKERS = re.compile(r"\{[{%#]")
_SHELL_MARKERS = re.compile(r"(\\*)(\{[{%#])")
_SKIP = re.compile(r"troubleshoot|table of contents|^contents$|\breferences?\b|contacts?\b|appendix|overview|"
                   r"^(?:\d+[.)]\s*)?(?:purpose|introduction|background|summary|artifacts|files)$|"
                   r"\bfaq\b|glossary|changelog|revision history", re.I)
_DECISION = re.compile(r"go\s*/\s*no[\s-]*go|go[\s-]no[\s-]go|\bno-go\b", re.I)
_REHEARSAL = re.compile(r"rehears", re.I)
_ROLLBACK = re.compile(r"roll\s*-?\s*back|revert\b", re.I)
_MONITOR = re.compile(r"monitor|alert", re.I)
_GATE = re.compile(r"check\s*-?list|readiness|\bpre-|\bprerequisites?\b|\bgates?\b", re.I)
_STAGE = re.compile(r"\bT\s?-\s?(\d{1,4})\s*(d|days?|h|hrs?|hours?|m|mins?|minutes?)\b", re.I)
_TPLUS = re.compile(r"\bT\s?\+\s?\d{1,3}:\d{2}\b")
_BUDGET = re.compile(r"\((\d{1,4})(?:\s*[-\u2013]\s*(\d{1,4}))?\s*(minutes?|mins?|m|hours?|hrs?|h)\)", re.I)
_DONE_MARKS = re.compile(r"[\s✅☑✔️❌✗✘]+$")


class Guessed(dict[str, Any]):
    """A mapping the importer guessed; `note` becomes its YAML comment."""

    def __init__(self, note: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.note = note


@dataclass
class Unmapped:
    line: int
    section: str
    why: str


@dataclass
class Result:
    runbook: dict[str, Any]
    unmapped: list[Unmapped]
    steps: Counter[str] = field(default_factory=Counter)
    guesses: int = 0
    truncated: bool = False
    source: str = ""  # the Markdown file's name as the YAML may show it


def escape(text: str, *, shell: bool = False) -> str:
    """Imported text shown literally by the templater: each `{{`, `{%`, `{#` becomes an expression
    printing it. In a shell command the escaper quotes it (`'{{'`, which the shell reads as `{{`),
    except right after backslashes, where no quoting is safe (templating/contexts.py refuses it):
    there the backslashes and the marker are pasted as they are (`| raw`, which validate warns of)."""
    if not shell:
        return _MARKERS.sub(lambda m: "{{ '" + m.group(0) + "' }}", text)

    def one(m: re.Match[str]) -> str:
        if not m.group(1):
            return "{{ '" + m.group(2) + "' }}"
        return "{{ '" + m.group(1).replace("\\", "\\\\") + m.group(2) + "' | raw }}"

    return _SHELL_MARKERS.sub(one, text)


def has_markers(text: str) -> bool:
    return bool(_MARKERS.search(text))


def _plain(text: str) -> str:
    """Item text as a name: emphasis marks and trailing done-marks (✅) out, one line."""
    text = text.replace("**", "").replace("__", "")
    text = " ".join(text.split())
    return _DONE_MARKS.sub("", text).strip().removesuffix(":").rstrip()


def _short(text: str, limit: int = NAME_LEN) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words)[:60].strip("-") or "imported-runbook"


def classify(title: str) -> str:
    """What a heading is, from its words alone (the parent may override: see `_kinds`)."""
    if _SKIP.search(title):
        return "skip"
    if _DECISION.search(title):
        return "decision"
    if _REHEARSAL.search(title):
        return "gate"
    if _ROLLBACK.search(title):
        return "rollback"
    if _MONITOR.search(title):
        return "monitor"
    if _GATE.search(title) or _STAGE.search(title):
        return "gate"
    return "phase"


def stage_of(title: str) -> str | None:
    match = _STAGE.search(title)
    if not match:
        return None
    stage = f"{int(match.group(1))}{match.group(2)[0].lower()}"
    return f"T-{stage}" if 0 < parse_duration(stage) <= MAX_DURATION else None


def budget_of(title: str) -> tuple[str, str] | None:
    """`(5 minutes)` -> 5m; a range `(60-90 minutes)` -> its upper end. With the text it read."""
    match = _BUDGET.search(title)
    if not match:
        return None
    budget = f"{int(match.group(2) or match.group(1))}{match.group(3)[0].lower()}"
    if not 0 < parse_duration(budget) <= MAX_DURATION:
        return None
    return budget, match.group(0)


class _Builder:
    def __init__(self, outline: Outline) -> None:
        self.outline = outline
        self.result = Result(runbook={}, unmapped=[])
        self.text_left = BUDGET
        self.brackets_left = BRACKETS
        self.sql_used = False

    # --- text ---------------------------------------------------------------------------------

    def fit(self, value: str) -> str:
        """Imported text whose unclosed brackets stay within what is left of BRACKETS: the loader
        counts them in the raw YAML, quotes and comments included (runbook/yamlguard.py)."""
        depth, kept = 0, len(value)
        for m in _BRACKET.finditer(value):
            depth = depth + 1 if m.group() in "[{" else max(depth - 1, 0)
            if depth > self.brackets_left:
                kept = m.start()
                break
        if kept < len(value):
            value = value[:kept] + " (… cut by tminus import: too many unclosed brackets)"
            self.result.truncated = True
            depth = _open_at_end(value)
        self.brackets_left -= depth
        return value

    def text(self, value: str, *, shell: bool = False) -> str:
        """Imported text for a rendered field (`shell`: a run command): bounded, escaped."""
        if len(value) > MAX_FIELD:
            value = value[:MAX_FIELD] + "\n(… cut by tminus import)"
            self.result.truncated = True
        value = self.fit(value)
        self.text_left -= len(value)
        return escape(value, shell=shell)

    def miss(self, line: int, section: str, why: str) -> None:
        self.result.unmapped.append(Unmapped(line, self.fit(section), why))

    def room(self) -> bool:
        if sum(self.result.steps.values()) >= MAX_STEPS or self.text_left <= 0:
            self.result.truncated = True
            return False
        return True

    def guess(self, line: int, what: str, data: dict[str, Any], *, named: bool = False) -> Guessed:
        """`named`: its name was fitted already (gates and phases: fitted, then made unique)."""
        self.result.guesses += 1
        self.text_left -= ENTRY_COST + len(what) + len(str(data.get("name", "")))
        if "name" in data and not named:
            data["name"] = self.fit(data["name"])
        what = self.fit(what)
        return Guessed(f"guessed from line {line}: {what}", data)

    # --- steps --------------------------------------------------------------------------------

    def manual(self, line: int, text: str, detail: str, why: str) -> Guessed:
        spec: dict[str, Any] = {"prompt": self.text(_plain(text) or "(empty item)")}
        if detail.strip():
            spec["instructions"] = self.text(detail.strip())
        self.result.steps["manual"] += 1
        return self.guess(line, why, {"name": _short(_plain(text)) or "imported item", "manual": spec})

    def code_steps(self, code: Code, name: str) -> list[Guessed]:
        if code.info in SHELL:
            return self.shell_steps(code, name)
        if code.info in SQL and code.text.strip() and not has_markers(code.text):
            sql = commands.as_sql(commands.Command(0, "psql", heredoc=code.text))
            if sql is not None:
                return [self.sql_step(code.line + 1, name, sql, f"a ```{code.info} block -> a sql step")]
        why = f"a ```{code.info} block" if code.info else "a fenced block without a language"
        return [self.manual(code.line, name, code.text, f"{why}: not a shell command, kept as text")]

    def shell_steps(self, code: Code, name: str) -> list[Guessed]:
        cmds = commands.split(code.text)
        if not cmds:  # comments only: words for the operator, nothing to run
            return [self.manual(code.line, name, code.text, "a shell block of comments only -> a manual step")]
        converted: list[Guessed] = []
        wanted = [c for c in cmds if not commands.is_assignment(c)]
        for n, cmd in enumerate(wanted, start=1):
            line = code.line + 1 + cmd.line
            label = name if len(wanted) == 1 else f"{name} ({n})"
            http = commands.as_http(cmd)
            if has_markers(cmd.heredoc or cmd.text) or has_markers(cmd.text):
                break  # template syntax stays in a run step (escaped), never in a url or a query
            sql = commands.as_sql(cmd) if http is None else None
            if http is not None:
                converted.append(self.http_step(line, label, http))
            elif sql is not None:
                converted.append(self.sql_step(line, label, sql, "psql with a query -> a sql step"))
            else:
                break
        else:
            if converted:
                return converted
        # not every command is a plain request or query: the block runs as written, comments kept
        for step in converted:  # undo the counts of a partial conversion
            kind = next(k for k in ("http", "sql") if k in step)
            self.result.steps[kind] -= 1
            self.result.guesses -= 1
        self.result.steps["run"] += 1
        command = self.text(code.text, shell=True)
        return [self.guess(code.line, f"a ```{code.info} block -> a run step (as written)",
                           {"name": _short(_plain(name)) or "imported command", "run": command})]

    def http_step(self, line: int, name: str, http: commands.Http) -> Guessed:
        spec: dict[str, Any] = {"url": self.text(http.url)}
        if http.method != "GET":
            spec["method"] = http.method
        if http.headers:
            spec["headers"] = {self.text(k): self.text(v) for k, v in http.headers.items()}
        if http.body is not None:
            spec["body"] = self.text(http.body)
        if http.follow:
            spec["follow_redirects"] = True
        if http.insecure:
            spec["verify_tls"] = False
        step: dict[str, Any] = {"name": _short(_plain(name)) or "imported request", "http": spec}
        why = "curl -> an http check"
        if http.status is not None:
            step["expect"] = [f"status == {http.status}"]
            why += f" expecting {http.status} (the text says so)"
        elif http.fail:
            step["expect"] = ["status < 400"]
            why += " (curl -f: a status of 400 or more fails)"
        else:
            why += " (no expected status in the text: the http default, status < 400)"
        if http.dropped:
            why += f"; the pipe '| {http.dropped}' left out"
        self.result.steps["http"] += 1
        return self.guess(line, why, step)

    def sql_step(self, line: int, name: str, sql: commands.Sql, why: str) -> Guessed:
        self.sql_used = True
        spec: dict[str, Any] = {"url": "{{ vars." + DATABASE_VAR + " }}", "query": self.text(sql.query)}
        if sql.write:
            spec["write"] = True
            why += " that writes"
        self.result.steps["sql"] += 1
        return self.guess(line, why + f"; the database is vars.{DATABASE_VAR}",
                          {"name": _short(_plain(name)) or "imported query", "sql": spec})

    @staticmethod
    def taken(section: Section, item: Item) -> bool:
        """Checklist and numbered items and items with code are steps; plain bullets only in a
        section that has none of those (then they are all it says)."""
        if item.ordered or item.task or item.code:
            return True
        return not any(isinstance(b, Code) or (isinstance(b, Item) and (b.ordered or b.task))
                       for b in section.blocks)

    def section_steps(self, section: Section) -> list[Guessed]:
        """A section's steps in the order written: checklist and numbered items, code blocks; its
        plain bullets only when it has neither (then they are all it says)."""
        blocks = section.blocks

        steps: list[Guessed] = []
        label = section.title
        for block in blocks:
            if not self.room():
                break
            if isinstance(block, Para):
                label = _plain(block.text).rstrip(":") if len(block.text) < 80 else section.title
            elif isinstance(block, Code):
                steps += self.code_steps(block, label or section.title or "imported block")
            elif isinstance(block, Item) and self.taken(section, block):
                if block.code:
                    for code in block.code:
                        steps += self.code_steps(code, block.text)
                else:
                    kind = "a checklist item" if block.task else ("a numbered item" if block.ordered else "a bullet")
                    steps.append(self.manual(block.line, block.text, block.detail, f"{kind} -> a manual step"))
        return steps


def _kinds(sections: list[Section]) -> tuple[list[str], list[int | None]]:
    """Each section's kind and parent index: a gate's, rollback's, skipped or decision section's
    sub-sections are of its kind; otherwise a heading says what it is."""
    kinds: list[str] = []
    parents: list[int | None] = []
    stack: list[int] = []
    for i, section in enumerate(sections):
        while stack and sections[stack[-1]].level >= section.level:
            stack.pop()
        parent = stack[-1] if stack and section.level > 0 else None
        own = classify(section.title) if section.level else "phase"
        # a level-1 heading is the document's title: "... Rollback Runbook" says nothing of its parts
        inherited = kinds[parent] if parent is not None and sections[parent].level >= 2 else "phase"
        kinds.append(inherited if inherited in ("gate", "rollback", "skip", "decision", "monitor")
                     and own not in ("skip",) else own)
        parents.append(parent)
        if section.level:
            stack.append(i)
    return kinds, parents


def build(outline: Outline, *, name: str | None, source: str) -> Result:
    b = _Builder(outline)
    sections = outline.sections
    kinds, parents = _kinds(sections)
    titled = [s for s in sections if s.level == 1]
    runbook_name = b.fit(clean(name)) if name else (slug(titled[0].title) if titled else slug(source.rsplit(".", 1)[0]))
    source = b.result.source = b.fit(clean(source))
    gates: list[dict[str, Any]] = [{
        "name": REVIEW_GATE,
        "description": "Added by tminus import. It always fails, so the skeleton cannot change anything "
                       "until someone has reviewed every guessed step and deleted this gate.",
        "checks": [{"name": "an imported skeleton never runs unreviewed", "run": REVIEW_COMMAND}],
    }]
    phases: list[dict[str, Any]] = []
    after_go: list[dict[str, Any]] = []
    rollback: list[dict[str, Any]] = []
    decision: list[str] = []
    decision_line = 0
    decided = False  # phases written after the go/no-go run after it: after_go
    owners: dict[int, dict[str, Any]] = {}  # section index -> the phase its steps go to
    used: set[str] = set()  # gate and phase names: each its own

    def unique(title: str) -> str:
        base = b.fit(_short(_plain(title))) or "imported"
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base} ({n})"
        used.add(name)
        return name

    def parent_title(i: int) -> str:
        p = parents[i]
        return _plain(sections[p].title) if p is not None and sections[p].level >= 2 else ""

    for i, section in enumerate(sections):
        kind = kinds[i]
        title = section.title or "(before the first heading)"
        if not b.room():
            b.miss(section.line, title, f"the import stopped here: more than {MAX_STEPS} steps or too much text "
                                        "for one runbook")
            break
        if kind == "skip":
            if section.blocks:
                b.miss(section.line, title, "not part of the procedure (skipped by its heading)")
            continue
        if kind == "decision":
            decided = True
            decision_line = decision_line or section.line
            said = [_plain(x.text) for x in section.blocks if isinstance(x, Item | Para)]
            decision.append(_plain(title) + (": " + "; ".join(said) if said else ""))
            continue
        steps = b.section_steps(section)
        notes = [x for x in section.blocks if isinstance(x, Item) and not b.taken(section, x)]
        if notes and steps:
            b.miss(notes[0].line, title, f"{len(notes)} plain bullet(s) beside its steps were read as notes")
        if not steps:
            if section.blocks:
                b.miss(section.line, title, "its own text is prose or a table, not steps: read it again")
            continue
        if kind == "gate":
            up = parents[i]
            full = f"{parent_title(i)}: {_plain(title)}" if up is not None and kinds[up] == "gate" \
                and parent_title(i) else title
            gate = b.guess(section.line, "a checklist/readiness heading -> a gate of manual checks",
                           {"name": unique(full)}, named=True)
            stage = stage_of(title) or next((stage_of(sections[p].title) for p in _ancestors(i, parents)
                                             if stage_of(sections[p].title)), None)
            if stage:
                gate["stage"] = stage
                gate.note += f"; stage {stage} from its heading"
            gate["checks"] = steps
            gates.append(gate)
        elif kind == "rollback":
            rollback += steps
        elif kind == "monitor":
            after_go.append(b.guess(section.line, "a monitoring/alert heading -> checks right after the go "
                                                  "(alert rules are not guessed: write them under monitor:)",
                                    {"name": unique(title), "steps": steps}, named=True))
        else:
            owner = _phase_owner(i, sections, kinds, parents)
            if owner in owners:
                owners[owner]["steps"] += steps
                continue
            phase = b.guess(sections[owner].line, "a heading -> a phase",
                            {"name": unique(sections[owner].title or title)}, named=True)
            budget = budget_of(sections[owner].title)
            if budget:
                phase["budget"] = budget[0]
                phase.note += f"; budget {budget[0]} from '{budget[1]}'"
            phase["steps"] = steps
            owners[owner] = phase
            if decided:
                phase.note += ", after the go (it follows the go/no-go heading)"
                after_go.append(phase)
            else:
                phases.append(phase)

    runbook: dict[str, Any] = {
        "version": 1,
        "name": runbook_name,
        "description": f"Imported from {_short(source, 200)} by tminus import: a skeleton to review, not a "
                       "runbook to run.",
    }
    if b.sql_used:
        runbook["vars"] = Guessed("a placeholder: the sql steps' database (the Markdown gives none tminus can use)",
                                  {DATABASE_VAR: DATABASE_PLACEHOLDER})
    runbook["gates"] = gates
    if phases:
        runbook["phases"] = phases
    if decision:
        runbook["decision"] = b.guess(decision_line, "a go/no-go heading -> a manual decision",
                                      {"mode": "manual", "prompt": b.text(" | ".join(decision))})
    if rollback:
        runbook["rollback"] = rollback
    if after_go:
        runbook["after_go"] = after_go
    b.result.runbook = runbook
    b.result.steps["run"] += 1  # the review gate's check
    return b.result


def _open_at_end(text: str) -> int:
    depth = 0
    for m in _BRACKET.finditer(text):
        depth = depth + 1 if m.group() in "[{" else max(depth - 1, 0)
    return depth


def _ancestors(i: int, parents: list[int | None]) -> list[int]:
    out = []
    p = parents[i]
    while p is not None:
        out.append(p)
        p = parents[p]
    return out


def _phase_owner(i: int, sections: list[Section], kinds: list[str], parents: list[int | None]) -> int:
    """The section whose phase a phase-section's steps join: its parent phase heading (level 2 or
    deeper), unless either has a T+ time or a budget of its own (then each is a phase)."""
    owner = i
    while True:
        p = parents[owner]
        if p is None or kinds[p] != "phase" or sections[p].level < 2:
            return owner
        if any(_TPLUS.search(sections[x].title) or budget_of(sections[x].title) for x in (owner, p)):
            return owner
        owner = p


__all__ = [
    "BUDGET",
    "DATABASE_PLACEHOLDER",
    "DATABASE_VAR",
    "MAX_STEPS",
    "REVIEW_GATE",
    "Guessed",
    "Result",
    "Unmapped",
    "build",
    "classify",
    "escape",
]
