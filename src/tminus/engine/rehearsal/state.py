"""What a rehearsal fingerprints to prove the state is back: every `fingerprint` step of the runbook
(its url, tables and include_tminus) and every database a `migrate` or `backup` step names (all its
tables), rendered with the environment's variables. A URL that needs a step's outputs cannot be
known before the run: that source is skipped, with a note saying so.

Fingerprints go through tminus.db.fingerprint; two are compared with its `differences`, each
difference as text ("column notes.extra is new (not in the earlier fingerprint)").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tminus.engine.context import Options, build_templater
from tminus.errors import TemplateError, TminusError
from tminus.runbook.document import RunbookDocument
from tminus.templating.masking import hide_url_passwords


@dataclass(frozen=True)
class Source:
    name: str  # the step key it comes from
    url: str  # rendered, resolved against the runbook's folder (never shown: `masked` is)
    masked: str
    tables: tuple[str, ...] | None  # None: every table
    include_tminus: bool
    origin: str  # fingerprint | migrate | backup

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.masked, "tables": list(self.tables) if self.tables else None,
                "source": self.origin}


@dataclass
class Sources:
    found: list[Source] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # sources skipped, and why


@dataclass
class Snapshot:
    prints: dict[str, Any] = field(default_factory=dict)  # source name -> its fingerprint
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def sources(doc: RunbookDocument, opts: Options) -> Sources:
    """Every database the rehearsal fingerprints, once each (the same URL and tables once)."""
    from tminus.db import pgtools

    facts = {"environment": opts.environment, "runbook": doc.runbook.name, "operator": opts.operator}
    templater = build_templater(doc, opts, facts)
    out, seen = Sources(), set()
    for step in doc.runbook.all_steps():
        spec: Any = step.fingerprint or step.migrate or step.backup
        if spec is None:
            continue
        origin = "fingerprint" if step.fingerprint is not None else "migrate" if step.migrate is not None else "backup"
        try:
            url = templater.render(spec.url).strip()
            resolved = pgtools.resolve_url(url, doc.path.parent.resolve())
            # table names are templates too ("{{ vars.schema }}.greeting"), rendered as the step renders them
            tables = tuple(templater.render(t).strip() for t in step.fingerprint.tables) \
                if step.fingerprint is not None and step.fingerprint.tables else None
        except TemplateError as exc:
            out.notes.append(f"{step.key}: its url or tables are known only during the run, not fingerprinted ({exc})")
            continue
        except TminusError as exc:  # not a database URL tminus can fingerprint
            out.notes.append(f"{step.key}: not fingerprinted: {hide_url_passwords(str(exc))}")
            continue
        include = bool(step.fingerprint.include_tminus) if step.fingerprint is not None else False
        if (resolved, tables, include) in seen:
            continue
        seen.add((resolved, tables, include))
        out.found.append(Source(step.key, resolved, templater.masker.mask(pgtools.mask_url(url)), tables, include,
                                origin))
    return out


def take(found: list[Source], base_dir: Any) -> Snapshot:
    """Fingerprint every source now; one that cannot be read is an error, not a crash."""
    from tminus.db.fingerprint import fingerprint

    snap, began = Snapshot(), time.monotonic()
    for source in found:
        try:
            snap.prints[source.name] = fingerprint(source.url, list(source.tables) if source.tables else None,
                                                   base_dir=base_dir, include_tminus=source.include_tminus)
        except TminusError as exc:
            snap.errors.append(f"{source.name} ({source.masked}): {hide_url_passwords(str(exc))}")
    snap.seconds = time.monotonic() - began
    return snap


def compare(found: list[Source], before: Snapshot, after: Snapshot, *, expected: bool = False) -> dict[str, Any]:
    """The comparison a cycle records: equal, each difference (prefixed by its source when there
    are several), whether differences are expected (after a point of no return), errors."""
    from tminus.db.fingerprint import differences

    diffs: list[str] = []
    for source in found:
        a, b = before.prints.get(source.name), after.prints.get(source.name)
        if a is None or b is None:
            continue
        prefix = f"{source.name}: " if len(found) > 1 else ""
        diffs += [f"{prefix}{d}" for d in differences(a, b)]
    errors = list(dict.fromkeys([*before.errors, *after.errors]))
    compared = any(s.name in before.prints and s.name in after.prints for s in found)
    return {"equal": (not diffs) if compared else None, "differences": diffs, "expected": bool(diffs) and expected,
            "errors": errors, "sources": [s.describe() for s in found]}


__all__ = ["Snapshot", "Source", "Sources", "compare", "sources", "take"]
