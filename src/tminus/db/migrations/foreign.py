"""The rows of an adopted table (adopt.py): read through the mapping and matched to migration files,
written in the table's own shape (only the mapped columns).

How a recorded version matches a file: by its leading number. `1`, `001`, `0001`,
`0001_create_users` and `0001_create_users.sql` all match `0001_create_users.sql` (numbers compare as
integers, so `20240101120000` matches `20240101120000_x.sql`); a value that is not a number,
optionally followed by `_name` and `.sql`, matches nothing and is reported as an unknown version.
A recorded name that differs from the file's is reported as a rename. A row tminus writes copies
the format of the latest row already there (file name, `NNNN_name`, zero-padded or plain number;
a number in an integer column); in an empty table, the file's version as written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
import zlib
from collections import Counter
from typing import TYPE_CHECKING, Any

from tminus.db.migrations import store
from tminus.db.migrations.adopt import Column
from tminus.db.migrations.files import MigrationFile, checksum, normalize

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from tminus.db.migrations.store import AppliedRow

_RECORDED = re.compile(r"^(?P<num>\d+)(?:_(?P<name>[A-Za-z0-9_\-]+?))?(?:\.sql)?$")
RULE = ("versions match files by number: 1, 0001, 0001_name and 0001_name.sql all match"
        " 0001_name.sql")


def parse(value: object) -> tuple[int, str | None] | None:
    """(number, name or None) of a recorded version; None when it is not of a matching form."""
    m = _RECORDED.match(str(value).strip())
    if m is None or len(m.group("num")) > 64:  # no file has such a version (and int() has limits)
        return None
    return int(m.group("num")), m.group("name")


def _quote(conn: Connection, name: str) -> str:
    prep = conn.dialect.identifier_preparer
    return ".".join(prep.quote(part) for part in name.split("."))


class Foreign:
    """One adopted table: `mapped` is notion -> its column (adopt.resolve)."""

    def __init__(self, table: str, mapped: dict[str, Column]):
        self.table = table
        self.mapped = mapped

    def column(self, notion: str) -> str:
        return self.mapped[notion].name

    def _select(self, conn: Connection) -> list[dict[str, Any]]:
        notions = list(self.mapped)
        cols = ", ".join(_quote(conn, self.mapped[n].name) for n in notions)
        result = conn.exec_driver_sql(f"SELECT {cols} FROM {_quote(conn, self.table)}")
        return [dict(zip(notions, row, strict=True)) for row in result]

    def rows(self, conn: Connection, files: list[MigrationFile], side: list[AppliedRow]) -> list[AppliedRow]:
        """The applied versions as the table records them, each matched to its file; what tminus
        recorded itself (its checksum, who and how long) from its side table. Unknown versions first,
        so the current version is the highest known one."""
        from tminus.db.migrations.store import AppliedRow

        by_number = {int(f.version): f for f in files}
        side_by = {r.version: r for r in side}
        out = []
        for raw in self._select(conn):
            recorded = str(raw["version"]).strip()
            parsed = parse(recorded)
            mf = by_number.get(parsed[0]) if parsed else None
            version = mf.version if mf else recorded
            own = side_by.get(version) if mf else None
            theirs = raw.get("checksum")
            out.append(AppliedRow(
                version=version,
                name=str(raw.get("name") or (own.name if own else "") or (mf.name if mf else "")),
                checksum=own.checksum if own else ("" if theirs is None else str(theirs).strip()),
                applied_at=str(raw["applied_at"]) if raw.get("applied_at") is not None else (
                    own.applied_at if own else ""),
                duration_ms=own.duration_ms if own else None,
                operator=own.operator if own else "", host=own.host if own else "",
                recorded=recorded,
            ))
        known = {f.version for f in files}
        return sorted(out, key=lambda r: (r.version in known, r.version))

    def insert(self, conn: Connection, mf: MigrationFile) -> None:
        """A row for `mf`, in the table's shape, inside the caller's transaction."""
        values: dict[str, Any] = {"version": self._version_value(conn, mf)}
        if "name" in self.mapped:
            values["name"] = mf.name
        if "applied_at" in self.mapped:
            values["applied_at"] = _now_for(self.mapped["applied_at"])
        if "checksum" in self.mapped:
            values["checksum"] = checksum_for(mf, self.mapped["checksum"])
        cols = ", ".join(_quote(conn, self.mapped[n].name) for n in values)
        marks = ", ".join(f":{n}" for n in values)
        from sqlalchemy import text

        conn.execute(text(f"INSERT INTO {_quote(conn, self.table)} ({cols}) VALUES ({marks})"), values)

    def delete(self, conn: Connection, version: str) -> None:
        """Every row recording `version` (in whatever format), inside the caller's transaction."""
        from sqlalchemy import text

        col = _quote(conn, self.column("version"))
        raws = [r[0] for r in conn.exec_driver_sql(f"SELECT {col} FROM {_quote(conn, self.table)}")]
        for raw in raws:
            parsed = parse(raw)
            if parsed is not None and parsed[0] == int(version):
                conn.execute(text(f"DELETE FROM {_quote(conn, self.table)} WHERE {col} = :v"), {"v": raw})

    def _version_value(self, conn: Connection, mf: MigrationFile) -> object:
        column = self.mapped["version"]
        if column.integer:
            return int(mf.version)
        col = _quote(conn, column.name)
        latest: tuple[int, str] | None = None
        for (raw,) in conn.exec_driver_sql(f"SELECT {col} FROM {_quote(conn, self.table)}"):
            parsed = parse(raw)
            if parsed is not None and (latest is None or parsed[0] > latest[0]):
                latest = (parsed[0], str(raw).strip())
        if latest is None:
            return mf.version
        text = latest[1]
        if text.endswith(".sql"):
            return mf.path.name
        if "_" in text:
            return f"{mf.version}_{mf.name}"
        return mf.version if len(text) == len(mf.version) else str(int(mf.version))


