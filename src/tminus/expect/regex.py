"""Regular expressions for `matches`, refused at validation when they can backtrack for ever.

Python's `re` backtracks and cannot be stopped: not by a timeout (there is none), nor from another
thread (the match holds the GIL), and signals reach only the main thread while checks run in pools.
Engines that are safe by construction (RE2, Go, Rust's regex, which hurl uses) are not available
here, so tminus does what linters do for backtracking engines (safe-regex's star height,
eslint-plugin-regexp's no-super-linear-backtracking): it reads the parsed pattern and refuses the
shapes that make backtracking super-linear, at validation, with a position and a rewrite:

- a quantifier inside a quantifier, `(a+)+`, `(\\w+\\s?)*`: exponential;
- a repeated alternation whose branches can match alike, `(a|a)*`, `(x|xy?)+`: exponential;
- two unbounded quantifiers in a row over overlapping characters, `\\d+\\d*`, `[a-z]+[a-z0-9]*`
  (296 s on 10,000 letters): polynomial.

A possessive quantifier (`++`, `*+`) or an atomic group (`(?>...)`) never backtracks, so any of these
is accepted in that form. What remains is at worst quadratic in the length of a run of matching
characters; `search` caps what it reads at MAX_SUBJECT characters.
"""

from __future__ import annotations

import re
import re._constants as C  # sre's opcodes
import re._parser as P
from collections.abc import Iterable
from typing import Any

MAX_SUBJECT = 1024 * 1024  # characters `matches` reads: a bound on time and memory per check
_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT)  # POSSESSIVE_REPEAT does not backtrack
_UNBOUNDED = C.MAXREPEAT
# Characters the overlap test looks at: Latin-1 and a few others stand for every class.
_PROBE = [*range(256), 0x2028, 0x3000, 0x0410, 0x4E00, 0x1F600]
_ALL = frozenset(_PROBE)


class UnsafePattern(ValueError):
    """The pattern can take exponential or polynomial time on some text."""


def compile_pattern(text: str) -> re.Pattern[str]:
    """Compile a `matches` pattern. Raises re.error when invalid, UnsafePattern when catastrophic."""
    pattern = re.compile(text)
    check(pattern)
    return pattern


def search(pattern: re.Pattern[str], subject: str) -> bool:
    """Whether the pattern occurs in the subject. Raises ValueError when the subject is too long."""
    if len(subject) > MAX_SUBJECT:
        raise ValueError(f"matches reads at most {MAX_SUBJECT:,} characters, got {len(subject):,}")
    return pattern.search(subject) is not None


def check(pattern: re.Pattern[str]) -> None:
    folded = bool(pattern.flags & re.IGNORECASE)
    _walk(P.parse(pattern.pattern, pattern.flags), folded, inside=None)


_FIX = "make the inner quantifier possessive (++, *+) or the group atomic (?>...), or rewrite it"


def _walk(seq: Iterable[Any], folded: bool, inside: str | None) -> None:
    items = list(seq)
    for i, (op, av) in enumerate(items):
        if op in _REPEATS:
            low, high, body = av
            # a fixed count (a{3}) is no choice point: only a range nested in a range backtracks
            if high > 1 and low != high and inside is not None and (high == _UNBOUNDED or inside == "unbounded"):
                raise UnsafePattern(f"a quantifier inside a quantifier can take exponential time; {_FIX}")
            if high == _UNBOUNDED:
                _check_branches(body, folded)
                _check_next(items, i, folded)
            _walk(body, folded, "unbounded" if high == _UNBOUNDED else "bounded" if high > 1 else inside)
        elif op == C.SUBPATTERN:
            _walk(av[3], folded, inside)
        elif op == C.BRANCH:
            for alt in av[1]:
                _walk(alt, folded, inside)
        elif op in (C.ASSERT, C.ASSERT_NOT):
            _walk(av[1], folded, inside)
        elif op == C.GROUPREF_EXISTS:
            for part in av[1:]:
                if part is not None:
                    _walk(part, folded, inside)


def _check_branches(body: Any, folded: bool) -> None:
    """`(a|a)*`: an alternation, repeated, two of whose branches can match alike.

    sre factors common prefixes out (`a|ab` becomes `a(?:|b)`), so branches are compared by the
    characters they start with, and two empty branches are alike.
    """
    for op, av in body:
        if op == C.SUBPATTERN:
            _check_branches(av[3], folded)
        elif op == C.BRANCH:
            seen: set[int] = set()
            empty = 0
            for alt in av[1]:
                start = _first(alt, folded)
                empty += _nullable(alt)
                if seen & start or empty > 1:
                    raise UnsafePattern("a repeated alternation whose branches can match alike can take "
                                        f"exponential time; make the branches distinct, or {_FIX}")
                seen |= start


