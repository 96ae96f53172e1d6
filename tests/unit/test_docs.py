"""The docs cannot silently fall behind the code.

Every key of the runbook format, every step kind, every word of the expectation grammar, every
command and option, every exit code and every ledger event type must be documented; every whole
runbook shown in the docs must validate; the quickstart walk-through quotes the real runbook.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import click
import pytest
from pydantic import BaseModel

from tminus import events
from tminus.cli.app import cli
from tminus.engine.exitcodes import Exit
from tminus.expect import FILTERS, PREDICATES, QUERIES
from tminus.runbook.loader import load_runbook
from tminus.runbook.models import KIND_FIELDS, Runbook, Step

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RUNBOOK_MD = DOCS / "runbook.md"
CLI_MD = DOCS / "cli.md"
CONCEPTS_MD = DOCS / "concepts.md"
QUICKSTART_MD = DOCS / "examples" / "quickstart.md"
QUICKSTART_YAML = ROOT / "examples" / "quickstart" / "runbook.yaml"

_FENCE = re.compile(r"^```(?P<lang>[^\n]*)\n(?P<body>.*?)^```", re.S | re.M)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _blocks(path: Path, lang: str) -> list[tuple[int, str]]:
    """(line of the first body line, body) of every ```LANG fenced block, but those marked
    `<!-- docs-test: invalid ... -->` (they show a refusal; tests/e2e/test_docs_run.py checks it)."""
    text = _read(path)
    return [
        (text.count("\n", 0, m.start("body")) + 1, m.group("body"))
        for m in _FENCE.finditer(text)
        if m.group("lang").strip() == lang
        and "docs-test: invalid" not in text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
    ]


def _without_fences(text: str) -> str:
    return _FENCE.sub("", text)


# --- the runbook format --------------------------------------------------------------------------


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation refers to (through Optional, list, dict, Annotated)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models_in(get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, dict, tuple, set):
        return [m for arg in get_args(annotation) for m in _models_in(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _all_models() -> list[type[BaseModel]]:
    """Runbook and every model reachable from it: gates, phases, steps, each kind's spec, ..."""
    seen: list[type[BaseModel]] = []
    todo: list[type[BaseModel]] = [Runbook]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.append(model)
        for info in model.model_fields.values():
            todo.extend(_models_in(info.annotation))
    return seen


def _fields() -> list[tuple[str, str]]:
    return sorted(
        {(model.__name__, info.alias or name) for model in _all_models() for name, info in model.model_fields.items()}
    )


def test_the_model_walk_reaches_every_kind() -> None:
    names = {m.__name__ for m in _all_models()}
    kind_models = {_models_in(Step.model_fields[k].annotation)[0].__name__ for k in KIND_FIELDS}
    assert kind_models <= names
    assert {"Runbook", "Environment", "EnvManifest", "Gate", "Phase", "Step", "Retry", "Decision"} <= names


@pytest.mark.parametrize(("model", "key"), _fields())
def test_every_key_is_documented(model: str, key: str) -> None:
    assert f"`{key}`" in _read(RUNBOOK_MD), f"{model}.{key}: document `{key}` in docs/runbook.md"


@pytest.mark.parametrize("kind", KIND_FIELDS)
def test_every_kind_has_a_section(kind: str) -> None:
    heading = re.compile(rf"^#{{2,4}} `{re.escape(kind)}`", re.M)
    assert heading.search(_read(RUNBOOK_MD)), f"docs/runbook.md needs a heading starting with `{kind}`"


@pytest.mark.parametrize("kind", KIND_FIELDS)
def test_every_kind_section_has_an_example_that_uses_it(kind: str) -> None:
    text = _read(RUNBOOK_MD)
    start = re.search(rf"^#{{2,4}} `{re.escape(kind)}`", text, re.M)
    assert start is not None
    end = re.compile(r"^#{2,4} ", re.M).search(text, start.end())
    section = text[start.end() : end.start() if end else len(text)]
    examples = [m.group("body") for m in _FENCE.finditer(section) if m.group("lang").strip() == "yaml"]
    assert any(re.search(rf"^\s*(- )?{re.escape(kind)}:", body, re.M) for body in examples), (
        f"the `{kind}` section of docs/runbook.md needs a YAML example with a `{kind}:` step"
    )


# --- the expectation grammar ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "word"),
    [("QUERIES", q) for q in QUERIES] + [("FILTERS", f) for f in FILTERS] + [("PREDICATES", p) for p in PREDICATES],
)
def test_every_word_of_the_expectation_grammar_is_documented(table: str, word: str) -> None:
    # `word` alone, or followed by its argument: `nth N`, `header "Name"`
    found = re.search(rf"`{re.escape(word)}[` ]", _read(RUNBOOK_MD))
    assert found, f"{table}['{word}']: document it in docs/runbook.md"


# --- the command line ------------------------------------------------------------------------------


def _commands(group: click.Group, prefix: str = "tminus") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the root group loads its commands on demand (cli/lazy.py)
        command = group.get_command(ctx, name)
        assert command is not None, f"{prefix} lists `{name}` but has no such command"
        path = f"{prefix} {name}"
        out.append((path, command))
        if isinstance(command, click.Group):
            out.extend(_commands(command, path))
    return out


def _section(text: str, command: str) -> str | None:
    """The part of cli.md under the heading `## `tminus COMMAND``, up to the next heading of that level."""
    start = re.search(rf"^(#{{2,3}}) `{re.escape(command)}`\s*$", text, re.M)
    if start is None:
        return None
    end = re.compile(rf"^#{{1,{len(start.group(1))}}} ", re.M).search(text, start.end())
    return text[start.end() : end.start() if end else len(text)]


def _leaf_commands() -> list[tuple[str, click.Command]]:
    return [(path, c) for path, c in _commands(cli) if not isinstance(c, click.Group) or not c.commands]


def _long_options(command: click.Command) -> list[str]:
    return sorted(
        {opt for p in command.params if isinstance(p, click.Option) for opt in (*p.opts, *p.secondary_opts)
         if opt.startswith("--") and opt != "--help"}
    )


def test_every_command_is_in_the_cli_overview() -> None:
    text = _read(CLI_MD)
    for path, _ in _commands(cli):
        assert f"`{path}`" in text or f"`{path} " in text, f"docs/cli.md does not mention `{path}`"


@pytest.mark.parametrize("path", [p for p, _ in _leaf_commands()])
def test_every_command_has_a_section(path: str) -> None:
    assert _section(_read(CLI_MD), path) is not None, f"docs/cli.md needs a heading `{path}`"


@pytest.mark.parametrize(
    ("path", "option"), [(p, o) for p, c in _leaf_commands() for o in _long_options(c)]
)
def test_every_option_is_documented_in_its_command_section(path: str, option: str) -> None:
    section = _section(_read(CLI_MD), path)
    assert section is not None, f"docs/cli.md needs a heading `{path}`"
    assert re.search(rf"`{re.escape(option)}[ `=]", section), f"`{path}`: document `{option}` in its section"


def test_the_global_options_are_documented() -> None:
    text = _read(CLI_MD)
    for option in ("--version", "-V", "--help", "-h"):
        assert f"`{option}`" in text


def test_the_exit_code_table_matches_the_code() -> None:
    text = _read(CLI_MD)
    start = text.index("## Exit codes")
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`(\w+)`\s*\|", text[start:], re.M)
    assert rows, "docs/cli.md: the exit code table has rows `| CODE | `NAME` | meaning |`"
    assert {(int(code), name) for code, name in rows} == {(int(e), e.name) for e in Exit}
    assert len(rows) == len(Exit), "each exit code once"


def test_environment_variables_are_documented() -> None:
    text = _read(CLI_MD)
    for name in ("TMINUS_LEDGER", "TMINUS_OPERATOR", "TMINUS_LEDGER_KEY"):
        assert f"`{name}`" in text


# --- concepts ----------------------------------------------------------------------------------------


def test_every_ledger_event_type_is_documented() -> None:
    types_ = [v for k, v in vars(events).items() if k.isupper() and isinstance(v, str)]
    assert "step.started" in types_
    text = _read(CONCEPTS_MD)
    for event_type in types_:
        assert f"`{event_type}`" in text, f"docs/concepts.md: document the event type `{event_type}`"


# --- examples ----------------------------------------------------------------------------------------


def _whole_runbooks() -> list[tuple[str, int, str]]:
    out = []
    for path in (RUNBOOK_MD, CONCEPTS_MD, QUICKSTART_MD):
        for line, body in _blocks(path, "yaml"):
            if body.startswith(("name:", "version:")):
                out.append((str(path.relative_to(ROOT)), line, body))
    return out


def test_runbook_md_shows_whole_runbooks() -> None:
    assert len([b for b in _whole_runbooks() if b[0] == "docs/runbook.md"]) >= len(KIND_FIELDS)


@pytest.mark.parametrize(("doc", "line", "body"), _whole_runbooks(), ids=lambda v: str(v)[:40])
def test_every_whole_runbook_in_the_docs_validates(doc: str, line: int, body: str, tmp_path: Path) -> None:
    from tests.docsyaml import place_vars_files

    from tminus.errors import RunbookError

    place_vars_files(body, tmp_path)
    try:
        load_runbook(tmp_path / f"{Path(doc).stem}-line{line}.yaml", text=body)
    except RunbookError as exc:
        pytest.fail(f"{doc}:{line}: the example does not validate:\n{exc}")


def test_the_quickstart_walkthrough_quotes_the_real_runbook() -> None:
    runbook = _read(QUICKSTART_YAML)
    blocks = _blocks(QUICKSTART_MD, "yaml")
    assert len(blocks) >= 5
    for line, body in blocks:
        assert body in runbook, f"docs/examples/quickstart.md:{line}: not a verbatim excerpt of {QUICKSTART_YAML.name}"


def test_relative_links_between_docs_resolve() -> None:
    for path in (RUNBOOK_MD, CLI_MD, CONCEPTS_MD, QUICKSTART_MD):
        text = _without_fences(_read(path))
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{path.relative_to(ROOT)}: broken link to {target}"


def test_anchors_of_links_between_docs_exist() -> None:
    docs = {p: _read(p) for p in (RUNBOOK_MD, CLI_MD, CONCEPTS_MD, QUICKSTART_MD)}

    def anchors(text: str) -> set[str]:
        out = set()
        for heading in re.findall(r"^#+ (.+)$", _without_fences(text), re.M):
            slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
            out.add(slug)
        return out

    for path, text in docs.items():
        for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", _without_fences(text)):
            page = (path.parent / target).resolve() if target else path
            if page.suffix != ".md" or page not in docs:
                continue
            assert anchor in anchors(docs[page]), f"{path.relative_to(ROOT)}: no heading for #{anchor} in {page.name}"


# --- docs/architecture.md stays the map ------------------------------------------------------------

PACKAGE = ROOT / "src" / "tminus"


def _rooms() -> list[str]:
    """Every room of the package: its sub-packages and its top-level modules."""
    rooms = [p.name + "/" for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    rooms += [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    return sorted(rooms)


@pytest.mark.parametrize("room", _rooms())
def test_architecture_names_every_room(room: str) -> None:
    text = (DOCS / "architecture.md").read_text()
    assert f"`{room}`" in text, f"docs/architecture.md: the room table should say what `{room}` holds"


@pytest.mark.parametrize("module", sorted(p.stem for p in (PACKAGE / "engine").glob("*.py") if p.stem != "__init__"))
def test_architecture_names_every_engine_module(module: str) -> None:
    text = (DOCS / "architecture.md").read_text()
    assert f"`{module}`" in text or f"`engine/{module}.py`" in text or f"{module}.py" in text, (
        f"docs/architecture.md: say what engine/{module}.py does")


def test_the_docs_do_not_call_a_queryable_value_unqueryable() -> None:
    """A kind's `Values:` line may say some names "cannot be queried yet"; none of them may be a name the
    kind declares in `queries` (which expectations can ask for)."""
    from tminus.kinds.registry import get

    text = _read(RUNBOOK_MD)
    for kind in KIND_FIELDS:
        start = re.search(rf"^#{{2,4}} `{re.escape(kind)}`", text, re.M)
        assert start is not None
        end = re.compile(r"^#{2,4} ", re.M).search(text, start.end())
        section = text[start.end() : end.start() if end else len(text)]
        for claim in re.findall(r"([^.]*?)(?:which expectations cannot query|cannot (?:be )?quer)", section):
            named = set(re.findall(r"`(\w+)`", claim))
            wrong = named & set(get(kind).queries)
            assert not wrong, f"docs/runbook.md, `{kind}`: says {sorted(wrong)} cannot be queried; they can"
