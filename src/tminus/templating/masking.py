"""Masking: secret values become `***` in any text or structure before it is shown or stored.

Below everything that prints or records: the engine, the ledger's writers and every report use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MIN_SECRET_LENGTH = 3  # shorter values would mask innocent text everywhere ("1", "on")
MASK = "***"


class Masker:
    """Replaces secret values by `***` in any text or structure before it is shown or stored."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for v in values:
            self.add(v)

    def add(self, value: str) -> None:
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH or value in self._values:
            return
        self._values.add(value)
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def mask(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def mask_obj(self, obj: Any) -> Any:
        if self._pattern is None:  # nothing to mask: no need to copy every event's data
            return obj
        if isinstance(obj, str):
            return self.mask(obj)
        if isinstance(obj, Mapping):
            return {self.mask_obj(k): self.mask_obj(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.mask_obj(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self.mask_obj(v) for v in obj)
        return obj


__all__ = ["MASK", "MIN_SECRET_LENGTH", "Masker"]
