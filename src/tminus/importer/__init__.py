"""`tminus import`: a hand-written Markdown runbook -> a tminus runbook skeleton to review.

markdown.py parses the text into a neutral outline, mapping.py maps it to runbook data marking each
guess, writer.py writes YAML with the guesses as comments. `convert` is the whole path; the CLI
validates its output with the loader before writing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Imported:
    text: str  # the YAML
    summary: dict[str, Any]


def convert(markdown_text: str, *, source: str, name: str | None = None) -> Imported:
    from tminus.importer.mapping import build
    from tminus.importer.markdown import parse
    from tminus.importer.writer import render

    outline = parse(markdown_text)
    result = build(outline, name=name, source=source)
    rb = result.runbook
    header = [f"Imported from {result.source} by `tminus import`: a skeleton, not a runbook to run.",
              "Each '# guessed from line N' names the line of the Markdown a mapping was guessed from.",
              "The first gate always fails: delete it once every step has been reviewed."]
    if outline.flattened:
        header.append("The text was one long line: its headings and items were split again by guessing.")
    if outline.plain:
        header.append("The text had no Markdown headings: short lines standing alone were taken for headings.")
    if result.truncated:
        header.append("The text was too long: the import stopped early (see 'truncated' in the summary).")
    for miss in result.unmapped:
        header.append(f"not imported: line {miss.line} '{miss.section}': {miss.why}")
    summary: dict[str, Any] = {
        "name": rb["name"],
        "gates": len(rb.get("gates", [])),
        "phases": len(rb.get("phases", [])),
        "after_go": len(rb.get("after_go", [])),
        "rollback_steps": len(rb.get("rollback", [])),
        "decision": rb.get("decision", {}).get("mode", "auto"),
        "steps": {"total": sum(result.steps.values()), **{k: v for k, v in sorted(result.steps.items()) if v}},
        "guesses": result.guesses,
        "unmapped": [{"line": m.line, "section": m.section, "why": m.why} for m in result.unmapped],
        "flattened": outline.flattened,
        "plain_text": outline.plain,
        "truncated": result.truncated,
    }
    return Imported(render(result, header), summary)


__all__ = ["Imported", "convert"]
