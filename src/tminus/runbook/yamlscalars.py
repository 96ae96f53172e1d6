"""A plain (unquoted) YAML scalar's value by the YAML 1.2 core schema, exactly as ruamel.yaml reads it.

The patterns are ruamel's 1.2 implicit resolvers (ruamel/yaml/resolver.py), tried in its order for
the scalar's first character, and each value is built as its round-trip constructor builds it and
the loader then flattens it: `true`/`True`/`TRUE` are booleans, `yes`/`on`/`1:30` stay text,
`0755` is 755 and `0o755` 493, `1_000` is 1000, `.inf`/`.nan` are floats, `~`/`null`/empty are
None, a timestamp is kept as ISO text (`2026-12-05T22:00:00Z` -> `2026-12-05 22:00:00+00:00`).
What ruamel builds as something else than plain data (`<<`, `=`) or fails on (`0b`, `2026-02-30`)
raises Unusual, and the reader leaves the text to ruamel.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

# ruamel/yaml/resolver.py, the entries for YAML 1.2
_FLOAT = re.compile("""^(?:
         [-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\\.(?:inf|Inf|INF)
        |\\.(?:nan|NaN|NAN))$""", re.X)
_INT = re.compile("""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""", re.X)
_TIMESTAMP = re.compile("""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
        (?:[Tt]|[ \\t]+)[0-9][0-9]?
        :[0-9][0-9] :[0-9][0-9] (?:\\.[0-9]*)?
        (?:[ \\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", re.X)
# ruamel/yaml/util.py: how the constructor splits a timestamp
_TIMESTAMP_PARTS = re.compile("""^(?P<year>[0-9][0-9][0-9][0-9])
       -(?P<month>[0-9][0-9]?)
       -(?P<day>[0-9][0-9]?)
       (?:((?P<t>[Tt])|[ \\t]+)   # explictly not retaining extra spaces
       (?P<hour>[0-9][0-9]?)
       :(?P<minute>[0-9][0-9])
       :(?P<second>[0-9][0-9])
       (?:\\.(?P<fraction>[0-9]*))?
        (?:[ \\t]*(?P<tz>Z|(?P<tz_sign>[-+])(?P<tz_hour>[0-9][0-9]?)
       (?::(?P<tz_minute>[0-9][0-9]))?))?)?$""", re.X)

_NUMBER_START = frozenset("-+0123456789.")
_DIGITS = frozenset("0123456789")
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_NULL = frozenset({"~", "null", "Null", "NULL"})
_BASES = {"0b": 2, "0o": 8, "0x": 16}
_INF = 1e300
while _INF != _INF * _INF:
    _INF *= _INF
_NAN = -_INF / _INF  # ruamel's quiet NaN, sign and all


class Unusual(ValueError):
    """ruamel builds this scalar as something else than plain data, or fails on it."""


def resolve_plain(text: str) -> Any:
    """The value of a plain scalar written as `text`."""
    if not text:
        return None
    first = text[0]
    if first in _NUMBER_START:
        if _FLOAT.match(text):
            return _float(text)
        if first != "." and _INT.match(text):
            return _int(text)
        if first in _DIGITS and _TIMESTAMP.match(text):
            return _timestamp(text)
        return text
    if first in "tTfF":
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        return text
    if text in _NULL:
        return None
    if text in ("<<", "="):  # a merge key or a value key: ruamel builds a tagged scalar
        raise Unusual(text)
    return text


def _int(text: str) -> int:
    digits = text.replace("_", "")
    sign = -1 if digits[0] == "-" else 1
    if digits[0] in "+-":
        digits = digits[1:]
    base = _BASES.get(digits[:2])
    if base is not None:
        if len(digits) == 2:  # `0b_`: ruamel fails
            raise Unusual(text)
        return sign * int(digits[2:], base)
    if not digits:  # `-_`: ruamel fails
        raise Unusual(text)
    return sign * int(digits)


def _float(text: str) -> float:
    digits = text.replace("_", "").lower()
    sign = -1 if digits[0] == "-" else 1
    if digits[0] in "+-":
        digits = digits[1:]
    if digits == ".inf":
        return sign * _INF
    if digits == ".nan":
        return _NAN
    return sign * float(digits)


def _timestamp(text: str) -> str:
    """ruamel's timestamp (util.create_timestamp), as the loader keeps it: ISO text."""
    match = _TIMESTAMP_PARTS.match(text)
    if match is None:
        raise Unusual(text)
    v = match.groupdict()
    try:
        if v["hour"] is None:
            return dt.date(int(v["year"]), int(v["month"]), int(v["day"])).isoformat()
        fraction = v["fraction"]
        micro = 0
        carry = False
        if fraction:
            micro = int(fraction[:6].ljust(6, "0"))
            if len(fraction) > 6 and int(fraction[6]) > 4:
                micro += 1
            if micro > 999_999:  # rounded up to the next second
                micro, carry = 0, True
        tzinfo = None
        if v["tz_sign"]:
            delta = dt.timedelta(hours=int(v["tz_hour"]), minutes=int(v["tz_minute"]) if v["tz_minute"] else 0)
            tzinfo = dt.timezone(-delta if v["tz_sign"] == "-" else delta, name=v["tz"])
        elif v["tz"] == "Z":
            tzinfo = dt.timezone(dt.timedelta(hours=0), name=v["tz"])
        stamp = dt.datetime(int(v["year"]), int(v["month"]), int(v["day"]), int(v["hour"]), int(v["minute"]),
                            int(v["second"]), micro, tzinfo)
        if carry:
            stamp += dt.timedelta(seconds=1)
    except (ValueError, OverflowError):  # 2026-02-30: ruamel fails
        raise Unusual(text) from None
    return stamp.isoformat(sep=" ")
