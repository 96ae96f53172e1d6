"""The context mappings a template reads, without Jinja2: a runbook whose strings hold no template
builds them and never loads Jinja2 (environment.py is imported at the first template)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class Named(dict[str, Any]):
    """A context mapping that knows its dotted name, so errors say `vars.prot`, not `dict object`."""

    def __init__(self, label: str, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self.label = label


class Pending:
    """Plan mode: a value only known at run time (a step output). Shown, never invented."""

    def __init__(self, label: str) -> None:
        self._label = label

    def __getattr__(self, name: str) -> Pending:
        if name.startswith("_"):  # dunder probes (__html__, copy, ...) must not see a value
            raise AttributeError(name)
        return Pending(f"{self._label}.{name}")

    def __getitem__(self, key: Any) -> Pending:
        return Pending(f"{self._label}[{key!r}]")

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __str__(self) -> str:
        return f"⟨{self._label}⟩"

    __repr__ = __str__
