"""The imported runbook as YAML text: ruamel.yaml's commented maps, each guess an end-of-line
comment on its first key, what could not be mapped listed at the top. The text is read back and
compared with the data it was written from, so no value changes type or content on the way
(`yes`, `1.10`, `# ...`, `: `, leading spaces, tabs)."""

from __future__ import annotations

import io
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from tminus.importer.mapping import Guessed, Result

COMMENT_LEN = 160
_ODD = re.compile("[\t\r\x85\u2028\u2029]")  # YAML reads these as line breaks (or trims them) in a block
WIDTH = 1_000_000  # never fold: ruamel folds a quoted scalar at a tab, U+2028 or U+FEFF and reads back one more space


class RoundTripError(Exception):
    """The YAML written does not read back as the data (a bug of the importer)."""


def _comment(text: str) -> str:
    text = " ".join(text.split())  # one line: a newline would end the comment
    return text if len(text) <= COMMENT_LEN else text[: COMMENT_LEN - 1] + "…"


def _scalar(value: Any) -> Any:
    if isinstance(value, str) and "\n" in value and _literal_safe(value):
        return LiteralScalarString(value)
    return value


def _literal_safe(text: str) -> bool:
    """A block scalar keeps text exactly unless lines end in spaces or it has odd whitespace."""
    return not any(line != line.rstrip() for line in text.split("\n")) and not _ODD.search(text) \
        and not text.startswith((" ", "\n")) and not text.endswith("\n")


def commented(value: Any) -> Any:
    if isinstance(value, dict):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = commented(item)
        if isinstance(value, Guessed) and value:
            node.yaml_add_eol_comment("# " + _comment(value.note), next(iter(value)))
        return node
    if isinstance(value, list):
        seq = CommentedSeq()
        seq.extend(commented(item) for item in value)
        return seq
    return _scalar(value)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.width = WIDTH
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.allow_unicode = True
    return yaml


def render(result: Result, header: list[str]) -> str:
    root = commented(result.runbook)
    if header:
        root.yaml_set_start_comment("\n".join(_comment(line) for line in header))
    buffer = io.StringIO()
    _yaml().dump(root, buffer)
    text = buffer.getvalue()
    try:
        back = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise RoundTripError(f"the YAML written does not read back: {exc}") from exc
    if back != _plain(result.runbook):
        raise RoundTripError("the YAML written does not read back as the runbook it was made from")
    return text


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


__all__ = ["RoundTripError", "commented", "render"]
