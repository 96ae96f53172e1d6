"""A property-based fuzzer for the runbook loader: whatever the text, `load_runbook` returns a
document or raises RunbookError whose every problem has a line and a column; never another exception.

Three generators: random YAML structures (runbook keys, random scalars, nesting), mutations of a
valid runbook's text (characters YAML gives meaning to, inserted, deleted or replaced), and
arbitrary text. Each runs `TMINUS_FUZZ_EXAMPLES` examples (200 by default, so CI stays fast);
for a long hunt: `TMINUS_FUZZ_EXAMPLES=5000 pytest tests/unit/test_hostile_fuzz.py`.
A failure prints the smallest text that breaks the promise; add it to test_hostile_input.py.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from tminus.errors import RunbookError
from tminus.runbook.loader import load_runbook

EXAMPLES = int(os.environ.get("TMINUS_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
VALID = (Path(__file__).parent.parent / "fixtures" / "runbooks" / "full.yaml").read_text()

KEYS = ["name", "phases", "steps", "run", "timeout", "expect", "http", "url", "sql", "query", "undo",
        "gates", "checks", "verify", "rollback", "vars", "secrets", "environments", "decision", "mode",
        "monitor", "probes", "duration", "interval", "retry", "attempts", "backoff", "when", "id",
        "wait", "check", "file", "path", "manual", "on_failure", "budget", "<<", "version"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["30s", "1h30m", ".inf", ".nan", "-1", "echo hi", "status == 200", "{{ vars.x }}",
                     "stdout matches /(a+)+$/", "1e999", "~", "", "rollback", "manual"]),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8),
                                                                 inner, max_size=5),
    max_leaves=30,
)
YAML_CHARS = st.sampled_from([*":-[]{}&*!|>'\"#%@`?,\n \t\\", "\0", "\x85", "\ufeff", "<<", "&a", "*a",
                               "!!python/object ", "---\n", "  "])


def holds(text: str) -> None:
    try:
        load_runbook("fuzz.yaml", text)
    except RunbookError as exc:
        assert exc.problems
        for p in exc.problems:
            assert p.location is not None and p.location.line is not None, p.render()
            assert p.location.column is not None, p.render()


def dump(value: Any) -> str:
    out = io.StringIO()
    YAML(typ="rt").dump(value, out)
    return out.getvalue()


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_random_structures(value: dict[str, Any]) -> None:
    holds(dump(value))


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID)), st.integers(0, 3), YAML_CHARS), min_size=1, max_size=6))
def test_mutations_of_a_valid_runbook(edits: list[tuple[int, int, str]]) -> None:
    text = VALID
    for at, cut, insert in edits:
        text = text[:at] + insert + text[at + cut:]
    holds(text)


@FUZZ
@given(st.lists(st.characters(codec="utf-8") | YAML_CHARS, max_size=100).map("".join))
def test_arbitrary_text(text: str) -> None:
    holds(text)
