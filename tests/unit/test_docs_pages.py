"""Every committed `tminus docs` page of an example is current, and is a well-formed page.

The pages are rendered in-process (cheap); a stale one fails with the command that regenerates it.
`.venv/bin/python -m tests.unit.test_docs_pages` regenerates them all (after a change to the runbooks
or to what `tminus plan` says).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from tminus.cli.docs import normalise, page_diff
from tminus.cli.docs_page import docs_options, render_page, text
from tminus.engine.context import resolve_environment
from tminus.engine.plan import build_plan
from tminus.engine.stages import cutover_time
from tminus.runbook.loader import load_runbook

ROOT = Path(__file__).resolve().parents[2]
WILD = "examples/runbooks-in-the-wild"
RENDERED = "docs/examples/rendered"

# runbook -> (environment its docs page uses, the committed page)
PAGES: dict[str, tuple[str | None, str]] = {
    "examples/quickstart/runbook.yaml": ("local", f"{RENDERED}/quickstart.md"),
    "examples/blue-green/runbook.yaml": ("local", f"{RENDERED}/blue-green.md"),
    "examples/dashboard-gates/runbook.yaml": (None, "examples/dashboard-gates/RUNBOOK.md"),
    "examples/metrics-subsystem/runbook.yaml": ("production", f"{RENDERED}/metrics-subsystem.md"),
    f"{WILD}/000-mes-dashboard/runbook.yaml": ("rehearsal", f"{RENDERED}/wild-000-mes-dashboard.md"),
    f"{WILD}/001-migration-gates-spec/runbook.yaml": (None, f"{RENDERED}/wild-001-migration-gates-spec.md"),
    f"{WILD}/002-mge-v2-migration/runbook.yaml": ("production", f"{RENDERED}/wild-002-mge-v2-migration.md"),
    f"{WILD}/003-recall-api-cutover/runbook.yaml": ("production", f"{RENDERED}/wild-003-recall-api-cutover.md"),
    f"{WILD}/004-metrics-subsystem/runbook.yaml": ("staging", f"{RENDERED}/wild-004-metrics-subsystem.md"),
}


@cache
def _render(runbook: str, environment: str | None) -> tuple[str, object]:
    doc = load_runbook(ROOT / runbook)
    opts = docs_options(doc, resolve_environment(doc, environment), {})
    opts.at = cutover_time(doc, opts, None)
    return render_page(doc, opts), build_plan(doc, opts)


def test_every_example_runbook_has_a_page() -> None:
    runbooks = {str(p.relative_to(ROOT)) for p in ROOT.glob("examples/*/runbook.yaml")}
    runbooks |= {str(p.relative_to(ROOT)) for p in ROOT.glob(f"{WILD}/*/runbook.yaml")}
    assert runbooks == set(PAGES)
    committed = {str(p.relative_to(ROOT)) for p in (ROOT / RENDERED).glob("*.md")}
    assert committed == {page for _env, page in PAGES.values() if page.startswith(RENDERED)}


@pytest.mark.parametrize("runbook", sorted(PAGES))
def test_the_committed_page_is_current(runbook: str) -> None:
    environment, page = PAGES[runbook]
    rendered, _plan = _render(runbook, environment)
    committed = (ROOT / page).read_text(encoding="utf-8")
    diff = page_diff(committed, rendered, page)
    env = f" -e {environment}" if environment else ""
    assert not diff, (f"{page} is stale; regenerate with: tminus docs {runbook}{env} -o {page}\n"
                      + "\n".join(diff[:60]))
    # every example is linked from its docs page
    linked = Path(page).name if page.startswith(RENDERED) else "examples/dashboard-gates/RUNBOOK.md"
    assert any(linked in p.read_text(encoding="utf-8") for p in (ROOT / "docs" / "examples").glob("*.md"))


def _tables(page: str) -> list[list[str]]:
    """Each Markdown table of the page as its lines."""
    out: list[list[str]] = []
    current: list[str] = []
    for line in page.split("\n"):
        if line.startswith("|"):
            current.append(line)
        elif current:
            out.append(current)
            current = []
    return out


def cells(row: str) -> int:
    """A table row's cells: its `|` that no backslash escapes, less one."""
    return len(re.findall(r"(?<!\\)\|", row)) - 1


