"""The fast YAML reader (libyaml, runbook/yamlread.py) against the reference (ruamel, runbook/yamlruamel.py).

Whatever the text, the fast reader either declines (and ruamel reads it, with its own problems and
positions) or gives exactly what ruamel gives: the same data (types included: 1 is not 1.0 nor
True, -0.0 is not 0.0), the same position for every key and list item, the same quoted list items.
A text ruamel refuses is never read by the fast reader. Checked on every runbook of the repository
(examples, fixtures, templates, the docs' YAML blocks), a corpus of tricky scalars and documents,
and fuzzed texts; with libyaml and with PyYAML's pure-Python parser (the fallback without libyaml).
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.docblocks import blocks

from tminus.errors import RunbookError
from tminus.runbook import yamlread
from tminus.runbook.document import SourceMap
from tminus.runbook.yamlread import read
from tminus.runbook.yamlruamel import parse

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ROOT / "tests" / "fixtures" / "hostile"
EXAMPLES = int(os.environ.get("TMINUS_FUZZ_EXAMPLES", "100"))  # more for a long hunt, as test_hostile_fuzz.py
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _repository_yaml() -> dict[str, str]:
    texts = {}
    for folder in ("examples", "tests/fixtures", "src/tminus/cli/templates"):
        for path in sorted((ROOT / folder).rglob("*.y*ml")):
            texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8", errors="replace")
    for block in blocks():
        if block.lang in ("yaml", "yml"):
            texts[block.where] = block.body
    return texts


REPOSITORY = _repository_yaml()


def typed(value: Any) -> Any:
    """A value with its types spelled out, so 1, 1.0 and True differ, and nan equals nan."""
    if isinstance(value, dict):
        return ("map", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("seq", [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", repr(value), math.copysign(1.0, value))
    return (type(value).__name__, value)


@functools.lru_cache(maxsize=4096)  # each text once for both parsers
def reference(text: str) -> tuple[str, Any]:
    """What ruamel makes of the text: ("ok", result) or ("refused", why)."""
    source = SourceMap("f.yaml")
    try:
        data, problems = parse(text, source)
    except RunbookError as exc:
        return "refused", [p.render() for p in exc.problems]
    except (NotImplementedError, AssertionError) as exc:  # ruamel's round-trip comment bookkeeping fails
        return "ruamel bug", repr(exc)  # (`a:  #c%}\n  x\n  \n`): a traceback today; read by the fast reader
    except Exception as exc:  # ruamel fails on a few scalars (2026-02-30): the fast reader declines them
        return "refused", repr(exc)
    if problems:
        return "refused", [p.render() for p in problems]
    return "ok", (typed(data), _positions(source.positions), sorted(map(repr, source.quoted)))


def _positions(positions: dict[Any, tuple[int, int]]) -> list[tuple[str, tuple[int, int]]]:
    return [(repr(path), at) for path, at in positions.items()]  # in order; repr: a nan key equals itself


def agree(text: str) -> bool:
    """Assert the fast reader agrees with ruamel on `text`; True when it read it (did not decline)."""
    fast = read(text)
    if fast is None:
        return False
    outcome, expected = reference(text)
    if outcome == "ruamel bug":
        return True
    assert outcome == "ok", f"the fast reader read a text ruamel refuses: {text!r}: {expected}"
    got = (typed(fast.data), _positions(fast.positions), sorted(map(repr, fast.quoted)))
    assert got == expected, text
    return True


@pytest.fixture(params=["libyaml", "pure-python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "pure-python":
        monkeypatch.setattr(yamlread, "_Parser", yaml.SafeLoader)
    else:
        assert yamlread._Parser is yaml.CSafeLoader, "PyYAML without libyaml: loading is ~10x slower"
    yield request.param


# --- every runbook of the repository -----------------------------------------------------------


def test_every_runbook_of_the_repository_reads_alike(parser: str) -> None:
    assert len(REPOSITORY) > 100
    declined = [name for name, text in REPOSITORY.items() if not agree(text)]
    # the fast reader declines only what ruamel refuses (hostile fixtures, deliberate mistakes)
    for name in declined:
        assert reference(REPOSITORY[name])[0] == "refused", f"{name}: declined, yet valid YAML"


def test_every_hostile_fixture_is_declined() -> None:
    for path in HOSTILE.iterdir():
        if reference(path.read_text(encoding="utf-8", errors="replace"))[0] == "refused":
            assert read(path.read_text(encoding="utf-8", errors="replace")) is None, path.name


# --- scalars: YAML 1.2 exactly as ruamel reads it ----------------------------------------------

SCALARS = [
    # YAML 1.1 words and forms that are text (or decimal) in YAML 1.2
    "yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "0755", "0o755", "0x1F", "0X1F", "0b101", "0B1", "1:30",
    "-1:30", "190:20:30", "1:30.5", "=", "<<", "0o8", "08", "09.5", "007", "00",
    # booleans, nulls
    "true", "True", "TRUE", "tRUE", "false", "False", "FALSE", "null", "Null", "NULL", "nULL", "~", "", "nil",
    # integers, underscores, signs
    "0", "-0", "+0", "12", "+12", "-12", "1_000", "1__2", "-_1", "_1", "1_", "0_8", "+0x_1", "0x", "0o", "0b",
    "0b_", "0x_", "-_", "+_", "9" * 40, "-0o17", "-0x10", "0x_F_",
    # floats
    "1.", ".5", "-.5", "+.5", "1.5", "1e5", "1E5", "1e+5", "1E-5", "1.5e3", "-1.5E+3", "1e400", "-1e400", "1_0.5_0",
    "1_2.3e4", ".e5", ".5e+3", ".5e3", "1e", "0.0.0", ".inf", "-.inf", "+.inf", ".Inf", ".INF", ".nan", ".NaN",
    ".NAN", "-.nan", "-0.0", "0.0", "1.0", "3.14159265358979323846", ".", "-.", "+", "-", "1.e5", "._5", "1._5",
    # timestamps: kept as ISO text
    "2026-12-05", "2026-1-5", "2026-12-05T22:00:00Z", "2026-12-05t22:00:00z", "2026-12-05 22:00:00 +01:00",
    "2026-12-05T22:00:00.123456789-05", "2026-1-5T1:00:00", "2026-12-05T22:00:00.5", "2026-12-05T22:00",
    "2001-12-14t21:59:43.10-05:00", "2026-12-05T22:00:00.9999995Z", "2026-02-30", "2026-12-05T22:00:00+24",
    "2026-12-05T22:00:00 Z", "2026-12-05T25:00:00", "9999-12-31T23:59:59.9999999Z", "2026-12-05T22:00:00.",
    # text that looks like something else
    "30s", "1h30m", "T-48h", "v1.2.3", "1.2.3", "status == 200", "{{ vars.x }}", "echo hi", "a: b", "a #b",
    "é", "😀", "1 2", "0x1g", "+inf", "inf", "NaN", "-", "--", "%", "@x", "`x",
]
CONTEXTS = ["a: {}\n", "- {}\n", "{}: v\n", "a: [{}, x]\n", "a: {{k: {}}}\n", "a:\n  - x\n  - {}\n", "? {}\n: v\n",
            "{}\n", "a: '{}'\n", 'a: "{}"\n', "a: |\n  {}\n", "a: >-\n  {}\n  x\n", "- &a {}\n- *a\n"]


@pytest.mark.parametrize("context", CONTEXTS)
def test_tricky_scalars_read_alike(context: str) -> None:  # both parsers give the same scalar events
    for scalar in SCALARS:
        agree(context.format(scalar))


@pytest.mark.parametrize(("written", "value"), [
    ("yes", "yes"), ("on", "on"), ("0755", 755), ("0o755", 0o755), ("0x1F", 31), ("1:30", "1:30"), ("1_000", 1000),
    ("True", True), ("~", None), ("", None), (".inf", math.inf), ("1e5", 1e5), ("1.", 1.0),
    ("2026-12-05T22:00:00Z", "2026-12-05 22:00:00+00:00"), ("2026-12-05", "2026-12-05"),
    ("2026-12-05T22:00", "2026-12-05T22:00"), ("v1.10", "v1.10"),
])
def test_yaml_1_2_values(written: str, value: Any) -> None:
    fast = read(f"a: {written}\n")
    assert fast is not None
    assert typed(fast.data["a"]) == typed(value)


@pytest.mark.parametrize("text", [
    "a: <<\n", "a: =\n", "a: 2026-02-30\n", "a: 0b_\n", "a: !!str 1\n", "<<: {a: 1}\n", "a: 1\na: 2\n",
    "a: 1\n---\nb: 2\n", "%YAML 1.1\n---\na: yes\n", "a:\tb\n", "\ufeffa: 1\n", "a: b\x85c\n", "[a]: b\n",
    "*x : b\n", "a: *x\n", "a: &x [*x]\n", "- &x 1\n- &x 2\n", "&X: v\n", "a: |5\n     x\n", "a: |#c\n  x\n",
    "a: |\n  \n   x\n", "a: [\n", "a: 1\n b: 2\n", "2026-12-05T22:00:00Z: a\n2026-12-05T23:00:00+01:00: b\n",
])
def test_declined_what_ruamel_must_word(text: str) -> None:
    assert read(text) is None


# --- documents ---------------------------------------------------------------------------------

DOCUMENTS = [
    "", "# only a comment\n", "---\n", "---\n...\n", "--- a\n", "a: 1\n...\n", "a: 1\r\nb:\r\n  - x\r\n  - 'y'\r\n",
    "a:\n- x\n- y\n", "a:\n  - b: 1\n    c: 2\n  -   d: 3\n", "- - a\n  - b\n- - c\n", "[a, 'b', \"c\", [d]]\n",
    "{a: 1, b: [x, 'y'], c: {d: e}}\n", "? a\n? b\n: c\n", "? |\n  block key\n: v\n", "a: 'it''s'\n",
    'a: "tab\\tnl\\nu\\u00e9\\x41\\/"\n', "a: plain\n  continued\n\n  paragraph\n", "a: 'single\n\n  multi'\n",
    'a: "double \\\n  escaped"\n', "a: |+\n  keep\n\nb: 1\n", "a: >\n  folded\n  text\n\n   more\n  back\n",
    "a: |-\n  x\n\n", "a: |2\n    x\n", "- &s 'q'\n- *s\n- k: *s\n",
    "base: &b {x: 1, y: ['q', 2]}\nuse:\n  - *b\n  - z: *b\n",
    "a: &anchor\n  - 1\n  - &inner two\nb: *inner\nc: [*anchor, *anchor]\n", "&k key: v\nother: *k\n",
    "a: x # comment\nb: 'y' # c\n", "é😀: 'ü'\nb: [é, 😀]\n", "'quoted key': 1\n\"k2\": 2\n",
    "1: a\n1.5: b\ntrue: c\n~: d\n",
    "a: [x, y,]\n", "a: {x: 1,}\n", "a: [x: 1, y]\n", "a: {x}\n", "a: [? x : y]\n", "- a\n-\n- c\n", "a:\n\nb:\n",
    "a: b: c\n", "a: 'unterminated\n", "- [a\n", "key with spaces: v\n", "a: -x\nb: --x\nc: - x\n", "a: !x\n",
    "a: &x\nb: *x\n", "a: [&x 1, *x]\n", "a: \"\\e\\0\\a\\b\\v\\f\\r\\N\\_\\L\\P\"\n", "a: '#not a comment'\nb: x#y\n",
    "- ? a\n  : b\n", "a:\n  # comment\n  b: 1\n", "a: >\n\n  x\n", "a: |\n\n  x\n", "a: |\n  x\n \n  y\n",
]


def test_what_ruamel_crashed_on_is_read() -> None:
    text = "a:  #c%}*a\n  \\~\n  \nb: 1\n"
    assert reference(text)[0] == "ruamel bug"
    fast = read(text)
    assert fast is not None and fast.data == {"a": "\\~", "b": 1}


@pytest.mark.parametrize("text", DOCUMENTS)
def test_tricky_documents_read_alike(text: str, parser: str) -> None:
    agree(text)


def test_an_alias_in_a_list_is_positioned_at_its_anchor_and_copied() -> None:
    fast = read("base: &b {x: 1}\nuse:\n  - *b\n  - *b\n")
    assert fast is not None
    assert fast.positions[("use", 0)] == fast.positions[("use", 1)] == (1, 7)
    assert fast.positions[("use", 1, "x")] == (1, 11)
    assert fast.data["use"][0] == fast.data["base"] and fast.data["use"][0] is not fast.data["use"][1]


# --- fuzzed ------------------------------------------------------------------------------------

VALID = [text for name, text in REPOSITORY.items() if reference(text)[0] == "ok" and len(text) < 20_000]
YAML_CHARS = st.sampled_from([*":-[]{}&*!|>'\"#%@`?,\n \\~.01eé", "\r\n", "<<", "&a ", "*a", "&b ", "*b", "---\n",
                              "...\n", "  ", "\n  ", "\n- ", "- ", ": ", "|-\n", ">\n", "|2\n", "? ", "\t", "\x85"])


@FUZZ
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 3), YAML_CHARS),
                                        min_size=1, max_size=4))
def test_fuzzed_runbooks_read_alike(text: str, edits: list[tuple[int, int, str]]) -> None:
    for at, cut, insert in edits:
        at %= len(text) + 1
        text = text[:at] + insert + text[at + cut:]
    agree(text)


SCALAR_PARTS = st.sampled_from([*"0123456789_.-+eExobTtZ: ", "inf", "nan", ".inf", "true", "null", "0x", "0o",
                                "2026-12-05", "T22:00:00", " 22:00:00", "+01:00", ".5", "é", "#", "'", "&", "*", "|"])


@FUZZ
@given(st.lists(SCALAR_PARTS, min_size=1, max_size=6).map("".join), st.sampled_from(CONTEXTS))
def test_fuzzed_scalars_read_alike(scalar: str, context: str) -> None:
    agree(context.format(scalar))


# --- loading without ruamel ---------------------------------------------------------------------


def test_a_valid_runbook_loads_without_importing_ruamel() -> None:
    code = ("import sys; from tminus.runbook.loader import load_runbook; [load_runbook(p) for p in sys.argv[1:]]; "
            "print(sorted(m for m in sys.modules if m.startswith('ruamel')))")
    examples = [ROOT / "examples" / "quickstart" / "runbook.yaml", ROOT / "tests/fixtures/runbooks/full.yaml"]
    out = subprocess.run([sys.executable, "-c", code, *map(str, examples)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
