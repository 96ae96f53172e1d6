"""Masking: secret values become `***` in any text or structure before it is shown or stored.

Below everything that prints or records: the engine, the ledger's writers and every report use it.

A secret leaks through its derived forms as much as through itself, so each value is masked as:
- itself, in any letter case (`| upper`, `| lower`), and split across lines (a line break between
  any two characters: `fold`, wrapped base64);
- URL-encoded (`quote` with and without `/` safe, `quote_plus`; `| urlencode`; hex in either case);
- JSON-escaped (`ensure_ascii` on and off, `\\/`), shell-quoted (`shlex.quote`, bash `'\\''`,
  backslash escapes, double-quote escapes, $'...' escapes; a single quote quoted again any number of times);
- base64, standard and URL-safe: the whole value (with its padding), and the characters that the
  value alone determines when it sits at offset 0, 1 or 2 of a longer base64 stream (`base64` of a
  file or of `user:password`). Those fragments are masked only when at least
  MIN_BASE64_FRAGMENT long: shorter ones would mask innocent text.
The one base64 character at each end of a fragment that also encodes a neighbouring byte stays.
Not covered: other encodings (hex, base32, gzip, ...), encodings of a derived form (base64 of the
upper-cased value), and a value split by anything but line breaks.

`tail` and `head` mask before they cut, so a secret at the cut is never half-shown. A value that
`expect` cut before the event was masked (`... (N characters)`) loses the start of a secret just
before the cut too.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MIN_SECRET_LENGTH = 3  # shorter values would mask innocent text everywhere ("1", "on")
MIN_BASE64_FRAGMENT = 6  # a base64 fragment of a secret inside a stream, shorter ones too common
MASK = "***"
_BREAK = "(?:\r?\n)?"  # a value split across lines


def text_forms(value: str) -> set[str]:
    """The value and its textual encodings (matched ignoring case)."""
    forms = {value, quote(value), quote(value, safe=""), quote_plus(value), quote_plus(value, safe="/")}
    for ascii_only in (False, True):
        escaped = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
        forms |= {escaped, escaped.replace("/", "\\/")}
    quoted = shlex.quote(value)
    forms.add(quoted[1:-1] if quoted.startswith("'") and quoted.endswith("'") else quoted)
    forms.add(value.replace("'", "'\\''"))
    forms.add(re.sub(r"([^\w@%+=:,./-])", r"\\\1", value))  # printf %q style
    forms.add(re.sub(r'(["\\$`])', r"\\\1", value))  # inside double quotes
    forms.add(value.replace("\\", "\\\\").replace("'", "\\'"))  # inside bash's $'...'
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def base64_forms(value: str) -> set[str]:
    """The value's base64 (standard and URL-safe): whole, and the determined characters at each offset."""
    raw = value.encode("utf-8")
    forms = {base64.b64encode(raw).decode()}
    for shift in range(3):
        stream = b"\0" * shift + raw
        encoded = base64.b64encode(stream).decode().rstrip("=")
        # Characters mixing bits of the unknown bytes before (shift 1: 2 chars, 2: 3) or after the value.
        start = (0, 2, 3)[shift]
        end = len(encoded) - (1 if len(stream) % 3 else 0)
        fragment = encoded[start:end]
        if len(fragment) >= MIN_BASE64_FRAGMENT:
            forms.add(fragment)
    forms |= {f.replace("+", "-").replace("/", "_") for f in forms}
    return forms


# A single quote inside shell quoting, quoted again any number of times ('\'' , '"'"'"'"'"'"'"'"').
_REQUOTED = "'(?:[\\\\\"']*')?"
# Where `expect`'s rendering cut a value (expect/values.py `render`): what precedes it may be the start of a secret.
_CUT_MARK = re.compile(r"\.\.\. \(\d+ characters\)")


def _split(form: str, text: bool) -> str:
    return _BREAK.join(_REQUOTED if text and c == "'" else re.escape(c) for c in form)


def _start_of(text: str, form: str, fold: bool) -> int:
    """The length of the longest start of `form` that `text` ends with (0: none)."""
    for k in range(min(len(form) - 1, len(text)), 0, -1):
        seen, start = text[-k:], form[:k]
        if seen == start or (fold and seen.lower() == start.lower()):
            return k
    return 0


class Masker:
    """Replaces secret values (and their derived forms) by `***` in any text or structure."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._longest = 0
        self._forms: list[tuple[str, bool]] = []
        for v in values:
            self.add(v)

    def add(self, value: str) -> None:
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH or value in self._values:
            return
        self._values.add(value)
        texts = {f for v in self._values for f in text_forms(v)}
        b64 = {f for v in self._values for f in base64_forms(v)} - texts
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted([(f, True) for f in texts] + [(f, False) for f in b64], key=lambda p: -len(p[0]))
        self._longest = len(ordered[0][0])
        self._forms = ordered
        self._pattern = re.compile("|".join(f"(?i:{_split(f, True)})" if fold else _split(f, False)
                                            for f, fold in ordered))

    def mask(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._cut_starts(self._pattern.sub(MASK, text))

    def _cut_starts(self, text: str) -> str:
        """A value cut by `render` before it was masked: the start of a secret just before the cut."""
        for mark in reversed(list(_CUT_MARK.finditer(text))):
            end = mark.start()
            k = max((_start_of(text[max(0, end - len(form)):end], form, fold) for form, fold in self._forms),
                    default=0)
            if k:
                text = text[:end - k] + MASK + text[end:]
        return text

    def tail(self, text: str, limit: int) -> str:
        """The masked end of a long output, marked as truncated."""
        kept, dropped = self._cut(text, limit, end=True)
        return f"[... {dropped} characters truncated ...]\n" + kept if dropped else kept

    def head(self, text: str, limit: int) -> str:
        """The masked start of a long output, marked as truncated."""
        kept, dropped = self._cut(text, limit, end=False)
        return kept + f"\n[... {dropped} characters truncated ...]" if dropped else kept

    def _cut(self, text: str, limit: int, *, end: bool) -> tuple[str, int]:
        """Masked *before* it is cut (cut first, half a secret would survive), over a window wide
        enough to hold whole any form reaching into the part kept; (kept, characters dropped)."""
        reach = 3 * self._longest if self._pattern is not None else 0  # \r\n between every character
        window = text[-(limit + reach):] if end else text[:limit + reach]
        masked = self.mask(window)
        kept = masked[-limit:] if end else masked[:limit]
        return kept, len(text) - len(window) + len(masked) - len(kept)

    def mask_obj(self, obj: Any) -> Any:
        if self._pattern is None:  # nothing to mask: no need to copy every event's data
            return obj
        if isinstance(obj, str):
            return self.mask(obj)
        if isinstance(obj, Mapping):
            return {self.mask_obj(k): self.mask_obj(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.mask_obj(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self.mask_obj(v) for v in obj)
        return obj


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")  # scheme://user:password@


def hide_url_passwords(text: str) -> str:
    """`text` with the password of every URL in it (scheme://user:password@) replaced by ***: for
    messages that quote a URL a driver or a database wrote back, which no Masker knows as a secret."""
    return _URL_PASSWORD.sub(r"\1***@", text)


__all__ = ["MASK", "MIN_BASE64_FRAGMENT", "MIN_SECRET_LENGTH", "Masker", "base64_forms", "hide_url_passwords",
           "text_forms"]