@pytest.mark.parametrize("runbook", sorted(PAGES))
def test_the_page_has_the_structure_an_operator_reads(runbook: str) -> None:
    environment, _page = PAGES[runbook]
    page, plan = _render(runbook, environment)
    assert page.startswith("# Runbook: ") and page.endswith("\n") and not page.endswith("\n\n")
    headings = re.findall(r"^(#{2,4}) (.+)$", page, re.M)
    h2 = [title for level, title in headings if level == "##"]
    for section in ("Before T+0", "Gates", "Timeline", "Phases", "Verify", "Go / no-go", "Point of no return",
                    "Rollback path"):
        assert section in h2, (runbook, section)
    assert ("Monitor" in h2) == (plan.monitor is not None)  # type: ignore[attr-defined]
    assert ("Kill switch" in h2) == (plan.kill_switch is not None)  # type: ignore[attr-defined]
    h3 = [title for level, title in headings if level == "###"]
    for phase in (*plan.phases, *plan.after_go, *plan.finalize):  # type: ignore[attr-defined]
        assert any(t.startswith(f"{text(phase.tplus)} {text(phase.name)} (") for t in h3), (runbook, phase.name)
        for step in phase.steps:
            assert f"**{text(step.title)}**" in page, (runbook, step.title)
    for gate in plan.gates:  # type: ignore[attr-defined]
        assert text(gate["name"]) in h3
        for check in gate["checks"]:
            assert f"**{text(check.title)}**" in page
    for table in _tables(page):
        assert len({cells(row) for row in table}) == 1, table
        assert re.fullmatch(r"\|( --- \|)+", table[1])
    timeline = next(t for t in _tables(page) if t[0].startswith("| planned start"))
    assert len(timeline) - 2 == (len(plan.phases) + len(plan.after_go) + len(plan.finalize)  # type: ignore[attr-defined]
                                 + (plan.end_tplus is not None))  # type: ignore[attr-defined]
    ponr = plan.point_of_no_return  # type: ignore[attr-defined]
    assert (page.count("> **Point of no return**") == 1) == (ponr is not None)


def test_the_page_uses_plans_words(tmp_path: Path) -> None:
    """Each step's summary, why, undo and expectations are plan's, not rephrased."""
    page, plan = _render("examples/quickstart/runbook.yaml", "local")
    for phase in plan.phases:  # type: ignore[attr-defined]
        for s in phase.steps:
            assert s.summary in page and text(s.why) in page, s.title
            assert all(u in page for u in s.undo) and all(e in page for e in s.expect)


def test_normalise_ignores_line_endings_and_trailing_space_only() -> None:
    assert normalise("a  \r\nb\t\r\n\r\n") == normalise("a\nb\n") == "a\nb\n"
    assert normalise("a\n b\n") != normalise("a\nb\n")


if __name__ == "__main__":  # `.venv/bin/python -m tests.unit.test_docs_pages`: regenerate every page
    for runbook, (environment, page) in PAGES.items():
        rendered, _plan = _render(runbook, environment)
        target = ROOT / page
        changed = not target.exists() or normalise(target.read_text(encoding="utf-8")) != normalise(rendered)
        target.write_text(rendered, encoding="utf-8")
        print(f"{'wrote' if changed else 'current'} {page}")


REPORT_LINK = re.compile(r"\]\((reports/[^)]+)\)")


def test_every_example_page_links_the_reports_of_its_runs() -> None:
    """Each example's docs page links an HTML and a Markdown report of each of its runs (rendered by
    scripts/example_reports.sh, linked by scripts/link_example_reports.py), and every link resolves."""
    examples = ROOT / "docs" / "examples"
    pages = sorted(p for p in examples.glob("*.md") if p.name != "runbooks-in-the-wild.md")
    assert len(pages) == len(PAGES)
    every_report = {str(p.relative_to(examples)) for p in (examples / "reports").rglob("*") if p.is_file()}
    linked: set[str] = set()
    for page in pages:
        links = REPORT_LINK.findall(page.read_text(encoding="utf-8"))
        assert any(x.endswith(".html") for x in links) and any(x.endswith(".md") for x in links), page.name
        missing = [x for x in links if not (examples / x).is_file()]
        assert not missing, f"{page.name} links reports that are not there: {missing}"
        linked |= set(links)
    assert every_report == linked, f"reports no page links: {sorted(every_report - linked)}"
    for report in (examples / "reports").rglob("*.html"):  # one self-contained page each
        head = report.read_text(encoding="utf-8")[:200].lower()
        assert head.lstrip().startswith("<!doctype html"), report
