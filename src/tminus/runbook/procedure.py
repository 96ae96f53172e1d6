"""The procedure hash: what a rehearsal proved, as one sha256 that survives reformatting and comments
and ignores the values of the environment a run targets.

`decision.require_rehearsal` asks "was *this* procedure rehearsed?". The file's own content hash
(document.content_hash) is too strict for that: production's `vars:` differ from staging's by design,
and a comment fixed after the rehearsal changes nothing that runs. So the hash is taken over the
validated model (defaults filled in, keys sorted) with the target environment's `vars` and
`vars_file` left out. Everything else counts: steps, undo, rules, the other environments' values.
A rehearsal records this hash for every environment the runbook names, so a later run in any of
them compares its own hash with the one recorded for it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tminus.runbook.document import RunbookDocument


def procedure_hash(doc: RunbookDocument, environment: str) -> str:
    """sha256 of the normalized runbook, `environments.<environment>.vars`/`vars_file` excluded."""
    data: dict[str, Any] = doc.runbook.model_dump(mode="json", by_alias=True)
    env = (data.get("environments") or {}).get(environment)
    if isinstance(env, dict):
        env.pop("vars", None)
        env.pop("vars_file", None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def procedure_hashes(doc: RunbookDocument, *also: str) -> dict[str, str]:
    """The hash for every environment the runbook declares (and `also`): what a rehearsal records."""
    names = dict.fromkeys([*doc.runbook.environments, *also])
    return {name: procedure_hash(doc, name) for name in names}


__all__ = ["procedure_hash", "procedure_hashes"]
