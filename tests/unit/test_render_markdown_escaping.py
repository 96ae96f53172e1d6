"""The Markdown report's escaping (reports/render_markdown.py): recorded text stays text, whatever it
holds, checked by rendering it with a CommonMark parser with GFM tables."""

from __future__ import annotations

import re
from html import escape
from typing import Any

import pytest
from markdown_it import MarkdownIt

from tminus.reports.render_markdown import cell, code, fenced, text

HOSTILE = [
    "<b>bold</b> & <script>alert(1)</script>",
    "**strong** _em_ ~~gone~~ `tick` [link](http://evil) ![img](http://evil/x.png)",
    "a | b || c \\| d",
    "# heading",
    "- item",
    "1. item",
    "+ item",
    "> quote",
    "$x^2$ and $$y$$",
    "&amp; &lt;b&gt; &#60;",
    "trailing backslash \\",
    "line one\nline two\r\n# three",
    "nul\x00 bell\x07 esc\x1b[31m",
]


def html(markdown: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def _shown(value: str) -> str:
    """What a reader must see: the value as text (control characters replaced, lines joined)."""
    value = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "\ufffd", value)
    return " ".join(value.replace("\r\n", "\n").split("\n")).strip()


@pytest.mark.parametrize("value", HOSTILE)
def test_text_renders_as_the_value_itself(value: str) -> None:
    out = html(f"Name: {text(value)}")
    assert out == f"<p>Name: {escape(_shown(value), quote=False)}</p>\n".replace('"', "&quot;")


@pytest.mark.parametrize("value", HOSTILE)
def test_text_at_the_start_of_a_line_or_heading_stays_a_paragraph(value: str) -> None:
    assert html(text(value)).startswith("<p>")
    out = html(f"#### {text(value)}")
    assert out == f"<h4>{escape(_shown(value), quote=True).replace('&#x27;', chr(39))}</h4>\n"


@pytest.mark.parametrize("value", HOSTILE)
def test_a_cell_holds_its_value_in_one_cell(value: str) -> None:
    out = html(f"| a | b |\n|---|---|\n| {cell(value)} | {code(value, True)} |\n")
    cells = re.findall(r"<td>(.*?)</td>", out, re.S)
    assert len(cells) == 2
    lines = [_shown(x) for x in value.replace("\r\n", "\n").split("\n")]
    assert cells[0] == "<br>".join(escape(x).replace("&#x27;", "'") for x in lines)


@pytest.mark.parametrize("body", [
    "```\n# not a heading\n```",
    "````````\n<script>x</script>\n",
    "~~~\nunclosed tilde",
    "ends with a fence\n```",
    "```` in the middle ```` and ``` ` ``",
])
def test_a_fenced_block_cannot_be_closed_by_its_body(body: str) -> None:
    out = html(fenced(body) + "\n\nafter")
    shown = escape(body.rstrip("\n"), quote=True).replace("&#x27;", "'")
    assert out == f"<pre><code>{shown}\n</code></pre>\n<p>after</p>\n"


def test_code_is_literal_and_falls_back_to_text_when_it_cannot_be_a_span() -> None:
    assert code("phases[0].steps[1]") == "`phases[0].steps[1]`"
    assert html(code("a<b>*c*")) == "<p><code>a&lt;b&gt;*c*</code></p>\n"
    assert html(code("a`b")) == "<p>a`b</p>\n"
    assert html(code("")) == ""


def _sparse_report() -> Any:
    """A report with what a real run leaves empty left empty: an unfinished run (no end, no exit
    code), a phase over budget, a step still running, an unanswered approval, a deadline exceeded, a
    chain not checked, nothing of the monitor."""
    from tminus.reports.run_report import (
        ApprovalReport,
        ChainVerdict,
        Expectation,
        RollbackReport,
        RunReport,
        SectionReport,
        StepReport,
    )

    step = StepReport(key="phases[0].steps[0]", name=None, kind=None, section="phase:p", section_kind="phase",
                      section_name="p", status="running", check=False, location=None, start=None, end=None,
                      duration=None, attempts=2, message="", point_of_no_return=True,
                      expectations=[Expectation("status == 200", None, None, None, "")])
    phase = SectionReport(id="phase:p", kind="phase", name="p", status="running", start=0.0, end=None,
                          planned_start=0.0, budget=60.0, actual=95.5, over_budget=35.5, steps=[step])
    undo = SectionReport(id="undo:p", kind="undo", name="p", status="failed", start=96.0, end=97.0,
                         planned_start=None, budget=None, actual=None, over_budget=None)
    return RunReport(
        run_id="r1", kind="run", runbook="rb", runbook_path="rb.yaml", content_hash="h", environment="prod",
        operator="op", host=None, release=None, status="running", exit_code=None, reason=None, summary="",
        causes=[], started_at=None, finished_at=None, t0=None, duration=None, sections=[phase, undo],
        approvals=[ApprovalReport(None, None, None, None, None, None, None, None)], decision=None,
        rollback=RollbackReport(reason="", state=None, start=None, end=None, plan=[]), monitor=None,
        chain=ChainVerdict(None, ["the ledger is keyed: set TMINUS_LEDGER_KEY"]),
        deadlines=[{"what": "phase p", "deadline": 60.0, "action": "rollback", "state": "exceeded",
                    "actual": 95.5, "exceeded_by": 35.5, "alerted": True, "outcome": None, "answered_by": None}],
        point_of_no_return="phases[0].steps[0]", notes=["a note | with a pipe"])


def test_a_sparse_report_renders_every_part_without_inventing_values() -> None:
    from tminus.reports.render_markdown import render_markdown

    md = render_markdown(_sparse_report())
    assert md == render_markdown(_sparse_report())
    out = html(md)
    assert "<h1>rb: RUNNING</h1>" in out and "(exit \u2013)" in out
    assert "<strong>over budget by 35.5s</strong>" in out and "<strong>point of no return</strong>" in out
    assert "↩ rollback" in out and "2 attempts" in out and "\u2013 not judged" in out
    assert "not answered" in out and "<h2>Deadlines</h2>" in out and "<strong>35.5s</strong>" in out
    assert "<li>a note | with a pipe</li>" in out and "Nothing to undo." in out
    assert "not checked." in out and "set TMINUS_LEDGER_KEY" in out and "<h2>Monitor</h2>" not in out
