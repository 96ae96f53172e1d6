"""`run` with `output: json`: stdout read strictly as one JSON document, or a clear refusal.

The refusal says where the text stops being JSON (line, column, character) and shows the text
around that place, secrets masked before it is cut. Stdout larger than JSON_LIMIT is refused
unparsed: a parsed value is offered to every later template and stored with the step's outputs.
"""

from __future__ import annotations

import json
from typing import Any

from tminus.templating.masking import Masker

JSON_LIMIT = 1_000_000  # characters; a `file` step's `content` has the same bound (kinds/file.py)
_EXCERPT = 60  # characters shown on each side of the error
_MARGIN = 1024  # masked around the excerpt, so a secret reaching into it is masked whole


class NotJson(ValueError):
    """Stdout that `output: json` cannot use; the message is masked and says where and why."""


def parse_output(stdout: str, masker: Masker) -> Any:
    """The JSON value stdout holds (surrounding whitespace allowed), or NotJson."""
    if len(stdout) > JSON_LIMIT:
        raise NotJson(f"stdout is {len(stdout):,} characters; output: json reads at most {JSON_LIMIT:,} "
                      f"(print a smaller document, or leave output as text)")
    if not stdout.strip():
        raise NotJson("stdout is empty; output: json expects one JSON document")
    try:
        return json.loads(stdout)
    except RecursionError:
        raise NotJson("stdout is JSON nested too deeply to read (over ~1,000 levels)") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno} (character {exc.pos + 1:,})"
        raise NotJson(f"stdout is not JSON (output: json): {exc.msg} at {where}: "
                      f"{excerpt(stdout, exc.pos, masker)}") from None


def excerpt(text: str, pos: int, masker: Masker) -> str:
    """The text around `pos`, masked before it is cut, with ⟨here⟩ at `pos`; one line, quoted."""
    start, end = max(0, pos - _EXCERPT - _MARGIN), min(len(text), pos + _EXCERPT + _MARGIN)
    masked = masker.mask(text[start:end])
    mark = min(len(masker.mask(text[start:pos])), len(masked))  # where pos lands once masked
    before = masked[max(0, mark - _EXCERPT):mark]
    after = masked[mark:mark + _EXCERPT]
    shown = (("..." if mark > _EXCERPT or start > 0 else "") + before + "⟨here⟩" + after
             + ("..." if mark + _EXCERPT < len(masked) or end < len(text) else ""))
    return json.dumps(shown, ensure_ascii=False)


__all__ = ["JSON_LIMIT", "NotJson", "excerpt", "parse_output"]
