"""The vocabulary of expectations: queries, filters, predicates, and which operands fit which."""

from __future__ import annotations

import re
from typing import Any

from tminus.expect.regex import compile_pattern
from tminus.expect.values import is_number, render, type_name, typed

QUERIES: dict[str, str] = {
    "status": "HTTP status code (http)",
    "exit_code": "exit code of the command (run)",
    "stdout": "standard output of the command (run)",
    "stderr": "standard error of the command (run)",
    "body": "response body as text (http)",
    "duration": "how long the step took, in milliseconds",
    "scalar": "first column of the first row (sql)",
    "rows": "every row, as a list of objects (sql)",
    "rowcount": "number of rows returned or changed (sql)",
    "count": "number of matched items (file)",
    "exists": "whether anything matched (file)",
    "open": "whether the port accepts connections (tcp)",
    "matches": "what matched (file)",
    "content": "content read by the step (file)",
    "files": "paths of the matched files (file)",
    "value": "the value the step observed",
    "json": "the JSON document: an http body, run stdout, a prometheus answer, a redis reply",
    "headers": "every response header (http)",
    "ok": "whether the step's own judgement passed (env)",
    "failed": "names that failed the step's own judgement (env)",
    "attempts": "how many attempts the nested check took (wait)",
    "approved": "whether the operator approved (manual)",
    "by": "who approved (manual)",
    "how": "how the approval came: tty, approve-command, --yes (manual)",
    "path": "the file written (backup)",
    "sha256": "checksum of the backup file (backup)",
    "bytes": "size of the backup file (backup)",
    "verified": "whether the backup was checked readable (backup)",
    "drill_seconds": "time to restore the backup into a scratch database (backup)",
    "restored": "whether the restore completed (restore)",
    "seconds": "how long the restore took (restore)",
    "fingerprint": "per table: rows and checksum; schema objects under @schema (fingerprint)",
    "digests": "one digest per object kind, rows and all (fingerprint)",
    "diff": "each difference from compare_to, as text (fingerprint)",
    "tables": "number of tables fingerprinted (fingerprint)",
    "before": "version before the step (migrate)",
    "after": "version after the step (migrate)",
    "applied": "versions applied (migrate)",
    "reverted": "versions reverted (migrate)",
    "findings": "risky statements found (migration_lint)",
    "delivered": "whether the notification was delivered (notify)",
    "series": "every series of the query result: labels and value (prometheus)",
    "result_type": "vector, scalar, matrix or string (prometheus)",
    "header": 'header "Name": a response header, case-insensitive (http)',
    "jsonpath": 'jsonpath "$.a.b[0]": values selected in the JSON document (http, run, prometheus, redis)',
    "column": 'column "name": a column of the first row (sql)',
}
ARGUMENT_QUERIES = {"header": '"Name"', "jsonpath": '"$.path"', "column": '"name"'}

FILTERS: dict[str, str] = {
    "count": "number of items of a list or object, or characters of a string",
    "length": "alias of count",
    "first": "first item of a list",
    "last": "last item of a list",
    "nth": "nth N: item N (0-based) of a list",
    "toInt": "convert a string or number to an integer",
    "toFloat": "convert a string or number to a float",
    "toString": "convert a value to a string",
    "trim": "strip surrounding whitespace from a string",
    "lower": "lower-case a string",
    "upper": "upper-case a string",
    "keys": "the keys of an object, as a list",
}

PREDICATES: dict[str, str] = {
    "==": "equals (strict types; numbers with an optional +- tolerance)",
    "!=": "differs from (strict types; numbers with an optional +- tolerance)",
    ">": "greater than a number or duration",
    ">=": "greater than or equal to a number or duration",
    "<": "less than a number or duration",
    "<=": "less than or equal to a number or duration",
    "exists": "the value is present (absence fails instead of giving no data)",
    "isEmpty": "an empty string, list or object",
    "contains": "a string contains a substring, a list an item, an object a key",
    "startsWith": "a string starts with a string",
    "endsWith": "a string ends with a string",
    "matches": 'a string matches a regular expression, "quoted" or /raw/ (searched, not anchored)',
    "in": "equals one of the items of a list [a, b]",
    "isNumber": "an integer, float or decimal (not a boolean)",
    "isString": "a string",
    "isBoolean": "true or false",
    "isList": "a list",
    "isObject": "an object (mapping)",
    "isNull": "null, or absent",
}
ORDERINGS = {"<", "<=", ">", ">="}
EQUALITIES = {"==", "!="}
NO_OPERAND = {"exists", "isEmpty", "isNumber", "isString", "isBoolean", "isList", "isObject", "isNull"}


def _freeze(value: Any) -> Any:
    """Lists become tuples so that an Assertion stays hashable."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def check_operand(predicate: str, operand: Any) -> Any:
    """Validate (and normalise) the operand of a predicate. Raises ValueError saying what fits."""
    if predicate in NO_OPERAND:
        if operand is not None:
            raise ValueError(f"'{predicate}' takes no operand")
        return None
    if isinstance(operand, re.Pattern) and predicate != "matches":
        raise ValueError(f"a /regex/ only goes with 'matches'; quote the text for '{predicate}'")
    if predicate in ORDERINGS and not is_number(operand):
        raise ValueError(
            f"'{predicate}' compares numbers: expected a number or a duration such as 500ms, got {typed(operand)}"
        )
    if predicate in ("startsWith", "endsWith") and not isinstance(operand, str):
        raise ValueError(f"'{predicate}' expects a \"string\", got {typed(operand)}")
    if predicate == "matches":
        if isinstance(operand, re.Pattern):
            return operand
        if not isinstance(operand, str):
            raise ValueError(f"'matches' expects a \"string\" or a /regex/, got {type_name(operand)}")
        try:
            return compile_pattern(operand)  # UnsafePattern is a ValueError: it says why
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
    if predicate == "in" and not isinstance(operand, list | tuple):
        raise ValueError(f"'in' expects a list such as [200, 204], got {type_name(operand)}")
    return _freeze(operand)


def check_tolerance(predicate: str, operand: Any, tolerance: float | None) -> None:
    if tolerance is None:
        return
    if predicate not in EQUALITIES:
        raise ValueError(f"a tolerance (+- N) only goes with == or !=, not with '{predicate}'")
    if not is_number(operand):
        raise ValueError(f"a tolerance (+- N) needs a number to compare with, got {type_name(operand)}")
    if not is_number(tolerance) or tolerance < 0:
        raise ValueError(f"a tolerance must be a number >= 0, got {render(tolerance)}")
