"""The migrations directory: `NNNN_name.sql` with optional `.down.sql` and `.verify.sql`, checksums."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from tminus.db.migrations.errors import MigrationFileError

_FILE = re.compile(r"^(?P<version>\d+)_(?P<name>[A-Za-z0-9_\-]+?)(?P<suffix>\.down|\.verify)?\.sql$")
# Only leading comment lines are searched, so a string literal further down cannot opt a file out.
_NO_TX = re.compile(r"^\s*--\s*tminus:\s*no-transaction\s*$", re.IGNORECASE)


def normalize(text: str) -> str:
    """Content as checksummed: editors that add a BOM, switch line endings or trim trailing spaces
    must not make an applied migration look changed."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def checksum(text: str) -> str:
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()


def is_no_transaction(text: str) -> bool:
    for line in normalize(text).split("\n"):
        if _NO_TX.match(line):
            return True
        if line.strip() and not line.strip().startswith("--"):
            return False
    return False


@dataclass(frozen=True)
class MigrationFile:
    version: str
    name: str
    path: Path
    text: str
    down: Path | None = None
    verify: Path | None = None

    @property
    def checksum(self) -> str:
        return checksum(self.text)

    @property
    def transactional(self) -> bool:
        return not is_no_transaction(self.text)

    def statements(self, *, sqlite: bool) -> list[str]:
        from tminus.db.sqltext import split_statements

        return split_statements(normalize(self.text), sqlite=sqlite)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MigrationFileError(f"cannot read migration file {path}: {exc}; check it exists and is UTF-8") from exc


def discover(directory: Path) -> list[MigrationFile]:
    """Every migration in version order. A `.sql` file not named `NNNN_name[.down|.verify].sql` is an
    error rather than skipped, since a misnamed migration silently not running is worse."""
    if not directory.is_dir():
        raise MigrationFileError(f"migrations directory {directory} does not exist; check the path")
    ups: dict[str, Path] = {}
    extras: dict[tuple[str, str], Path] = {}
    names: dict[str, str] = {}
    widths: set[int] = set()
    for path in sorted(directory.iterdir()):
        if not path.is_file() or not path.name.endswith(".sql"):
            continue
        m = _FILE.match(path.name)
        if m is None:
            raise MigrationFileError(
                f"{path}: expected a name like 0001_create_users.sql (or .down.sql / .verify.sql); rename it"
            )
        version, name, suffix = m.group("version"), m.group("name"), m.group("suffix") or ""
        widths.add(len(version))
        if suffix:
            extras[(version, suffix)] = path
            continue
        if version in ups:
            raise MigrationFileError(
                f"version {version} is used by both {ups[version].name} and {path.name}; give one a new number"
            )
        ups[version] = path
        names[version] = name
    if len(widths) > 1:
        raise MigrationFileError(
            f"migration versions in {directory} have different widths ({sorted(widths)} digits); versions are"
            " compared as strings, so zero-pad them all to the same width (e.g. 0001, 0002, ...)"
        )
    for (version, suffix), path in extras.items():
        if version not in ups:
            raise MigrationFileError(f"{path} has no migration {version}_*.sql to belong to; rename or remove it")
        if not path.name.startswith(f"{version}_{names[version]}{suffix}"):
            raise MigrationFileError(
                f"{path.name} does not match its migration {ups[version].name}; name it"
                f" {version}_{names[version]}{suffix}.sql"
            )
    return [
        MigrationFile(
            version=v,
            name=names[v],
            path=ups[v],
            text=read_text(ups[v]),
            down=extras.get((v, ".down")),
            verify=extras.get((v, ".verify")),
        )
        for v in sorted(ups)
    ]


def truthy(value: object) -> bool:
    """A verify result: false, 0, NULL, '' and the strings 'f'/'false'/'0' fail."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() not in ("", "f", "false", "0")
    return bool(value)
