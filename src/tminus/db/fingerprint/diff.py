"""The fingerprint's shape, its per-kind digests, and the named differences between two of them.

A fingerprint is `{table: {"rows": int, "checksum": hex}, ..., "@schema": {kind: {name: attrs}}}`:
the per-table row entries keep the original format (so `steps.x.fingerprint.orders.rows` and
older saved fingerprints still read), and the one reserved key `@schema` (never a plain table
name) holds every schema object, by kind (`column`, `index`, `sequence`...), each a flat mapping of
attributes (`type`, `definition`, `last_value`...), so a difference names kind, object and attribute.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

SCHEMA_KEY = "@schema"
LONG_TEXT = 160  # longer attribute values are stored as a digest (function bodies, view definitions)

Fingerprint = dict[str, dict[str, Any]]


def tables_of(fp: Fingerprint) -> dict[str, dict[str, Any]]:
    """The per-table row entries, without the schema."""
    return {k: v for k, v in fp.items() if k != SCHEMA_KEY}


def short(value: Any) -> Any:
    """Long text as `sha256:<16 hex> (<n> chars)`: it is compared, not read."""
    if isinstance(value, str) and len(value) > LONG_TEXT:
        return f"sha256:{hashlib.sha256(value.encode()).hexdigest()[:16]} ({len(value)} chars)"
    return value


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def digests(fp: Fingerprint) -> dict[str, str]:
    """One short digest per object kind, `rows` for the table contents, `all` for the whole fingerprint."""
    result = {"rows": _digest(tables_of(fp))}
    for kind, objects in sorted(fp.get(SCHEMA_KEY, {}).items()):
        result[kind] = _digest(objects)
    result["all"] = _digest(result)
    return result


@dataclass(frozen=True)
class Difference:
    """One difference: `kind` (table, column, index...), `name`, what `change`d (missing, new, or an
    attribute name), and the values before and after."""

    kind: str
    name: str
    change: str
    before: Any = None
    after: Any = None

    def __str__(self) -> str:
        if self.change == "missing":
            return f"{self.kind} {self.name} missing after"
        if self.change == "new":
            return f"{self.kind} {self.name} is new (not in the earlier fingerprint)"
        if self.kind == "table" and self.change == "rows":
            return f"table {self.name}: {self.before} rows vs {self.after} rows"
        if self.kind == "table" and self.change == "checksum":
            return f"table {self.name}: content differs ({self.before} rows, same count)"
        a, b = self.before, self.after
        if _long(a) or _long(b):
            return f"{self.kind} {self.name}: {self.change} changed"
        return f"{self.kind} {self.name}: {self.change} {_show(a)} -> {_show(b)}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "change": self.change, "before": self.before,
                "after": self.after, "message": str(self)}


def _long(value: Any) -> bool:
    return isinstance(value, str) and (len(value) > 100 or "\n" in value or value.startswith("sha256:"))


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def differences(before: Fingerprint, after: Fingerprint) -> list[Difference]:
    """Every difference, rows first then schema kinds, each sorted by name.

    A fingerprint from before the schema was recorded (no `@schema`) is compared on rows only.
    """
    diffs: list[Difference] = []
    ta, tb = tables_of(before), tables_of(after)
    gone_or_new = set(ta) ^ set(tb)  # named once as a table, not again through each column
    for table in sorted(set(ta) | set(tb)):
        a, b = ta.get(table), tb.get(table)
        if b is None:
            diffs.append(Difference("table", table, "missing"))
        elif a is None:
            diffs.append(Difference("table", table, "new"))
        elif a.get("rows") != b.get("rows"):
            diffs.append(Difference("table", table, "rows", a.get("rows"), b.get("rows")))
        elif a.get("checksum") != b.get("checksum") and SCHEMA_KEY in before:
            diffs.append(Difference("table", table, "checksum", a.get("rows"), b.get("rows")))
    if SCHEMA_KEY not in before or SCHEMA_KEY not in after:
        return diffs
    sa, sb = before[SCHEMA_KEY], after[SCHEMA_KEY]
    for kind in sorted(set(sa) | set(sb)):
        oa, ob = sa.get(kind, {}), sb.get(kind, {})
        for name in sorted(set(oa) | set(ob)):
            if part_of(kind, name, oa.get(name) or ob.get(name) or {}, gone_or_new):
                continue
            if name not in ob:
                diffs.append(Difference(kind, name, "missing"))
            elif name not in oa:
                diffs.append(Difference(kind, name, "new"))
            else:
                xa, xb = oa[name], ob[name]
                for attr in sorted(set(xa) | set(xb)):
                    if xa.get(attr) != xb.get(attr):
                        diffs.append(Difference(kind, name, attr, xa.get(attr), xb.get(attr)))
    return diffs


def part_of(kind: str, name: str, attrs: dict[str, Any], tables: set[str]) -> bool:
    """Whether the object belongs to one of `tables` (a table already reported missing or new)."""
    if not tables:
        return False
    if kind == "table":
        return name in tables
    if kind in _TABLE_SCOPED:
        return any(name.startswith(f"{t}.") for t in tables)
    return attrs.get("table") in tables


_TABLE_SCOPED = ("column", "constraint", "trigger", "policy")


def compare(before: Fingerprint, after: Fingerprint) -> list[str]:
    """Human-readable differences between two fingerprints; empty when they are equal."""
    return [str(d) for d in differences(before, after)]
