"""Every Alembic revert proven, as SQL-file reverts are (tminus.db.migrations.proof): before a
`migrate` step upgrades with Alembic, the schema is fingerprinted (schema only, no row read) and
recorded in the ledger with the step's `revert_target` effect, before the first revision runs, so
the rollback finds it even after tminus was killed mid-upgrade. The derived revert carries it
(`schema_before`) and, once `alembic downgrade` finished, fingerprints again and compares with
proof.py's rules (a sequence's value only if it went back). Unlike a SQL-file revert, the
downgrade is committed by Alembic by then: a leftover fails the step, it cannot be rolled back.

Left out of both fingerprints: tminus's own tables (the migration lock) and `alembic_version`,
which a downgrade to base empties but does not drop. On SQLite, where a table's definition is its
CREATE text, that text is compared without identifier quotes and spacing: Alembic's batch mode
rebuilds a table (`CREATE TABLE "accounts" (...`) that is otherwise the one it replaced.
"""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tminus.db.fingerprint import SCHEMA_KEY, Difference, Fingerprint
from tminus.db.fingerprint.diff import part_of, short
from tminus.db.migrations.proof import leftovers, schema_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from tminus.db.migrations.store import Tables

VERSION_TABLE = "alembic_version"


def encode(fp: Fingerprint) -> str:
    """The fingerprint as the derived revert's `schema_before`: compressed, and no template syntax
    (`{{`) a step's config could trip over when it is rendered."""
    raw = json.dumps(fp, sort_keys=True, default=str).encode()
    return "z:" + base64.b64encode(zlib.compress(raw, 9)).decode()


def decode(text: str) -> Fingerprint:
    if not text.startswith("z:"):
        raise ValueError("schema_before is not a fingerprint recorded by tminus")
    result: Fingerprint = json.loads(zlib.decompress(base64.b64decode(text[2:])))
    return result


def take(engine: Engine, tables: Tables) -> tuple[Fingerprint, float]:
    """The schema as it is now, without Alembic's and tminus's bookkeeping; the milliseconds it took."""
    start = time.perf_counter()
    with engine.connect() as conn:
        fp = schema_of(conn)
        if conn.dialect.name == "sqlite":
            _plain_sql(fp, conn.exec_driver_sql("SELECT type, name, sql FROM sqlite_master").fetchall())
        conn.rollback()
    fp = json.loads(json.dumps(_without(fp, _bookkeeping(tables)), default=str))  # as the ledger holds it
    return fp, (time.perf_counter() - start) * 1000


def check(engine: Engine, tables: Tables, before: Fingerprint) -> tuple[list[Difference], float]:
    """What the downgrade left different from `before` (empty: proven), and the milliseconds."""
    after, ms = take(engine, tables)
    return leftovers(before, after), ms


_QUOTES = re.compile(r'["`\[\]]')
_SPACE = re.compile(r"\s*([(),])\s*|\s+")


def _plain_sql(fp: Fingerprint, master: Sequence[Any]) -> None:
    """Each SQLite object's CREATE text without identifier quotes and with uniform spacing."""
    schema = fp.get(SCHEMA_KEY, {})
    for typ, name, sql in master:
        attrs = schema.get(typ, {}).get(name)
        if attrs is not None and sql is not None and "sql" in attrs:
            plain = _SPACE.sub(lambda m: m.group(1) or " ", _QUOTES.sub("", sql)).strip()
            attrs["sql"] = short(plain)


def _bookkeeping(tables: Tables) -> set[str]:
    names = {VERSION_TABLE, tables.main, tables.log, tables.progress, tables.schema, tables.lock}
    return names | {n.rsplit(".", 1)[-1] for n in names}


def _without(fp: Fingerprint, names: set[str]) -> Fingerprint:
    """`fp` without `names` and everything that belongs to them (columns, indexes, constraints...)."""
    result: Fingerprint = {k: v for k, v in fp.items() if k not in names}
    schema: dict[str, dict[str, Any]] = fp.get(SCHEMA_KEY, {})
    if schema:
        result[SCHEMA_KEY] = {kind: {name: attrs for name, attrs in objects.items()
                                     if not part_of(kind, name, attrs or {}, names)}
                              for kind, objects in schema.items()}
    return result
