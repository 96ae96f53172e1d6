"""The one expectation grammar, shared by step checks and monitor rules.

    status == 200
    header "Retry-After" exists
    jsonpath "$.items" count >= 3
    column "avg" == 0.95 +- 0.01
    not body contains "Traceback"

`parse(text)` gives an `Assertion`; `assertion.evaluate(values)` gives a `Verdict` whose
`passed` is True, False, or None when the queried value is missing (no data).
"""

from tminus.expect.evaluate import Assertion, Filter, NoData, TypeMismatch, Verdict, evaluate_all
from tminus.expect.grammar import parse
from tminus.expect.vocabulary import FILTERS, PREDICATES, QUERIES

__all__ = [
    "FILTERS",
    "PREDICATES",
    "QUERIES",
    "Assertion",
    "Filter",
    "NoData",
    "TypeMismatch",
    "Verdict",
    "evaluate_all",
    "parse",
]
