"""A runbook's YAML read with ruamel.yaml (pure Python, YAML 1.2): the reference reader.

It reads every text the fast reader (runbook/yamlread.py) declines: anything refused, any syntax
error, duplicate keys, directives, the rare characters and scalars the fast reader leaves alone;
so each of those problems keeps its one wording and position. tests/unit/test_yaml_differential.py
holds the fast reader to the same data, positions and quoted strings as this one on every runbook
in the repository and on a corpus of tricky YAML. Imported only when needed: ruamel costs ~10 ms.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from tminus.errors import Location, Problem, RunbookError
from tminus.runbook.document import PathKey, SourceMap, path_to_str
from tminus.runbook.yamlguard import load as guarded_load
from tminus.runbook.yamlguard import yaml_problem


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True  # so the source map knows which strings were written in quotes
    return yaml


def parse(text: str, source: SourceMap) -> tuple[Any, list[Problem]]:
    """The document as plain Python, every key's and item's position recorded in `source`."""
    try:
        tree = guarded_load(_yaml(), text, source.file)  # limits, tags, merge keys: refused as read
    except DuplicateKeyError:
        raise RunbookError(_duplicate_keys(text, source.file)) from None
    except MarkedYAMLError as exc:
        raise RunbookError([yaml_problem(exc, source.file)]) from None
    problems: list[Problem] = []
    return _plain(tree, (), source, problems, item=False), problems


def _duplicate_keys(text: str, file: str) -> list[Problem]:
    """Every duplicate key with both positions (ruamel stops at the first one)."""
    problems: list[Problem] = []

    def walk(node: Node, path: PathKey) -> None:
        if isinstance(node, MappingNode):
            first: dict[Any, Node] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, ScalarNode) else repr(key_node.value)
                if key in first:
                    m0, m1 = first[key].start_mark, key_node.start_mark
                    problems.append(Problem(
                        f"duplicate key '{key}' (first at line {m0.line + 1}, column {m0.column + 1})",
                        Location(file, m1.line + 1, m1.column + 1),
                        "a mapping holds each key once: remove or rename one of them",
                        path_to_str((*path, key)),
                    ))
                else:
                    first[key] = key_node
                walk(value_node, (*path, key))
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    try:
        root = _yaml().compose(text)
    except MarkedYAMLError as exc:
        return [yaml_problem(exc, file)]
    if root is not None:
        walk(root, ())
    return problems


def _plain(value: Any, path: PathKey, source: SourceMap, problems: list[Problem], *, item: bool) -> Any:
    """Round-trip YAML -> plain Python, recording the position of every key and list item."""
    if isinstance(value, CommentedMap):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            key = _plain(k, path, source, [], item=False)
            pos = value.lc.data.get(k)  # every key has one: merge keys (<<) are refused by yamlguard
            if pos is not None:
                source.positions[(*path, key)] = (pos[0] + 1, pos[1] + 1)
            out[key] = _plain(v, (*path, key), source, problems, item=False)
        return out
    if isinstance(value, CommentedSeq):
        items: list[Any] = []
        for i, v in enumerate(value):
            pos = value.lc.data.get(i)
            if pos is not None:
                source.positions[(*path, i)] = (pos[0] + 1, pos[1] + 1)
            items.append(_plain(v, (*path, i), source, problems, item=True))
        return items
    if isinstance(value, str):
        if item and isinstance(value, DoubleQuotedScalarString | SingleQuotedScalarString):
            source.quoted.add(path)
        return str(value)
    if isinstance(value, bool | ScalarBoolean):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dt.date):  # YAML timestamps: keep them as the text users wrote
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if value is None:
        return None
    problems.append(Problem(f"unsupported YAML value of type {type(value).__name__}", source.locate(path),
                            "use strings, numbers, booleans, lists and mappings", path_to_str(path)))
    return None
