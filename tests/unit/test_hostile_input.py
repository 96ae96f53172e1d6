"""The hostile input corpus: runbooks written to crash, hang or exhaust the loader.

Each case must give a RunbookError whose problem has file:line:column and a hint, within a second
of CPU in process; and `tminus validate` on it must exit 78 with that position and no traceback,
under a memory limit (RLIMIT_AS) and a CPU limit. Small cases are files in tests/fixtures/hostile/;
large ones (a 20 MB runbook, a 5,000-deep list) are written here. The fuzzer beside this file
(test_hostile_fuzz.py) looks for the cases nobody thought of.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tminus.errors import Problem, RunbookError
from tminus.expect.regex import MAX_SUBJECT
from tminus.expect.regex import search as regex_search
from tminus.runbook.loader import load_runbook
from tminus.runbook.yamltext import MAX_BYTES, MAX_VALUES

HOSTILE = Path(__file__).parent.parent / "fixtures" / "hostile"
STEPS = "phases:\n  - name: p\n    steps:\n      - run: echo hi\n"
CPU_SECONDS = 3.0  # per case, in process: a bound against blow-ups, not a speed target (see benchmarks/)
MEMORY = 1 << 30  # address space of a `tminus validate` child: the alias bomb once took 2.4 GB
EXIT_INVALID = 78

# name -> (a substring of the first problem's message, its line, its column)
FIXTURES: dict[str, tuple[str, int, int]] = {
    "python_object.yaml": ("unsupported YAML tag '!!python/object/apply:os.system'", 1, 7),
    "custom_tag.yaml": ("unsupported YAML tag '!env'", 2, 7),
    "omap.yaml": ("unsupported YAML tag '!!omap'", 2, 7),
    "nul_byte.yaml": ("contains a NUL byte", 1, 8),
    "control_character.yaml": ("the character U+001B", 3, 11),
    "invalid_utf8.yaml": ("not UTF-8 text: byte 0xe9", 1, 10),
    "merge_key.yaml": ("merge keys (<<) are not supported", 6, 5),
    "recursive_alias.yaml": ("the alias *loop is inside the value &loop", 3, 19),
    "undefined_alias.yaml": ("the alias *nowhere names no anchor", 3, 6),
    "anchor_twice.yaml": ("the anchor &v is defined twice (first at line 3, column 6)", 4, 6),
    "billion_laughs.yaml": ("aliases expand to more than 10,000 values", 7, 12),
    "list_as_key.yaml": ("a list cannot be a key", 3, 5),
    "timeout_inf.yaml": ("a duration must be finite, got inf", 6, 9),
    "timeout_nan.yaml": ("a duration must be finite, got nan", 6, 9),
    "timeout_absurd.yaml": ("a duration is at most 366 days", 6, 9),
    "backoff_inf.yaml": ("expected a finite number", 6, 30),
    "redos_nested.yaml": ("a quantifier inside a quantifier can take exponential time", 6, 34),
    "redos_alternation.yaml": ("a repeated alternation whose branches can match alike", 6, 34),
    "redos_adjacent.yaml": ("two quantifiers in a row over the same characters", 6, 34),
    "duplicate_key.yaml": ("duplicate key 'name' (first at line 1, column 1)", 2, 1),
    "two_documents.yaml": ("but found another document", 6, 1),
    "tab_indent.yaml": ("found character '\\t'", 3, 1),
    "at_without_zone.yaml": ("'2026-12-05T22:00' has no zone", 2, 1),
    "at_out_of_range.yaml": ("is out of range (years 1971 to 9998)", 2, 1),
    "stage_absurd.yaml": ("'T-1e400h': '1e400h' is not a duration", 4, 5),
}
NO_HINT = {"backoff_inf.yaml"}  # the message says it all
OTHERS = ["confusable_key.yaml"]  # a fixture with a test of its own
# The cases issue 9 names, also run through `tminus validate` (each child costs a second to start).
THROUGH_THE_CLI = ["python_object.yaml", "nul_byte.yaml", "merge_key.yaml", "deep_list", "billion_laughs.yaml",
                   "recursive_alias.yaml", "timeout_inf.yaml", "timeout_nan.yaml", "redos_nested.yaml",
                   "twenty_megabytes", "invalid_utf8.yaml"]


def _deep_list(tmp: Path) -> Path:
    return _write(tmp, "deep_list.yaml", "name: x\nvars:\n  a: " + "[" * 5000 + "]" * 5000 + "\n" + STEPS)


def _deep_flow_mappings(tmp: Path) -> Path:
    return _write(tmp, "deep_maps.yaml", "name: x\nvars:\n  a: " + "{a: " * 5000 + "}" * 5000 + "\n" + STEPS)


def _deep_block(tmp: Path) -> Path:
    nested = "".join("  " * (i + 1) + "- \n" for i in range(300))
    return _write(tmp, "deep_block.yaml", "name: x\nvars:\n  a:\n" + nested)


def _twenty_megabytes(tmp: Path) -> Path:
    phase = "  - name: p{}\n    steps:\n      - run: echo {}\n        timeout: 30s\n"
    text = "name: big\nphases:\n" + "".join(phase.format(i, i) for i in range(300_000))
    assert len(text) > 20_000_000
    return _write(tmp, "twenty.yaml", text)


def _huge_line(tmp: Path) -> Path:
    return _write(tmp, "huge_line.yaml", "name: " + "x" * (MAX_BYTES + 1) + "\n" + STEPS)


def _many_values(tmp: Path) -> Path:
    return _write(tmp, "many.yaml", "name: x\nvars:\n  a: [" + "1," * (MAX_VALUES + 1) + "]\n" + STEPS)


def _huge_integer(tmp: Path) -> Path:
    return _write(tmp, "integer.yaml", "name: x\nvars:\n  n: " + "9" * 5000 + "\n" + STEPS)


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


GENERATED: dict[str, tuple[Callable[[Path], Path], str, int, int]] = {
    "deep_list": (_deep_list, "more than 256 '[' and '{' open at once", 3, 262),
    "deep_flow_mappings": (_deep_flow_mappings, "more than 256 '[' and '{' open at once", 3, 1030),
    "deep_block": (_deep_block, "nested more than 64 deep", 66, 127),
    "twenty_megabytes": (_twenty_megabytes, "at most 524,288 are read", 1, 1),
    "huge_line": (_huge_line, "at most 524,288 are read", 1, 1),
    "many_values": (_many_values, "more than 20,000 values", 3, 39993),
    "huge_integer": (_huge_integer, "a number of 5,000 digits is too long", 3, 6),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str, int, int]]:
    tmp = tmp_path_factory.mktemp("hostile")
    cases = {name: (HOSTILE / name, *want) for name, want in FIXTURES.items()}
    for name, (make, *want) in GENERATED.items():
        cases[name] = (make(tmp), *want)  # type: ignore[assignment]
    return cases


def test_every_fixture_is_in_the_corpus() -> None:
    assert sorted(p.name for p in HOSTILE.iterdir()) == sorted([*FIXTURES, *OTHERS])


@pytest.mark.parametrize("name", [*FIXTURES, *GENERATED])
def test_refused_with_a_position_and_a_hint_within_a_second(
    name: str, corpus: dict[str, tuple[Path, str, int, int]]
) -> None:
    path, message, line, column = corpus[name]
    spent = []
    for _ in range(3):  # the best of three: a shared machine slows a try, never a hang into a pass
        started = time.process_time()
        with pytest.raises(RunbookError) as info:
            load_runbook(path)
        spent.append(time.process_time() - started)
        if spent[-1] < CPU_SECONDS:
            break
    assert min(spent) < CPU_SECONDS, f"{name}: {spent} s of CPU"
    problem: Problem = info.value.problems[0]
    assert message in problem.message, problem.render()
    assert problem.location is not None
    assert (problem.location.file, problem.location.line, problem.location.column) == (str(path), line, column)
    assert problem.hint or name in NO_HINT, problem.render()


def test_validate_exits_78_with_the_position_under_memory_and_cpu_limits(
    corpus: dict[str, tuple[Path, str, int, int]],
) -> None:
    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
        resource.setrlimit(resource.RLIMIT_CPU, (20, 20))

    # all at once: the children's start-up (imports) dominates, not the cases
    children = {
        name: subprocess.Popen([sys.executable, "-m", "tminus", "validate", str(path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=limits)
        for name, (path, *_) in corpus.items() if name in THROUGH_THE_CLI
    }
    assert len(children) == len(THROUGH_THE_CLI)
    for name, child in children.items():
        _, err = child.communicate(timeout=120)
        path, message, line, column = corpus[name]
        assert child.returncode == EXIT_INVALID, f"{name}: exit {child.returncode}\n{err}"
        assert "Traceback" not in err and "MemoryError" not in err, err
        assert f"{path}:{line}:{column}: " in err and message in err, err


def test_dev_zero_is_read_no_further_than_the_limit() -> None:
    started = time.process_time()
    with pytest.raises(RunbookError) as info:
        load_runbook("/dev/zero")
    assert time.process_time() - started < CPU_SECONDS
    assert "at most 524,288 are read" in info.value.problems[0].message


def test_a_confusable_key_names_the_character() -> None:
    with pytest.raises(RunbookError) as info:
        load_runbook(HOSTILE / "confusable_key.yaml")
    unknown = next(p for p in info.value.problems if p.message.startswith("unknown key"))
    assert "U+0430 CYRILLIC SMALL LETTER A" in unknown.message
    assert unknown.hint == "did you mean 'name'?"


def test_matches_reads_a_bounded_subject() -> None:
    import re

    with pytest.raises(ValueError, match="at most"):
        regex_search(re.compile("x"), "a" * (MAX_SUBJECT + 1))


# --- `matches`: patterns that backtrack super-linearly are refused, others kept -----------------

SAFE = [r"v\d+\.\d+", r"^v\d+$", "^OK", r"(?:\d{1,3}\.){3}\d{1,3}", r"(\d|x)*", r".*foo.*bar", r"(a{2})+",
        r"^[a-z]++[a-z0-9]*$", r"(?>\w+\s?)*", r"(\w++\s?)*", r"[A-Z][a-z]+", r"error|warning", r"\s*\w+",
        r"(foo|bar)+", r"\bHTTP/1\.[01] 200\b", "Applying .* OK", r"^\s*$", "(a|ab)*c", r"(GET|POST) /api"]
# exponential in the subject's length, or polynomial of degree 2 and more under search
# ([a-z]+[a-z0-9]*! took 296 s on 10,000 letters)
CATASTROPHIC = [r"(a+)+$", r"(a*)*b", r"(\w+\s?)*$", r"(a|a)*b", r"(x|xy?)+$", r"\d+\d*!", r"[a-z]+[a-z0-9]*!",
                r".*.*=.*;", r"(.*a){12}", r"(?i)A+a+b", r"\s+\s+$", r"^(([a-z])+.)+[A-Z]([a-z])+$"]


@pytest.mark.parametrize("pattern", SAFE)
def test_matches_keeps_patterns_that_backtrack_linearly(pattern: str) -> None:
    from tminus.expect import parse

    written = pattern.replace("/", "\\/")
    assert parse(f"stdout matches /{written}/").operand.pattern == pattern


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_matches_refuses_catastrophic_patterns_at_validation(pattern: str) -> None:
    from tminus.errors import ExpectationSyntaxError
    from tminus.expect import parse

    started = time.process_time()
    with pytest.raises(ExpectationSyntaxError, match=r"can take (exponential|polynomial) time") as info:
        parse(f"stdout matches /{pattern}/")
    assert info.value.column == len("stdout matches ")
    assert "possessive" in str(info.value)
    assert time.process_time() - started < CPU_SECONDS


@pytest.mark.parametrize(("value", "column"), [("2026-02-30", 6), ("0b_", 6), ("[1, 2099-13-01]", 10)])
def test_a_value_ruamel_cannot_build_is_a_positioned_problem_not_a_traceback(
        tmp_path: Path, value: str, column: int) -> None:
    path = tmp_path / "runbook.yaml"
    path.write_text(f"name: x\nvars:\n  d: {value}\nphases: []\n", encoding="utf-8")
    with pytest.raises(RunbookError) as caught:
        load_runbook(path)
    (problem,) = caught.value.problems
    assert (problem.location.line, problem.location.column) == (3, column), problem
    assert "cannot read the value" in problem.message and "quote it" in (problem.hint or "")
    path.write_text('name: x\nvars:\n  d: "2026-02-30"\nphases: []\n', encoding="utf-8")
    assert load_runbook(path).runbook.vars["d"] == "2026-02-30"  # quoted, it is text
