"""Link each example's docs page to the reports scripts/example_reports.sh rendered for it.

The block between `<!-- reports -->` and `<!-- /reports -->` on each page is rewritten from what is in
docs/examples/reports/<folder>/ (placed after the page's "operators' page" paragraph the first time).
tests/unit/test_docs_pages.py checks that every page links its reports and every link resolves.

    .venv/bin/python scripts/link_example_reports.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
REPORTS = EXAMPLES / "reports"
# docs page -> (its reports folder, where the runs came from)
PAGES = {
    "quickstart.md": ("quickstart", "its demo (`examples/quickstart/demo.sh`)"),
    "blue-green.md": ("blue-green", "its demo (`examples/blue-green/demo.sh`)"),
    "dashboard-gates.md": ("dashboard-gates", "its demo (`examples/dashboard-gates/demo.sh`)"),
    "metrics-subsystem.md": ("metrics-subsystem", "its demo (`examples/metrics-subsystem/demo.sh`)"),
    **{page: (f"wild-{page[5:8]}", "its end-to-end tests (`tests/e2e/test_examples_wild.py`)")
       for page in ("wild-000-mes-dashboard.md", "wild-001-migration-gates-spec.md", "wild-002-mge-v2-migration.md",
                    "wild-003-recall-api-cutover.md", "wild-004-metrics-subsystem.md")},
}
BLOCK = re.compile(r"<!-- reports -->.*?<!-- /reports -->\n", re.S)
ANCHOR = re.compile(r"^\*\*The operators' page\.\*\*.*?\n\n", re.S | re.M)


def reports_of(folder: str) -> list[str]:
    """`N-status` names of the reports in a folder, in the order the runs were made."""
    found = {p.stem for p in (REPORTS / folder).glob("*.md")}
    return sorted(found, key=lambda stem: int(stem.split("-", 1)[0]))


def block(folder: str, source: str) -> str:
    names = reports_of(folder)
    items = [f"{i}. {name.split('-', 1)[1].replace('-', ' ')}: [HTML](reports/{folder}/{name}.html) · "
             f"[Markdown](reports/{folder}/{name}.md)" for i, name in enumerate(names, 1)]
    return ("<!-- reports -->\n**Reports of its runs.** Each run " + source + " made (a rehearsal's cycles aside:\n"
            "`tminus show REHEARSAL_ID` reports those), as `tminus report` renders it from the ledger\n"
            "(regenerate with `bash scripts/example_reports.sh`):\n\n" + "\n".join(items) + "\n<!-- /reports -->\n")


def link(page: Path, folder: str, source: str) -> bool:
    text = page.read_text(encoding="utf-8")
    new = block(folder, source)
    if BLOCK.search(text):
        updated = BLOCK.sub(lambda _m: new, text, count=1)
    else:
        m = ANCHOR.search(text)
        if m is None:
            raise SystemExit(f"{page}: no \"**The operators' page.**\" paragraph to put the reports after")
        updated = text[:m.end()] + new + "\n" + text[m.end():]
    page.write_text(updated, encoding="utf-8")
    return updated != text


def main() -> int:
    for name, (folder, source) in PAGES.items():
        if not reports_of(folder):
            print(f"{name}: no reports in docs/examples/reports/{folder}/ (run scripts/example_reports.sh)")
            continue
        changed = link(EXAMPLES / name, folder, source)
        print(f"{name}: {'linked' if changed else 'up to date'} ({len(reports_of(folder))} reports)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
