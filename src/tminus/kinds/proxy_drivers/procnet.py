"""Connections a set of processes holds to some addresses, from /proc (Linux): OSS nginx has no
per-upstream counter, so `drain` counts the ESTABLISHED TCP sockets its workers own."""

from __future__ import annotations

import os
import socket
import struct

_ESTABLISHED = "01"


def socket_inodes(pids: list[int]) -> set[str] | None:
    """The inodes of the sockets the processes hold open; None when we may not look (another user's
    processes without root): a count would then be a guess."""
    out: set[str] = set()
    for pid in pids:
        folder = f"/proc/{pid}/fd"
        try:
            names = os.listdir(folder)
        except PermissionError:
            return None
        except OSError:  # it ended meanwhile
            continue
        for name in names:
            try:
                target = os.readlink(f"{folder}/{name}")
            except OSError:
                continue
            if target.startswith("socket:["):
                out.add(target[8:-1])
    return out


def established_to(addresses: list[str], inodes: set[str]) -> int:
    """ESTABLISHED TCP connections, among the sockets `inodes`, whose remote end is one of `addresses`
    (host:port; names resolved)."""
    wanted = set()
    for address in addresses:
        wanted |= _encoded(address)
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == _ESTABLISHED and fields[2] in wanted and fields[9] in inodes:
                        count += 1
        except OSError:
            continue
    return count


def _encoded(address: str) -> set[str]:
    """`host:port` as /proc/net/tcp{,6} spell a remote address (hex, 32-bit words in host order)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit():
        return set()
    out = set()
    try:
        infos = socket.getaddrinfo(host, int(port), proto=socket.IPPROTO_TCP)
    except OSError:
        return set()
    for family, *_rest, sockaddr in infos:
        packed = socket.inet_pton(family, str(sockaddr[0]))
        if family == socket.AF_INET:
            out.add(f"{struct.unpack('=I', packed)[0]:08X}:{int(port):04X}")
            # an IPv4 peer of an IPv6 socket: ::ffff:a.b.c.d
            mapped = b"\0" * 10 + b"\xff\xff" + packed
            out.add(_v6(mapped) + f":{int(port):04X}")
        else:
            out.add(_v6(packed) + f":{int(port):04X}")
    return out


def _v6(packed: bytes) -> str:
    return "".join(f"{word:08X}" for word in struct.unpack("=4I", packed))
