"""Where a runbook's steps may look: its own folder and the roots it declares (`roots:`).

Shared by validation (a literal path is checked before a run) and the kinds (the rendered path is
checked again, symlinks resolved, just before the step looks at it).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path


class OutsideRoots(ValueError):
    """A path that resolves outside the runbook's folder and every declared root."""

    def __init__(self, path: str, real: Path, allowed: tuple[Path, ...], what: str = "") -> None:
        self.path, self.real, self.allowed = path, real, allowed
        shown = f"{what} {path!r}" if what else repr(path)
        resolved = "" if str(real) == path else f" (it resolves to {real})"
        places = ", ".join(str(p) for p in allowed)
        self.reason = f"{shown} is outside the folders this runbook may use{resolved}: {places}"
        super().__init__(f"{self.reason}; {HINT}")


HINT = "declare the folder under the runbook's roots: to allow it, e.g. roots: [/var/lib/app]"


def allowed(base_dir: Path, roots: Iterable[str] = ()) -> tuple[Path, ...]:
    """The runbook's folder and each declared root (relative to that folder), symlinks resolved."""
    return tuple(_real(base_dir / r) for r in ("", *roots))


def inside(real: Path, places: tuple[Path, ...]) -> bool:
    return any(real == p or real.is_relative_to(p) for p in places)


def confine(path: str, base_dir: Path, roots: Iterable[str] = (), *, what: str = "") -> Path:
    """`path` (relative to the runbook's folder, or absolute) with symlinks resolved; raises
    OutsideRoots when it lies outside every allowed folder."""
    places = allowed(base_dir, roots)
    real = _real(base_dir / path)
    if not inside(real, places):
        raise OutsideRoots(path, real, places, what)
    return real


def glob_base(pattern: str) -> str:
    """The part of a glob before its first wildcard: the folder every match lies under."""
    fixed: list[str] = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else "."


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))
