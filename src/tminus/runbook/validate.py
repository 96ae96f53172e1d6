"""Checks that need the whole runbook: unique names and ids, template references, expectations.

Runs after the model validated, so every step has a kind; positions come from the source map.
"""

from __future__ import annotations

import functools
import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from tminus.errors import ExpectationSyntaxError, Location, Problem
from tminus.runbook.document import PathKey, SourceMap, path_to_str
from tminus.runbook.models import Runbook, Step, nested_checks
from tminus.runbook.references import CONTEXT_NAMES, config_strings
from tminus.runbook.validate_cutover import kill_switch_problems
from tminus.runbook.validate_deadlines import deadline_problems
from tminus.runbook.validate_kinds import kind_problems
from tminus.runbook.validate_monitor import monitor_problems
from tminus.runbook.validate_phases import phase_problems
from tminus.templating import contexts
from tminus.templating.templater import has_template, when_expression

if TYPE_CHECKING:  # Jinja2 comes with it, at the first template to check: a runbook without one never loads it
    from tminus.runbook.template_readings import Reading

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CHECK_KINDS = "file, tcp, env, wait, prometheus, redis, http with GET/HEAD/OPTIONS, or sql without write: true"


def semantic_problems(runbook: Runbook, source: SourceMap) -> list[Problem]:
    return _Validator(runbook, source).run()


def semantic_warnings(runbook: Runbook, source: SourceMap) -> list[Problem]:
    """What a valid runbook may do but `tminus validate` shows: `| raw` in a command or a query,
    quoting left open around an interpolation."""
    validator = _Validator(runbook, source)
    validator.run()
    return validator.warnings


def closest(word: str, choices: list[str]) -> str | None:
    """A hint naming the closest known word, if any is close."""
    import difflib  # only when a hint is built

    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None


def expect_placeholders(text: str) -> tuple[str, list[int]]:
    """Replace each `{{ ... }}` so an expectation can be parsed before its values are known.

    Inside double quotes the template becomes same-length text; elsewhere it stands for a value
    and becomes `0`. Returns the new text and, for each of its offsets (and its end), the offset
    in `text` it came from, so syntax errors point at the character the user wrote.
    """
    out: list[str] = []
    origin: list[int] = []
    i, quoted = 0, False
    while i < len(text):
        if text.startswith("{{", i):
            end = text.find("}}", i + 2)
            end = len(text) if end < 0 else end + 2
            if quoted:
                out.append("x" * (end - i))
                origin.extend(range(i, end))
            else:
                out.append("0")
                origin.append(i)
            i = end
            continue
        ch = text[i]
        if quoted and ch == "\\" and i + 1 < len(text):
            out.append(text[i : i + 2])
            origin.extend((i, i + 1))
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        out.append(ch)
        origin.append(i)
        i += 1
    origin.append(len(text))
    return "".join(out), origin


