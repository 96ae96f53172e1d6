"""HAProxy's runtime API (the stats socket): sending one command, and reading its answers.

One command per connection: HAProxy answers a non-interactive command and closes the connection,
so end-of-file marks exactly the end of the answer. Prompt mode would need framing on the `> `
prompt (which an answer may contain) and leaves a half-read session behind when a read times out;
a local connection costs about a millisecond and a switch is a handful of commands.

Errors come back as text, never as a status: a `set` command that worked answers an empty line,
anything else it answers is HAProxy refusing, in its own words.
"""

from __future__ import annotations

import csv
import io
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from tminus.kinds.proxy_drivers.base import ProxyError

# `srv_admin_state` bits (HAProxy's enum srv_admin, SRV_ADMF_MAINT/DRAIN): forced, inherited or DNS
# maintenance; forced or inherited drain. 0x04 only remembers that the config said `disabled` (it
# stays set once the server is made ready) and 0x40 that the FQDN was set at runtime.
FORCED_MAINT, FORCED_DRAIN = 0x01, 0x08
MAINT_BITS = FORCED_MAINT | 0x02 | 0x20
DRAIN_BITS = FORCED_DRAIN | 0x10

# What HAProxy accepts as a proxy or server name (and nothing the CLI would split on: `;`, spaces).
_NAME = re.compile(r"^[A-Za-z0-9_.:\-]+$")
_MAP_REF = re.compile(r"^[^\s;]+$")


def check_name(what: str, value: str) -> str:
    if not _NAME.match(value):
        raise ProxyError(f"haproxy: {what} {value!r} is not an HAProxy name (letters, digits, '_', '.', ':', '-')")
    return value


def check_map_ref(value: str) -> str:
    if not _MAP_REF.match(value):
        raise ProxyError(f"haproxy: map {value!r} must be the file name as written in haproxy.cfg (no spaces or ';')")
    return value


@dataclass(frozen=True)
class ServerRow:
    """One server as `show servers state` reports it."""

    backend: str
    name: str
    op_state: int  # 0 stopped, 1 starting, 2 running, 3 stopping
    admin_state: int
    uweight: int

    @property
    def maint(self) -> bool:
        return bool(self.admin_state & MAINT_BITS)

    @property
    def drain(self) -> bool:
        return bool(self.admin_state & DRAIN_BITS)

    @property
    def held_at_zero(self) -> bool:
        """Kept from new traffic by tminus's own means (forced drain or maintenance, or weight 0), not
        only by a state it inherits (tracking, DNS), which can end without anyone asking."""
        return bool(self.admin_state & (FORCED_MAINT | FORCED_DRAIN)) or self.uweight == 0

    @property
    def down(self) -> bool:
        """Marked down by its health check (in maintenance, checks stop: not known, not down)."""
        return not self.maint and self.op_state == 0

    @property
    def effective_weight(self) -> int:
        """The weight new traffic sees: 0 in maintenance or drain, else the weight set."""
        return 0 if self.maint or self.drain else self.uweight

    def describe(self) -> str:
        mode = "maint" if self.maint else "drain" if self.drain else "ready"
        return f"{self.backend}/{self.name} {mode} weight {self.uweight}"


