"""The service's releases. Each module is one version of the application code:

    VERSION      its name ("v2")
    SCHEMA       the schema version it needs (it also runs on newer, additive schemas)
    list_notes(conn) -> list of notes as dicts
    add_note(conn, data) -> the new note; raises ValueError on bad input
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

_NAME = re.compile(r"^v\d+$")


def names() -> list[str]:
    """Releases present on disk, oldest first."""
    found = [p.stem for p in Path(__file__).parent.glob("v*.py") if _NAME.match(p.stem)]
    return sorted(found, key=lambda n: int(n[1:]))


def load(name: str) -> ModuleType:
    if name not in names():
        raise LookupError(f"no release '{name}'; available: {', '.join(names())}")
    return importlib.import_module(f"releases.{name}")


def body_of(data: object) -> str:
    """The note text of a POSTed payload, validated the same way by every release."""
    body = data.get("body") if isinstance(data, dict) else None
    if not isinstance(body, str) or not body.strip():
        raise ValueError('expected a JSON object with a non-empty "body"')
    return body.strip()