def _check_next(items: list[Any], i: int, folded: bool) -> None:
    """`\\d+\\d*`: an unbounded quantifier followed, past optional items, by one over the same chars."""
    chars = _chars(items[i][1][2], folded)
    for op, av in items[i + 1 :]:
        if op in _REPEATS and av[1] == _UNBOUNDED and chars & _chars(av[2], folded):
            raise UnsafePattern("two quantifiers in a row over the same characters can take polynomial time; "
                                "make the first one possessive (++, *+), or merge them")
        if not _nullable([(op, av)]):
            return


def _nullable(seq: Iterable[Any]) -> bool:
    for op, av in seq:
        if op in (*_REPEATS, C.POSSESSIVE_REPEAT):
            if av[0] > 0 and not _nullable(av[2]):
                return False
        elif op == C.SUBPATTERN:
            if not _nullable(av[3]):
                return False
        elif op == C.ATOMIC_GROUP:
            if not _nullable(av):
                return False
        elif op == C.BRANCH:
            if not any(_nullable(alt) for alt in av[1]):
                return False
        elif op not in (C.AT, C.ASSERT, C.ASSERT_NOT):
            return False
    return True


def _first(seq: Iterable[Any], folded: bool) -> frozenset[int]:
    """The characters a match of the sequence can start with (over the probe alphabet)."""
    out: frozenset[int] = frozenset()
    for op, av in seq:
        out |= _chars([(op, av)], folded, first=True)
        if not _nullable([(op, av)]):
            break
    return out


def _chars(seq: Iterable[Any], folded: bool, first: bool = False) -> frozenset[int]:
    """The characters the sequence can match anywhere (or first), over the probe alphabet."""
    out: frozenset[int] = frozenset()
    for op, av in seq:
        if op == C.LITERAL:
            out |= _fold({av}, folded)
        elif op == C.NOT_LITERAL:
            out |= _ALL - _fold({av}, folded)
        elif op == C.ANY:
            out |= _ALL
        elif op == C.IN:
            out |= _fold(_class(av), folded)
        elif op in (*_REPEATS, C.POSSESSIVE_REPEAT):
            out |= _first(av[2], folded) if first else _chars(av[2], folded)
        elif op == C.SUBPATTERN:
            out |= _first(av[3], folded) if first else _chars(av[3], folded)
        elif op == C.ATOMIC_GROUP:
            out |= _first(av, folded) if first else _chars(av, folded)
        elif op == C.BRANCH:
            for alt in av[1]:
                out |= _first(alt, folded) if first else _chars(alt, folded)
        elif op in (C.GROUPREF, C.GROUPREF_EXISTS):
            out |= _ALL  # anything the group matched
        if first and op not in (C.AT, C.ASSERT, C.ASSERT_NOT):
            break
    return out


def _class(items: list[Any]) -> frozenset[int]:
    chars: set[int] = set()
    negate = False
    for op, av in items:
        if op == C.NEGATE:
            negate = True
        elif op == C.LITERAL:
            chars.add(av)
        elif op == C.RANGE:
            lo, hi = av
            chars.update(c for c in _PROBE if lo <= c <= hi)
        elif op == C.CATEGORY:
            chars.update(c for c in _PROBE if _CATEGORIES[av].fullmatch(chr(c)))
    return _ALL - chars if negate else frozenset(chars)


_CATEGORIES = {
    C.CATEGORY_DIGIT: re.compile(r"\d"), C.CATEGORY_NOT_DIGIT: re.compile(r"\D"),
    C.CATEGORY_SPACE: re.compile(r"\s"), C.CATEGORY_NOT_SPACE: re.compile(r"\S"),
    C.CATEGORY_WORD: re.compile(r"\w"), C.CATEGORY_NOT_WORD: re.compile(r"\W"),
}


def _fold(chars: Iterable[int], folded: bool) -> frozenset[int]:
    out = set(chars)
    if folded:
        out |= {ord(chr(c).swapcase()[0]) for c in out if chr(c).swapcase()}
    return frozenset(out)
