"""`fingerprint`: schema objects by kind, per-table row counts and content checksums; with
`compare_to`, a check naming each difference."""

from __future__ import annotations

import ast
import json
from typing import Any

from tminus.kinds.base import SQLALCHEMY_IMPORTS, Effect, Observation, StepContext
from tminus.kinds.registry import register
from tminus.runbook.models import FingerprintSpec


def describe(c: FingerprintSpec, step: object, nested: object) -> str:
    from tminus.db import pgtools

    tables = ", ".join(c.tables) if c.tables else "every table"
    compare = " and compare with a recorded fingerprint" if c.compare_to is not None else ""
    return f"fingerprint {tables} of {pgtools.mask_url(c.url)}{compare}"


@register("fingerprint", config=FingerprintSpec, effect=Effect.NONE, describe=describe,
          queries=("fingerprint", "tables", "rows", "digests", "diff"),
          imports=(*SQLALCHEMY_IMPORTS, "tminus.db.fingerprint"))
def execute(config: FingerprintSpec, ctx: StepContext) -> Observation:
    from tminus.db import pgtools
    from tminus.db.fingerprint import differences, digests, fingerprint, tables_of
    from tminus.errors import TminusError

    evidence: dict[str, Any] = {"url": pgtools.mask_url(config.url)}
    expected, problem = _expected(config.compare_to)
    if problem:
        return Observation(error=problem, evidence=evidence)
    try:
        fp = fingerprint(pgtools.resolve_url(config.url, ctx.base_dir), config.tables, base_dir=ctx.base_dir,
                         include_tminus=config.include_tminus)
    except TminusError as exc:
        return Observation(error=str(exc), evidence=evidence)
    tables = tables_of(fp)
    sums = digests(fp)
    values: dict[str, Any] = {"fingerprint": fp, "tables": len(tables), "digests": sums,
                              "rows": sum(int(t["rows"]) for t in tables.values())}
    outputs: dict[str, Any] = {"fingerprint": fp, "digests": sums}
    evidence.update(fingerprint=fp, digests=sums)
    failures: list[str] = []
    if expected is not None:
        found = differences(expected, fp)
        failures = [str(d) for d in found]
        values["diff"] = outputs["diff"] = failures
        evidence["differences"] = [d.as_dict() for d in found]
    return Observation(values=values, outputs=outputs, evidence=evidence, failures=failures)


def _expected(compare_to: Any) -> tuple[dict[str, Any] | None, str | None]:
    """`compare_to` as a fingerprint dict; templates render to strings, so JSON text is parsed."""
    if compare_to is None or compare_to == "":
        return None, None
    value = compare_to
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:  # `{{ steps.x.fingerprint }}` without `| tojson` renders as a Python dict literal
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                value = None
        if value is None:
            return None, (f"compare_to is not a fingerprint: expected a mapping or its JSON text "
                          f"(e.g. '{{{{ steps.before.fingerprint | tojson }}}}'), got {compare_to[:80]!r}")
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        return None, ("compare_to is not a fingerprint: expected {table: {rows, checksum}} as made by a "
                      "fingerprint step, e.g. '{{ steps.before.fingerprint | tojson }}'")
    return value, None
