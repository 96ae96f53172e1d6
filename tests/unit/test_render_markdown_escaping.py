"""The Markdown report's escaping (reports/render_markdown.py): recorded text stays text, whatever it
holds, checked by rendering it with a CommonMark parser with GFM tables."""

from __future__ import annotations

import re
from html import escape

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