class _Validator:
    def __init__(self, runbook: Runbook, source: SourceMap) -> None:
        self.rb = runbook
        self.source = source
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.all_vars = set(runbook.vars).union(*(e.vars for e in runbook.environments.values()))
        self.first_id: dict[str, Step] = {}

    @cached_property
    def known_names(self) -> set[str]:
        from tminus.runbook.template_readings import environment

        return set(CONTEXT_NAMES) | set(environment().globals)

    def run(self) -> list[Problem]:
        self._unique_names()
        self._step_ids()
        self._checks_only()
        self._undo_never_undone()
        self._env_names()
        self._references()
        self._before_the_day()
        monitor_problems(self.rb, self.add, closest=closest, warn=self.warn)
        phase_problems(self.rb, self.add, self.where)
        deadline_problems(self.rb, self.add, closest=closest)
        kind_problems(self.rb, Path(self.source.file).resolve().parent, self.add, self.warn)
        kill_switch_problems(self.rb, self.add)
        return self.problems

    def add(self, message: str, path: PathKey, hint: str | None = None, column_offset: int | None = None) -> None:
        path = self.yaml_path(path)
        location = self.source.locate(path)
        if column_offset is not None and location.column is not None and path in self.source.positions:
            quote = 1 if path in self.source.quoted else 0
            location = Location(location.file, location.line, location.column + quote + column_offset)
        self.problems.append(Problem(message, location, hint, path_to_str(path)))

    def warn(self, message: str, path: PathKey, hint: str | None = None) -> None:
        path = self.yaml_path(path)
        self.warnings.append(Problem(message, self.source.locate(path), hint, path_to_str(path)))

    def yaml_path(self, path: PathKey) -> PathKey:
        """The part of a model path written in the file (`run: "cmd"` has no `command` key)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.source.positions:
                return path[:end]
        return tuple(path)

    def where(self, path: PathKey) -> str:
        loc = self.source.locate(path)
        return f"line {loc.line}, column {loc.column}"

    # --- uniqueness ----------------------------------------------------------------------

    def _unique_names(self) -> None:
        sections = (("gate", [g.name for g in self.rb.gates]), ("phase", [p.name for p in self.rb.phases]))
        for section, names in sections:
            seen: dict[str, int] = {}
            for i, name in enumerate(names):
                if name in seen:
                    first = self.where((f"{section}s", seen[name], "name"))
                    self.add(
                        f"duplicate {section} name '{name}' (first used at {first})",
                        (f"{section}s", i, "name"),
                        f"give each {section} its own name; the ledger and reports refer to {section}s by name",
                    )
                else:
                    seen[name] = i

    def _step_ids(self) -> None:
        for step in self.rb.all_steps():
            if step.id is None:
                continue
            first = self.first_id.setdefault(step.id, step)
            if first is not step:
                self.add(
                    f"duplicate step id '{step.id}' (first used at {self.where((*first.path, 'id'))})",
                    (*step.path, "id"),
                    "step ids must be unique: later steps read outputs as steps.<id>.<output>",
                )

    # --- checks ----------------------------------------------------------------------------

    def _checks_only(self) -> None:
        checks = [(s, "gate check") for g in self.rb.gates for s in g.checks]
        checks += [(s, "verify check") for s in self.rb.verify]
        checks += [(n, f"{s.kind} check") for s in self.rb.all_steps() for n, _ in nested_checks(s)]
        for step, what in checks:
            if step.undo:
                self.add(
                    f"a {what} cannot have undo: a check changes nothing, so there is nothing to undo",
                    (*step.path, "undo"),
                    "remove 'undo:', or move the step into a phase if it changes something",
                )
        for step in self.rb.all_steps():
            for nested, _ in nested_checks(step):
                if not nested.is_check or nested.kind == "manual":
                    self.add(
                        f"a {step.kind} check must be a check, not a '{nested.kind}' step: "
                        f"{step.kind} repeats it until it passes",
                        nested.path,
                        f"use a step without side effects: {_CHECK_KINDS}",
                    )

    def _undo_never_undone(self) -> None:
        """`undo:` on a step that runs while undoing (a phase's or a step's undo, the rollback
        section) is never run: nothing undoes the undo."""
        undoing: list[tuple[Step, str]] = []
        for phase in (*self.rb.phases, *self.rb.live_phases):
            undoing += [(s, "a phase's undo step") for s in phase.undo]
            undoing += [(u, "a step's undo step") for s in phase.steps for u in s.undo or []]
        undoing += [(s, "a rollback step") for s in self.rb.rollback.steps]
        while undoing:
            step, what = undoing.pop(0)
            if not step.undo:
                continue
            self.add(
                f"{what} cannot have undo: it runs during a rollback, and nothing undoes it",
                (*step.path, "undo"),
                "undo steps are not undone themselves: remove 'undo:' here, or make it a phase step",
            )
            undoing += [(u, "a step's undo step") for u in step.undo]

    def _env_names(self) -> None:
        names: list[tuple[str, PathKey]] = [(n, ("secrets", i)) for i, n in enumerate(self.rb.secrets)]
        for env_name, env in self.rb.environments.items():
            base = ("environments", env_name, "env")
            names += [(n, (*base, "required", i)) for i, n in enumerate(env.env.required)]
            names += [(n, (*base, "forbidden", n)) for n in env.env.forbidden]
        for name, path in names:
            if not ENV_NAME.match(name):
                self.add(
                    f"'{name}' is not an environment variable name",
                    path,
                    "use letters, digits and underscores, not starting with a digit, e.g. DATABASE_URL",
                )

    def _before_the_day(self) -> None:
        """`at:` and each requirement's environment render from vars only (no step has run yet);
        `require_stages: true` needs a stage to require."""
        if self.rb.at is not None:
            self._template(self.rb.at, ("at",), frozenset())
        for i, req in enumerate(self.rb.requires):
            self._template(req.environment, ("requires", i, "environment"), frozenset())
        for name, env in self.rb.environments.items():
            for i, req in enumerate(env.requires):
                self._template(req.environment, ("environments", name, "requires", i, "environment"), frozenset())
        if self.rb.require_stages and not any(g.stage for g in self.rb.gates):
            self.add("require_stages: true, but no gate has a stage", ("require_stages",),
                     "give the gates to run before the day a `stage: T-48h`, or remove require_stages")
        self._require_rehearsal()

    def _require_rehearsal(self) -> None:
        """decision.require_rehearsal names environments: declared ones (when any is), and the one it is
        rehearsed in is not one that requires it (it could never be rehearsed)."""
        req = self.rb.decision.require_rehearsal
        if req is None:
            return
        base = ("decision", "require_rehearsal")
        declared = list(self.rb.environments)
        named = [(req.environment, (*base, "environment")),
                 *((name, (*base, "enforced_in", i)) for i, name in enumerate(req.enforced_in))]
        for name, path in named if declared else []:
            if name not in declared:
                hint = closest(name, declared) or f"the environments are {', '.join(declared)}"
                self.add(f"environment '{name}' is not declared under environments:", path, hint)
        if req.environment in req.enforced_in:
            self.add(f"enforced_in names '{req.environment}', where the rehearsals run: a run there could never "
                     "be rehearsed first", (*base, "enforced_in", req.enforced_in.index(req.environment)),
                     f"remove '{req.environment}' from enforced_in (it is never required where it is rehearsed)")

    # --- templates and expectations ----------------------------------------------------------

    def _references(self) -> None:
        """Check every template against the step ids defined before it in execution order."""
        main: set[str] = set()
        for gate in self.rb.gates:
            self._walk(gate.checks, main)
        for phase in self.rb.phases:
            if phase.guard is not None:  # a guard's probes start before the phase's first step
                self._walk(phase.guard.probes, set(main))
            self._walk(phase.steps, main)
            self._walk(phase.undo, set(main))  # undo ids are only seen by later undo steps
        self._walk(self.rb.verify, main)
        live = set(main)  # after the go: their ids are not seen by the rollback steps (they may not have run)
        for phase in self.rb.live_phases:
            self._walk(phase.steps, live)
            self._walk(phase.undo, set(live))
        self._walk(self.rb.rollback.steps, main)
        if self.rb.monitor is not None:  # probes run last: they see every step's outputs
            self._walk(self.rb.monitor.probes, set(main))
        if self.rb.kill_switch is not None:  # run on its own, at any time: it sees only its own steps
            self._walk(self.rb.kill_switch.steps, set())
        if self.rb.release is not None:
            self._template(self.rb.release, ("release",), frozenset())

    def _walk(self, steps: list[Step], visible: set[str]) -> None:
        for step in steps:
            self._step_templates(step, frozenset(visible))
            inner = nested_checks(step)
            while inner:  # a wait's check (a service's health check) sees what its step sees
                nested, _ = inner.pop(0)
                self._step_templates(nested, frozenset(visible))
                inner += nested_checks(nested)
            if step.id:
                visible.add(step.id)
            if step.undo:
                self._walk(step.undo, set(visible))  # a step's undo may use the step's own outputs

    def _step_templates(self, step: Step, visible: frozenset[str]) -> None:
        if step.when is not None:
            self._expression(step.when, (*step.path, "when"), visible)
        for i, text in enumerate(step.expect or []):
            path = (*step.path, "expect", i)
            if self._template(text, path, visible):
                self._expectation(text, path)
        for text, path in config_strings(step.config, (*step.path, step.kind)):
            self._template(text, path, visible)
        self._contexts(step)

    def _contexts(self, step: Step) -> None:
        """A command's or a query's interpolations, escaped for where they stand: a SQL literal
        around one is an error; `| raw` and unbalanced quoting are warnings."""
        config = step.config
        for name, info in type(config).model_fields.items():
            marker = next((m for m in info.metadata if isinstance(m, contexts.TemplateContext)), None)
            text = getattr(config, name)
            if marker is None or not isinstance(text, str) or not has_template(text):
                continue
            path = self.yaml_path((*step.path, step.kind, info.alias or name))
            from tminus.runbook.template_readings import SyntaxFault, rewriting

            rewritten = rewriting(text, marker.language)
            if isinstance(rewritten, SyntaxFault):
                continue  # reported with the template's other problems
            if isinstance(rewritten, contexts.ContextRefused):
                exc = rewritten
                self.add(f"{exc}: {{{{ {exc.slot.expr} }}}} at line {exc.slot.line}, column {exc.slot.column} "
                         f"of the {name}", path, exc.hint)  # at the key: the text's own line and column say where
                continue
            for message, hint in contexts.warnings(rewritten, marker.language):
                location = self.source.locate(path)
                self.warnings.append(Problem(message, location, hint, path_to_str(path)))

    def _template(self, text: str, path: PathKey, visible: frozenset[str]) -> bool:
        """Check one template string; False when it cannot even be parsed."""
        if not has_template(text):
            return True
        from tminus.runbook.template_readings import SyntaxFault, template_reading

        reading = template_reading(text)
        if isinstance(reading, SyntaxFault):
            self.add(f"template syntax error: {reading.message} (line {reading.lineno} of the text)", path,
                     "templates look like {{ vars.name }}; check the braces and quotes")
            return False
        self._names(reading, path, visible)
        return True

    def _expression(self, text: str, path: PathKey, visible: frozenset[str]) -> None:
        from tminus.runbook.template_readings import SyntaxFault, expression_reading

        reading = expression_reading(text)
        if isinstance(reading, SyntaxFault):
            hint = "'when' is a Jinja2 expression, e.g. vars.env == 'prod' or steps.check.exit_code == 0"
            if "{{" in when_expression(text):
                hint += "; write names without {{ }} inside it"
            self.add(f"expression syntax error in when: {reading.message}", path, hint)
            return
        self._names(reading, path, visible)

    def _names(self, reading: Reading, path: PathKey, visible: frozenset[str]) -> None:
        for message, hint in reading.static:
            self.add(message, path, hint)
        if reading.undeclared is None:  # an unknown filter or test, reported just above
            return
        for name in sorted(reading.undeclared - self.known_names):
            self.add(f"undefined template name '{name}'", path,
                     closest(name, list(CONTEXT_NAMES)) or f"known names: {', '.join(CONTEXT_NAMES)}")
        seen: set[tuple[str, str]] = set()
        for root, key in reading.attributes:
            if (root, key) in seen:
                continue
            seen.add((root, key))
            if root == "vars" and key not in self.all_vars:
                hint = closest(key, sorted(self.all_vars)) or f"define '{key}' under vars: (or an environment's vars:)"
                self.add(f"undefined variable vars.{key}", path, hint)
            elif root == "secrets" and key not in self.rb.secrets:
                self.add(f"secrets.{key} is not declared", path,
                         closest(key, self.rb.secrets) or f"add {key} to the runbook's secrets: list")
            elif root == "steps" and key not in visible:
                self._unknown_step(key, path, visible)

    def _unknown_step(self, key: str, path: PathKey, visible: frozenset[str]) -> None:
        step = self.first_id.get(key)
        if step is not None:
            self.add(
                f"steps.{key} refers to a step that does not run before this one "
                f"(id '{key}' at {self.where((*step.path, 'id'))})",
                path,
                "a step can only use outputs of steps that ran before it "
                "(order: gates, phases, verify, after_go, finalize; rollback steps see neither after_go nor "
                "finalize; a step's undo may use the step itself)",
            )
            return
        known = sorted(visible)
        hint = closest(key, known) or (
            f"ids of earlier steps: {', '.join(known)}" if known else "give the step an id: to refer to it"
        )
        self.add(f"steps.{key}: no step has the id '{key}'", path, hint)

    def _expectation(self, text: str, path: PathKey) -> None:
        refused = _expectation_refused(text)
        if refused is not None:
            message, offset = refused
            self.add(f"invalid expectation '{text}': {message}", path,
                     "expectations read like: status == 200, stdout contains \"done\", jsonpath \"$.ok\" == true",
                     column_offset=offset)


@functools.lru_cache(maxsize=4096)
def _expectation_refused(text: str) -> tuple[str, int] | None:
    """(the first line of the message, the column offset in the text) when the grammar refuses it."""
    from tminus.expect import parse  # the spec package may use the grammar, not the engine

    placeheld, origin = expect_placeholders(text)
    try:
        parse(placeheld)
    except ExpectationSyntaxError as exc:
        return str(exc).splitlines()[0], origin[min(max(exc.column, 0), len(origin) - 1)]
    return None


