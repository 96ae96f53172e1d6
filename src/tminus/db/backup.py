"""Backups that are proven restorable: dump, checksum, check readable, optionally drill a restore.

PostgreSQL: `pg_dump --format=custom`. SQLite: the online backup API (consistent while others
write). The file is written as `<name>.partial` and renamed only once it is verified, so a
crashed or failed backup never looks like a good one; `<file>.sha256` (sha256sum format) is the
mark of a verified backup, which rotation and restore rely on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tminus.db import pgtools
from tminus.db.fingerprint import compare, pg_fingerprint, sqlite_fingerprint
from tminus.errors import TminusError

CHUNK = 1 << 20
DRILL_PREFIX = "tminus_drill_"


class BackupError(TminusError):
    """A backup could not be made, or the file made is not a usable backup."""


@dataclass
class BackupResult:
    path: Path
    sha256: str
    bytes: int
    verified: bool
    drill_seconds: float | None = None
    dump_seconds: float = 0.0
    verify_seconds: float = 0.0
    entries: int | None = None  # PostgreSQL: entries in the dump's table of contents
    rotated: list[Path] = field(default_factory=list)  # old backups deleted by `keep`

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "bytes": self.bytes, "verified": self.verified,
                "drill_seconds": self.drill_seconds, "dump_seconds": self.dump_seconds,
                "verify_seconds": self.verify_seconds, "entries": self.entries,
                "rotated": [str(p) for p in self.rotated]}


# --- checksums -------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in chunks (dumps can be larger than memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def write_checksum(path: Path, sha256: str) -> Path:
    """`<file>.sha256` in sha256sum format, so `sha256sum -c` can check it too."""
    out = checksum_path(path)
    out.write_text(f"{sha256}  {path.name}\n", encoding="utf-8")
    return out


def read_checksum(path: Path) -> str | None:
    """The checksum recorded beside `path`, or None when there is none (or it is unreadable)."""
    try:
        text = checksum_path(path).read_text(encoding="utf-8")
    except OSError:
        return None
    token = text.split()[0].lower() if text.split() else ""
    return token if re.fullmatch(r"[0-9a-f]{64}", token) else None


def is_verified(path: Path) -> bool:
    recorded = read_checksum(path)
    return recorded is not None and path.exists() and sha256_file(path) == recorded


# --- names and rotation ----------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9_.]+")
_STAMP = r"\d{8}T\d{6}\.\d{3}Z"


def safe_name(text: str) -> str:
    """A file-name part: anything but letters, digits, '_' and '.' becomes '_' ('-' separates parts)."""
    return _UNSAFE.sub("_", text).strip("._") or "db"


def backup_name(database: str, label: str, suffix: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S.") + f"{now.microsecond // 1000:03d}Z"
    return f"{safe_name(database)}-{safe_name(label)}-{stamp}{suffix}"


def list_backups(directory: Path, database: str, label: str, suffix: str) -> list[Path]:
    """The backups of this database and label, newest first (the UTC stamp sorts as text)."""
    pattern = re.compile(re.escape(f"{safe_name(database)}-{safe_name(label)}-") + _STAMP + re.escape(suffix) + "$")
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if pattern.match(p.name)), key=lambda p: p.name, reverse=True)


def rotate(directory: Path, database: str, label: str, suffix: str, keep: int) -> list[Path]:
    """Delete all but the `keep` newest backups, but never the newest verified one: if the newest
    files are unverified (a copy interrupted, a checksum lost), the last good backup survives."""
    if keep < 1:
        raise BackupError(f"keep must be at least 1, got {keep}; keeping no backup would delete this one")
    backups = list_backups(directory, database, label, suffix)
    newest_verified = next((p for p in backups if is_verified(p)), None)
    deleted: list[Path] = []
    for path in backups[keep:]:
        if path == newest_verified:
            continue
        path.unlink(missing_ok=True)
        checksum_path(path).unlink(missing_ok=True)
        deleted.append(path)
    return deleted


# --- backup ----------------------------------------------------------------------------------


def backup(url: str, directory: Path | str, *, label: str, keep: int | None = None, drill: bool = False,
           base_dir: Path | None = None, timeout: float | None = None) -> BackupResult:
    """Back up the database at `url` into `directory`; see the module docstring."""
    import psycopg

    try:
        return _backup(url, Path(directory), label=label, keep=keep, drill=drill, base_dir=base_dir,
                       timeout=timeout)
    except (psycopg.Error, OSError) as exc:
        masked = str(exc).replace(pgtools.pg_target(url).password or "\0", "***") if isinstance(
            exc, psycopg.Error) else str(exc)
        raise BackupError(f"backup of {pgtools.mask_url(url)} failed: {masked}") from None


def _backup(url: str, directory: Path, *, label: str, keep: int | None, drill: bool,
            base_dir: Path | None, timeout: float | None) -> BackupResult:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create the backup directory {directory}: {exc.strerror or exc}") from None
    if pgtools.backend(url) == "sqlite":
        source = pgtools.sqlite_path(url, base_dir)
        database, suffix = source.stem, ".db"
        final = directory / backup_name(database, label, suffix)
        result = _sqlite_backup(source, final, drill=drill)
    else:
        target = pgtools.pg_target(url)
        database, suffix = target.database, ".dump"
        final = directory / backup_name(database, label, suffix)
        result = _pg_backup(target, final, drill=drill, timeout=timeout)
    if keep is not None:
        result.rotated = rotate(directory, database, label, suffix, keep)
    return result


def _partial(final: Path) -> Path:
    return final.with_name(final.name + ".partial")


def _finish(partial: Path, final: Path, result: BackupResult) -> BackupResult:
    """Checksum the verified file, then move it into place and write its .sha256 beside it."""
    result.sha256 = sha256_file(partial)
    result.bytes = partial.stat().st_size
    partial.replace(final)
    write_checksum(final, result.sha256)
    result.path = final
    result.verified = True
    return result


def _pg_backup(target: pgtools.PgTarget, final: Path, *, drill: bool, timeout: float | None) -> BackupResult:
    partial = _partial(final)
    result = BackupResult(final, "", 0, False)
    try:
        with pgtools.connect(target) as conn:
            # Export a snapshot so pg_dump and the source fingerprint see exactly the same data;
            # a drill then compares like with like even while the application keeps writing.
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]  # type: ignore[index]
            empty = conn.execute(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%')"
            ).fetchone()[0]  # type: ignore[index]
            start = time.perf_counter()
            pgtools.run_tool(["pg_dump", "--format=custom", "--no-password", f"--snapshot={snapshot}",
                              "--file", str(partial)], target, timeout=timeout)
            result.dump_seconds = round(time.perf_counter() - start, 3)
            source_fp = pg_fingerprint(conn, include_tminus=True, sequence_values=False) if drill else None
            conn.execute("ROLLBACK")

        start = time.perf_counter()
        listing = pgtools.run_tool(["pg_restore", "--list", str(partial)], target, timeout=timeout)
        result.entries = sum(1 for line in listing.splitlines() if line.strip() and not line.startswith(";"))
        if result.entries == 0 and not empty:
            raise BackupError(f"the dump of {target.display()} lists no entries although the database has "
                              f"objects; pg_dump produced an empty archive. Check pg_dump's permissions")
        result.verify_seconds = round(time.perf_counter() - start, 3)

        if source_fp is not None:
            result.drill_seconds = _pg_drill(target, partial, source_fp, timeout=timeout)
        return _finish(partial, final, result)
    finally:
        partial.unlink(missing_ok=True)


def _pg_drill(target: pgtools.PgTarget, file: Path, source_fp: dict[str, Any], *, timeout: float | None) -> float:
    """Restore into a scratch database, compare fingerprints, drop it; the restore time."""
    start = time.perf_counter()
    scratch = pgtools.create_scratch(target, DRILL_PREFIX)
    try:
        pgtools.pg_restore_into(target.with_database(scratch), file, timeout=timeout)
        seconds = round(time.perf_counter() - start, 3)
        with pgtools.connect(target, scratch) as conn:
            restored_fp = pg_fingerprint(conn, include_tminus=True, sequence_values=False)
    finally:
        pgtools.drop_database(target, scratch)
    _check_drill(compare(source_fp, restored_fp))
    return seconds


def _check_drill(diffs: list[str]) -> None:
    if diffs:
        raise BackupError("drill: the restored copy differs from the source:\n  - " + "\n  - ".join(diffs)
                          + "\n  the backup is not trustworthy; check for errors above and retry")


def _sqlite_backup(source: Path, final: Path, *, drill: bool) -> BackupResult:
    if not source.is_file():
        raise BackupError(f"SQLite database {source} does not exist; check the URL's path")
    partial = _partial(final)
    result = BackupResult(final, "", 0, False)
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(partial)
        try:
            src.execute("BEGIN")  # one read transaction: the fingerprint and the copy see the same data
            source_fp = sqlite_fingerprint(src, include_tminus=True) if drill else None
            start = time.perf_counter()
            src.backup(dst)
            result.dump_seconds = round(time.perf_counter() - start, 3)
            src.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise BackupError(f"cannot back up SQLite database {source}: {exc}") from None
        finally:
            dst.close()
            src.close()

        start = time.perf_counter()
        problem = sqlite_integrity(partial)
        if problem:
            raise BackupError(f"the SQLite copy of {source} fails PRAGMA integrity_check: {problem}; "
                              f"check the source with `sqlite3 {source} 'PRAGMA integrity_check'`")
        result.verify_seconds = round(time.perf_counter() - start, 3)

        if source_fp is not None:
            with tempfile.TemporaryDirectory(prefix=DRILL_PREFIX) as tmp:
                start = time.perf_counter()
                scratch = Path(tmp) / "drill.db"
                shutil.copyfile(partial, scratch)
                result.drill_seconds = round(time.perf_counter() - start, 6)
                conn = sqlite3.connect(f"file:{scratch}?mode=ro", uri=True)
                try:
                    _check_drill(compare(source_fp, sqlite_fingerprint(conn, include_tminus=True)))
                finally:
                    conn.close()
        return _finish(partial, final, result)
    finally:
        partial.unlink(missing_ok=True)


def sqlite_integrity(path: Path) -> str | None:
    """None when `path` is a sound SQLite database, else what PRAGMA integrity_check (or open) said."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return str(exc)
    return None if rows == ["ok"] else "; ".join(str(r) for r in rows[:5])