def parse_servers_state(text: str) -> dict[tuple[str, str], ServerRow]:
    """`show servers state` (format version 1): a version line, a `# name name...` header, rows."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].strip() != "1" or len(lines) < 2 or not lines[1].startswith("#"):
        raise ProxyError(f"haproxy: unexpected answer to 'show servers state': {_first(text)}")
    columns = lines[1].lstrip("#").split()
    rows: dict[tuple[str, str], ServerRow] = {}
    for line in lines[2:]:
        fields = dict(zip(columns, line.split(), strict=False))
        try:
            row = ServerRow(fields["be_name"], fields["srv_name"], int(fields["srv_op_state"]),
                            int(fields["srv_admin_state"]), int(fields["srv_uweight"]))
        except (KeyError, ValueError) as exc:
            raise ProxyError(f"haproxy: cannot read 'show servers state' line {line!r} ({exc})") from exc
        rows[(row.backend, row.name)] = row
    return rows


def parse_stat(text: str) -> list[dict[str, str]]:
    """`show stat`: CSV whose header line starts with `# `; one dict per proxy/server line."""
    if not text.startswith("# pxname"):
        raise ProxyError(f"haproxy: unexpected answer to 'show stat': {_first(text)}")
    reader = csv.DictReader(io.StringIO(text[2:]))
    return [row for row in reader if row.get("pxname")]


def parse_map(text: str, ref: str = "") -> dict[str, str]:
    """`show map FILE`: lines `0x55d0c0ffee key value`; the first entry of a key is the one used."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].startswith("0x"):
            entries.setdefault(parts[1], parts[2].strip())
        elif line.strip():
            raise ProxyError(f"haproxy: cannot read the map {ref}: HAProxy answered {_first(text)!r} (write the "
                             "map's file name exactly as haproxy.cfg does, in a `map(...)` the frontend uses)")
    return entries


def _first(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(empty answer)"
    return line[:200]


class Runtime:
    """The stats socket: a UNIX socket path, or `ipv4@HOST:PORT` / `ipv6@[HOST]:PORT` for TCP."""

    def __init__(self, address: str, base_dir: Path, timeout: float) -> None:
        self.timeout = timeout
        self.display = address
        self._tcp: tuple[str, int] | None = None
        self._family = socket.AF_UNIX
        self._path = ""
        match = re.match(r"^(ipv4|ipv6)@\[?([^\]]+?)\]?:(\d+)$", address)
        if match:
            self._family = socket.AF_INET if match.group(1) == "ipv4" else socket.AF_INET6
            self._tcp = (match.group(2), int(match.group(3)))
        else:
            path = Path(address.removeprefix("unix@"))
            self._path = str(path if path.is_absolute() else base_dir / path)
            self.display = self._path

    def command(self, line: str) -> str:
        """Send one command, return HAProxy's whole answer (read until it closes the connection)."""
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            try:
                sock.connect(self._tcp if self._tcp else self._path)
            except FileNotFoundError as exc:
                raise ProxyError(f"haproxy: stats socket {self.display} does not exist: is HAProxy running, "
                                 f"with `stats socket {self.display} level admin` in its global section?") from exc
            except ConnectionRefusedError as exc:
                raise ProxyError(f"haproxy: nothing answers on the stats socket {self.display} "
                                 "(HAProxy stopped or restarting?)") from exc
            except PermissionError as exc:
                raise ProxyError(f"haproxy: permission denied on the stats socket {self.display}: give the user "
                                 "running tminus access (`mode`/`user`/`group` on the `stats socket` line)") from exc
            sock.sendall(line.encode() + b"\n")
            chunks: list[bytes] = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except TimeoutError as exc:
            raise ProxyError(f"haproxy: no answer to {line.split()[0]!r} on {self.display} within "
                             f"{self.timeout:g}s") from exc
        except ConnectionError as exc:
            raise ProxyError(f"haproxy: the stats socket {self.display} dropped the connection "
                             f"during {line!r}: {exc}") from exc
        except OSError as exc:
            raise ProxyError(f"haproxy: cannot talk to the stats socket {self.display}: {exc}") from exc
        finally:
            sock.close()
        answer = b"".join(chunks).decode(errors="replace")
        if not answer:
            raise ProxyError(f"haproxy: the stats socket {self.display} closed without answering {line!r}")
        return answer

    def set(self, line: str) -> None:
        """A command that changes something: any answer but an empty line is HAProxy refusing."""
        answer = self.command(line).strip()
        if answer:
            hint = " (the stats socket needs `level admin`)." if "Permission denied" in answer else ""
            raise ProxyError(f"haproxy refused {line!r}: {answer}{hint}")
