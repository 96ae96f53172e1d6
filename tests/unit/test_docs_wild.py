"""docs/examples/wild-*.md: every requirement row is numbered and classed, the counts each page and the
overview state are the rows' counts, and every example folder has its page and every glue row its
marker in the runbook."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WILD = ROOT / "examples" / "runbooks-in-the-wild"
DOCS = ROOT / "docs" / "examples"
OVERVIEW = DOCS / "runbooks-in-the-wild.md"
CLASSES = ("first-class", "glue", "not expressible")
ROW = re.compile(r"^\| (\d+) \| .* \| ([a-z -]+) \|$", re.M)
COUNTS = re.compile(r"^\*\*Counts:\*\* (\d+) requirements: (\d+) first-class, (\d+) glue, (\d+) not expressible\.$",
                    re.M)
EXAMPLES = sorted(p.name for p in WILD.iterdir() if p.is_dir())


def _page(name: str) -> Path:
    return DOCS / f"wild-{name}.md"


def _rows(name: str) -> list[tuple[int, str]]:
    return [(int(n), cls) for n, cls in ROW.findall(_page(name).read_text(encoding="utf-8"))]


def test_every_example_has_a_page_and_every_page_an_example() -> None:
    assert len(EXAMPLES) == 5
    assert {f"wild-{n}.md" for n in EXAMPLES} == {p.name for p in DOCS.glob("wild-*.md")}


@pytest.mark.parametrize("name", EXAMPLES)
def test_rows_are_numbered_and_classed(name: str) -> None:
    rows = _rows(name)
    assert [n for n, _ in rows] == list(range(1, len(rows) + 1)), f"{_page(name).name}: rows out of order"
    assert {cls for _, cls in rows} <= set(CLASSES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_counts_line_is_the_rows_count(name: str) -> None:
    counted = Counter(cls for _, cls in _rows(name))
    stated = COUNTS.search(_page(name).read_text(encoding="utf-8"))
    assert stated, f"{_page(name).name}: no **Counts:** line"
    assert tuple(int(g) for g in stated.groups()) == (sum(counted.values()), *(counted[c] for c in CLASSES))


def test_the_overview_table_is_the_pages_counts() -> None:
    text = OVERVIEW.read_text(encoding="utf-8")
    totals = [0, 0, 0, 0]
    for name in EXAMPLES:
        counted = Counter(cls for _, cls in _rows(name))
        numbers = (sum(counted.values()), *(counted[c] for c in CLASSES))
        numbers_cells = r" \| (\d+)" * 4
        row = re.search(rf"^\| \[[^\]]+\]\(wild-{re.escape(name)}\.md\) \| [^|]+{numbers_cells} \|$", text, re.M)
        assert row, f"{OVERVIEW.name}: no row for {name}"
        assert tuple(int(g) for g in row.groups()) == numbers, name
        totals = [a + b for a, b in zip(totals, numbers, strict=True)]
    total = re.search(r"^\| \*\*Total\*\* \| " + r"\| \*\*(\d+)\*\* " * 4 + r"\|$", text, re.M)
    assert total and [int(g) for g in total.groups()] == totals


@pytest.mark.parametrize("name", EXAMPLES)
def test_a_runbook_with_glue_rows_marks_its_glue(name: str) -> None:
    """Glue is marked where it stands (`# GLUE(feature)`), so it can be found and replaced."""
    glue = [n for n, cls in _rows(name) if cls == "glue"]
    marks = sum(p.read_text(encoding="utf-8").count("GLUE(") for p in (WILD / name).glob("*.yaml"))
    assert (marks > 0) == bool(glue), f"{name}: {len(glue)} glue rows, {marks} GLUE( markers in its runbooks"