def _now_for(column: Column) -> object:
    if column.temporal:
        return dt.datetime.now(dt.UTC)
    if column.integer:
        return int(time.time())
    return store.now()


def flyway_crc32(text: str) -> int:
    """Flyway's checksum: CRC32 over the lines without their endings (BOM dropped), signed 32-bit."""
    crc = 0
    for line in re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff")):
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def _forms(mf: MigrationFile) -> set[str]:
    raw = mf.text.encode("utf-8")
    crc = flyway_crc32(mf.text)
    return {checksum(mf.text), hashlib.sha256(raw).hexdigest(), hashlib.md5(raw).hexdigest(),
            hashlib.md5(normalize(mf.text).encode("utf-8")).hexdigest(), str(crc), str(crc & 0xFFFF_FFFF)}


def same_checksum(mf: MigrationFile, value: str) -> bool:
    """Whether a recorded checksum is the file's, in any form tools write: tminus's (sha256 of the
    normalized text), sha256 or md5 of the file, Flyway's CRC32."""
    return value.strip().lower() in _forms(mf)


def checksum_for(mf: MigrationFile, column: Column) -> object:
    """What tminus writes in a mapped checksum column: Flyway's CRC32 in an integer column, md5 where
    sha256 does not fit, else tminus's own."""
    if column.integer:
        return flyway_crc32(mf.text)
    if column.length is not None and column.length < 64:
        return hashlib.md5(mf.text.encode("utf-8")).hexdigest()
    return checksum(mf.text)


def problems(rows: list[AppliedRow], by_version: dict[str, MigrationFile], table: str) -> list[str]:
    """What only an adopted table can say: a version recorded twice, a recorded name not the file's."""
    out = []
    counts = Counter(r.version for r in rows if r.version in by_version)
    for version, n in sorted(counts.items()):
        if n > 1:
            as_ = ", ".join(repr(r.recorded) for r in rows if r.version == version)
            out.append(f"version {version} is recorded {n} times in {table} (as {as_}); delete the extra rows")
    for r in rows:
        mf = by_version.get(r.version)
        parsed = parse(r.recorded) if r.recorded is not None else None
        if mf is not None and parsed is not None and parsed[1] is not None and parsed[1] != mf.name:
            out.append(f"{table} records {r.recorded!r} but the file of version {r.version} is {mf.path.name};"
                       f" rename the file back, or update the row ({RULE})")
    return out
