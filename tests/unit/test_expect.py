"""The expectation grammar: parsing, every query, filter and predicate, no data, strict types."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest

from tminus.errors import ExpectationSyntaxError
from tminus.expect import (
    FILTERS,
    PREDICATES,
    QUERIES,
    Assertion,
    Filter,
    NoData,
    TypeMismatch,
    Verdict,
    evaluate_all,
    parse,
)
from tminus.expect.jsonpath import JsonPathError, compile_path


def judge(text: str, values: dict[str, Any]) -> Verdict:
    return parse(text).evaluate(values)


def passed(text: str, values: dict[str, Any]) -> bool | None:
    return judge(text, values).passed


# --- parsing -----------------------------------------------------------------------------


BRIEF_EXAMPLES = [
    "status == 503",
    'header "Retry-After" exists',
    'jsonpath "$.error.code" == "DB_POOL_EXHAUSTED"',
    'jsonpath "$.database_pool.state.saturation" < 0.90',
    'jsonpath "$.items" count >= 3',
    'body not contains "Traceback"',
    "exit_code == 0",
    r"stdout matches /v\d+\.\d+/",
    "duration < 500ms",
    "scalar == 0",
    "scalar >= 0.95",
    'column "avg" == 0.95 +- 0.01',
    "rows count == 0",
    'not header "X-Debug" exists',
    "status in [200, 204]",
]


@pytest.mark.parametrize("text", BRIEF_EXAMPLES)
def test_every_example_parses_and_round_trips(text: str) -> None:
    a = parse(text)
    assert a.text == text
    again = parse(a.canonical())
    assert (again.query, again.argument, again.filters, again.negated, again.predicate) == (
        a.query,
        a.argument,
        a.filters,
        a.negated,
        a.predicate,
    )
    assert again.tolerance == a.tolerance
    if isinstance(a.operand, re.Pattern):
        assert again.operand.pattern == a.operand.pattern
    else:
        assert again.operand == a.operand


def test_parts_of_a_full_assertion() -> None:
    a = parse('jsonpath "$.items" nth 2 toFloat not == 0.5 +- 0.25')
    assert a.query == "jsonpath"
    assert a.argument == "$.items"
    assert a.filters == (Filter("nth", 2), Filter("toFloat"))
    assert a.negated is True
    assert (a.predicate, a.operand, a.tolerance) == ("==", 0.5, 0.25)
    assert a.expected == "not == 0.5 +- 0.25"


@pytest.mark.parametrize(
    ("text", "operand"),
    [
        ("value == 42", 42),
        ("value == -7", -7),
        ("value == 0.5", 0.5),
        ("value == 1e3", 1000.0),
        ("value == true", True),
        ("value == false", False),
        ("value == null", None),
        ('value == "a \\"quoted\\" \\\\ word\\n\\t\\u00e9"', 'a "quoted" \\ word\n\té'),
        ('value == "a/b\\/c"', "a/b/c"),
        ('value == [1, "a", [true, null], 2.5]', (1, "a", (True, None), 2.5)),
        ("value == []", ()),
        ("duration < 500ms", 500),
        ("duration < 2s", 2000),
        ("duration < 1m", 60000),
        ("duration < 1h", 3_600_000),
        ("duration < 1m30s", 90000),
        ("duration < 1.5s", 1500),
        ("duration < 0.5ms", 0.5),
    ],
)
def test_typed_literals(text: str, operand: Any) -> None:
    got = parse(text).operand
    assert got == operand
    assert type(got) is type(operand)


def test_regex_literal_keeps_backslashes_and_unescapes_slash() -> None:
    a = parse(r"stdout matches /^v\d+\/x$/")
    assert isinstance(a.operand, re.Pattern)
    assert a.operand.pattern == r"^v\d+/x$"
    assert parse('stdout matches "^v[0-9]+"').operand.pattern == "^v[0-9]+"


def test_tolerance_spellings_and_whitespace() -> None:
    assert parse("scalar == 0.95 ± 0.01").tolerance == 0.01
    assert parse("scalar==0.95+-0.01").tolerance == 0.01
    assert parse("scalar != 1 +- 2").tolerance == 2.0


def test_negation_in_either_place_and_length_alias() -> None:
    assert parse('not body contains "x"').negated
    assert parse('body not contains "x"').negated
    assert not parse('body contains "x"').negated
    assert parse("rows length == 1").filters == (Filter("count"),)


def test_parse_is_cached_and_assertions_are_hashable() -> None:
    a = parse("status in [200, 204]")
    assert parse("status in [200, 204]") is a
    assert len({a, parse("status in [200,204]"), parse("status in [200, 204]")}) == 2


def test_vocabulary_covers_the_documented_names() -> None:
    for name in [
        "status", "exit_code", "stdout", "stderr", "body", "duration", "scalar", "rows",
        "rowcount", "count", "exists", "open", "matches", "content", "files", "value", "json",
        "header", "jsonpath", "column",
    ]:  # fmt: skip
        assert name in QUERIES
    for name in [
        "==", "!=", ">", ">=", "<", "<=", "exists", "isEmpty", "contains", "startsWith",
        "endsWith", "matches", "in", "isNumber", "isString", "isBoolean", "isList", "isObject",
        "isNull",
    ]:  # fmt: skip
        assert name in PREDICATES
    assert set(FILTERS) == {
        "count", "length", "first", "last", "nth", "toInt", "toFloat", "toString", "trim",
        "lower", "upper", "keys",
    }  # fmt: skip
    assert all(isinstance(v, str) and v for v in [*QUERIES.values(), *PREDICATES.values()])


# --- syntax errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("", 0, "expected a query"),
        ("== 200", 0, "expected a query"),
        ("staus == 200", 0, "did you mean 'status'"),
        ("bogus == 1", 0, 'header "Name", jsonpath "$.path", column "name"'),
        ("status", 6, "expected a predicate (==, !=, <, <=, >, >=, exists, contains, ...) after 'status'"),
        ("status equals 200", 7, "got 'equals'"),
        ('status cont "x"', 7, "did you mean 'count'"),
        ("status == 'x'", 10, "double quotes"),
        ("status ==", 9, "expected a value"),
        ("status < ", 9, "a number or a duration"),
        ('status < "a"', 9, "'<' compares numbers"),
        ("status == /x/", 10, "only goes with 'matches'"),
        ('status == "200', 10, "unterminated string"),
        ("stdout matches /abc", 15, "unterminated /regex/"),
        ("stdout matches /(/", 15, "invalid regular expression"),
        ('stdout matches "("', 15, "invalid regular expression"),
        ("stdout startsWith 5", 18, 'expects a "string"'),
        ("status in 200", 10, "a list such as [200, 204]"),
        ("status in [200 204]", 15, "expected ',' or ']'"),
        ("status in [200, /x/]", 16, "cannot be a list item"),
        ("status in [200,", 15, "expected a value"),
        ("status exists 5", 14, "'exists' takes no operand"),
        ("status == 200 300", 14, "the expectation has ended"),
        ("duration < 5x", 11, "neither a number nor a duration"),
        ("status > 1 +- 2", 11, "only goes with == or !="),
        ('status == "a" +- 1', 10, "needs a number"),
        ("status == 1 +- -1", 15, "a tolerance must be a number >= 0"),
        ("status == 1 +- x", 15, "expected a number after '+-'"),
        ("not status not == 1", 11, "'not' may appear once"),
        ("header == 1", 7, "expected a quoted \"Name\" after 'header'"),
        ('header "" exists', 7, "expected a quoted"),
        ("jsonpath $.a == 1", 9, "unexpected character '$'"),
        ('jsonpath "a.b" == 1', 10, "starts with '$'"),
        ('jsonpath "$.a[?(@.x)]" exists', 14, "filter expressions"),
        ('jsonpath "$.a[1" exists', 15, "expected ',' or ']'"),
        ("rows nth x == 1", 9, "expected an index"),
        ("rows nth -1 == 1", 9, "expected an index"),
        ('value == "\\q"', 10, "unknown escape"),
        ("status == 200 & 1", 14, "unexpected character '&'"),
    ],
)
def test_syntax_errors_point_at_the_offending_token(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ExpectationSyntaxError) as info:
        parse(text)
    err = info.value
    assert fragment in str(err)
    assert err.column == column, str(err)
    assert err.text == text


def test_syntax_error_rendering_has_a_caret_under_the_column() -> None:
    with pytest.raises(ExpectationSyntaxError) as info:
        parse("status equals 200")
    lines = str(info.value).splitlines()
    assert lines[-2].strip() == "status equals 200"
    assert lines[-1].index("^") - lines[-2].index("s") == 7


# --- queries -------------------------------------------------------------------------------


BARE = [q for q in QUERIES if q not in ("header", "jsonpath", "column")]


@pytest.mark.parametrize("name", BARE)
def test_bare_queries_read_their_value(name: str) -> None:
    assert passed(f"{name} == 7", {name: 7}) is True
    assert passed(f"{name} == 7", {name: 8}) is False
    v = judge(f"{name} == 7", {"other": 7})
    assert v.passed is None
    assert v.message == f"{name} == 7: no data, {name} is missing"


def test_present_null_is_data_not_missing() -> None:
    assert passed("scalar isNull", {"scalar": None}) is True
    assert passed("scalar == null", {"scalar": None}) is True
    assert passed("scalar == 0", {"scalar": None}) is False


def test_header_lookup_ignores_case() -> None:
    values = {"headers": {"Retry-After": "120", "content-type": "text/plain"}}
    assert passed('header "retry-after" == "120"', values) is True
    assert passed('header "Content-Type" startsWith "text/"', values) is True
    v = judge('header "X-Missing" == "1"', values)
    assert v.passed is None
    assert 'header "X-Missing" is missing' in v.message
    assert passed('header "X" exists', {}) is False  # no headers at all: absence still answers


def test_header_lookup_on_httpx_headers() -> None:
    import httpx

    headers = httpx.Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X-Id", "9")])
    assert passed('header "x-id" == "9"', {"headers": headers}) is True
    assert judge('header "SET-COOKIE" contains "b=2"', {"headers": headers}).passed is True


DOC = {
    "error": {"code": "DB_POOL_EXHAUSTED"},
    "items": [{"id": 1, "tags": ["a"]}, {"id": 2, "tags": []}, {"id": 3}],
    "odd key": {"x.y": 5},
    "pool": {"state": {"saturation": 0.97}},
    "nothing": None,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DOC),
        ("$.error.code", "DB_POOL_EXHAUSTED"),
        ("$['error']['code']", "DB_POOL_EXHAUSTED"),
        ('$["odd key"]["x.y"]', 5),
        ("$.items[0].id", 1),
        ("$.items[-1].id", 3),
        ("$.items[*].id", [1, 2, 3]),
        ("$.items.*.id", [1, 2, 3]),
        ("$.items[0:2].id", [1, 2]),
        ("$.items[::2].id", [1, 3]),
        ("$.items[0,2].id", [1, 3]),
        ("$..id", [1, 2, 3]),
        ("$..tags[0]", ["a"]),
        ("$.pool..saturation", [0.97]),
        ("$.nothing", None),
    ],
)
def test_jsonpath_selection(path: str, expected: Any) -> None:
    a = parse(f"jsonpath {json.dumps(path)} exists")
    assert a.extract({"json": DOC}) == expected


@pytest.mark.parametrize("path", ["$.missing", "$.items[9]", "$.items[*].nope", "$..nope", "$.error.code.x"])
def test_jsonpath_matching_nothing_is_no_data(path: str) -> None:
    a = parse(f"jsonpath {json.dumps(path)} == 1")
    with pytest.raises(NoData, match="matched nothing"):
        a.extract({"json": DOC})
    assert a.evaluate({"json": DOC}).passed is None
    assert parse(f"jsonpath {json.dumps(path)} exists").evaluate({"json": DOC}).passed is False
    assert parse(f"not jsonpath {json.dumps(path)} exists").evaluate({"json": DOC}).passed is True


def test_jsonpath_without_a_json_body_is_no_data() -> None:
    v = judge('jsonpath "$.a" == 1', {"body": "<html>"})
    assert v.passed is None
    assert "no JSON body" in v.message


def test_jsonpath_compile_errors_carry_offsets() -> None:
    with pytest.raises(JsonPathError) as info:
        compile_path("$.a..")
    assert info.value.offset == 5
    with pytest.raises(JsonPathError, match="slice step cannot be 0"):
        compile_path("$[::0]")
    with pytest.raises(JsonPathError, match="cannot be combined"):
        compile_path("$[1,2:3]")
    assert compile_path("$.a[0]").definite
    assert not compile_path("$.a[0,1]").definite


def test_jsonpath_walks_deep_documents_without_recursion() -> None:
    doc: Any = {"leaf": 1}
    for _ in range(5000):
        doc = {"n": doc}
    assert parse('jsonpath "$..leaf" first == 1').evaluate({"json": doc}).passed is True


def test_column_reads_the_first_row() -> None:
    rows = [{"avg": 0.951, "n": 3}, {"avg": 0.5, "n": 1}]
    assert passed('column "avg" == 0.95 +- 0.01', {"rows": rows}) is True
    v = judge('column "mean" == 1', {"rows": rows})
    assert v.passed is None
    assert 'column "mean" is missing (columns: avg, n)' in v.message
    assert "returned no rows" in judge('column "avg" == 1', {"rows": []}).message
    assert passed('column "avg" == 1', {}) is None


def test_column_reads_sqlalchemy_rows() -> None:
    import sqlalchemy as sa

    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT 0.95 AS avg, 'ok' AS state")).fetchall()
    values = {"rows": rows, "scalar": rows[0][0]}
    assert passed('column "avg" == 0.95', values) is True
    assert passed('column "state" == "ok"', values) is True
    assert passed("rows count == 1", values) is True


# --- filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("value count == 3", {"value": [1, 2, 3]}),
        ("value length == 2", {"value": {"a": 1, "b": 2}}),
        ("value count == 5", {"value": "hello"}),
        ("value first == 1", {"value": [1, 2, 3]}),
        ("value last == 3", {"value": [1, 2, 3]}),
        ("value nth 1 == 2", {"value": [1, 2, 3]}),
        ("value toInt == 42", {"value": " 42 "}),
        ("value toInt == 3", {"value": 3.9}),
        ("value toInt == 2", {"value": Decimal("2.5")}),
        ("value toFloat == 0.5", {"value": "0.5"}),
        ("value toFloat isNumber", {"value": 1}),
        ('value toString == "200"', {"value": 200}),
        ('value toString == "true"', {"value": True}),
        ('value toString == "null"', {"value": None}),
        ('value toString == "[1, \\"a\\"]"', {"value": [1, "a"]}),
        ('value trim == "x"', {"value": "  x \n"}),
        ('value lower == "abc"', {"value": "AbC"}),
        ('value upper == "ABC"', {"value": "AbC"}),
        ('value keys == ["a", "b"]', {"value": {"a": 1, "b": 2}}),
        ('jsonpath "$.items" nth 1 keys count == 2', {"json": DOC}),
        ('jsonpath "$.items[*].id" last toString == "3"', {"json": DOC}),
    ],
)
def test_filters(text: str, values: dict[str, Any]) -> None:
    v = judge(text, values)
    assert v.passed is True, v.message


@pytest.mark.parametrize(
    ("text", "value", "fragment"),
    [
        ("value count == 1", 5, "filter count needs a list, an object or a string, got number"),
        ("value first == 1", "abc", 'filter first needs a list, got string "abc"'),
        ("value toInt == 1", "1.5", 'cannot read an integer from string "1.5"'),
        ("value toFloat == 1", "abc", 'cannot read a number from string "abc"'),
        ("value toInt == 1", True, "needs a number or a string, got boolean"),
        ("value toInt == 1", float("inf"), "needs a number or a string"),
        ("value trim == 1", 5, "filter trim needs a string, got number 5"),
        ("value keys == []", [1], "filter keys needs an object, got list"),
    ],
)
def test_filter_type_errors_fail_even_when_negated(text: str, value: Any, fragment: str) -> None:
    v = judge(text, {"value": value})
    assert v.passed is False
    assert fragment in v.message
    negated = parse(text.replace("value", "not value", 1)).evaluate({"value": value})
    assert negated.passed is False


def test_index_past_the_end_is_no_data() -> None:
    v = judge("value nth 5 == 1", {"value": [1, 2]})
    assert v.passed is None
    assert "nth 5 is missing: the list has 2 items" in v.message
    assert passed("value first == 1", {"value": []}) is None
    assert passed("value first exists", {"value": []}) is False


# --- predicates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("value == 200", 200, True),
        ("value == 200", 200.0, True),
        ("value == 200", 201, False),
        ("value != 200", 201, True),
        ("value != 200", 200, False),
        ('value == "200"', 200, False),
        ('value != "200"', 200, True),
        ("value == 1", True, False),
        ("value == true", True, True),
        ("value == true", 1, False),
        ("value == null", None, True),
        ("value == null", 0, False),
        ('value == [1, "a"]', [1, "a"], True),
        ('value == [1, "a"]', [1, "a", 2], False),
        ("value == [1]", ["1"], False),
        ("value > 1", 2, True),
        ("value > 2", 2, False),
        ("value >= 2", 2, True),
        ("value < 0.9", 0.97, False),
        ("value <= 0.97", 0.97, True),
        ("value < 500ms", 499.9, True),
        ("value < 500ms", 500, False),
        ("value in [200, 204]", 204, True),
        ("value in [200, 204]", 500, False),
        ('value in [200, "x"]', "x", True),
        ('value contains "ace"', "Traceback", True),
        ('value contains "x"', "Traceback", False),
        ("value contains 2", [1, 2], True),
        ('value contains "2"', [1, 2], False),
        ('value contains "a"', {"a": 1}, True),
        ('value startsWith "Tr"', "Traceback", True),
        ('value endsWith "back"', "Traceback", True),
        ('value endsWith "Tr"', "Traceback", False),
        (r"value matches /v\d+\.\d+/", "release v1.22 ok", True),
        (r"value matches /^v\d+$/", "release v1", False),
        ('value matches "^OK"', "OK done", True),
        ("value exists", 0, True),
        ("value exists", None, True),
        ("value isEmpty", "", True),
        ("value isEmpty", [], True),
        ("value isEmpty", {}, True),
        ("value isEmpty", [0], False),
        ("value isNumber", 1.5, True),
        ("value isNumber", Decimal("1"), True),
        ("value isNumber", True, False),
        ("value isNumber", "1", False),
        ("value isString", "", True),
        ("value isString", 1, False),
        ("value isBoolean", False, True),
        ("value isBoolean", 0, False),
        ("value isList", [], True),
        ("value isList", "[]", False),
        ("value isObject", {}, True),
        ("value isObject", [], False),
        ("value isNull", None, True),
        ("value isNull", 0, False),
    ],
)
def test_predicates_and_their_negations(text: str, value: Any, expected: bool) -> None:
    assert passed(text, {"value": value}) is expected
    assert passed(text.replace("value", "value not", 1), {"value": value}) is (not expected)
    assert passed("not " + text, {"value": value}) is (not expected)


def test_decimal_compares_with_floats_as_written() -> None:
    assert passed("scalar == 0.95", {"scalar": Decimal("0.95")}) is True
    assert passed("scalar >= 0.95", {"scalar": Decimal("0.95")}) is True
    assert passed("scalar < 0.95", {"scalar": Decimal("0.95")}) is False
    assert passed("scalar in [0.95]", {"scalar": Decimal("0.95")}) is True
    assert passed("scalar == 0.95 +- 0.01", {"scalar": Decimal("0.951")}) is True


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("value == 0.95 +- 0.01", 0.955, True),
        ("value == 0.95 +- 0.01", 0.94, True),
        ("value == 0.95 +- 0.01", 0.97, False),
        ("value == 10 +- 0", 10, True),
        ("value != 0.95 +- 0.01", 0.97, True),
        ("value != 0.95 +- 0.01", 0.951, False),
    ],
)
def test_tolerance(text: str, value: float, expected: bool) -> None:
    assert passed(text, {"value": value}) is expected


@pytest.mark.parametrize(
    ("text", "value", "fragment"),
    [
        ("value < 0.9", "0.5", 'expected a number < 0.9, got string "0.5"'),
        ("value >= 1", True, "expected a number >= 1, got boolean true"),
        ("value == 1 +- 0.5", "1", 'expected a number within 1 +- 0.5, got string "1"'),
        ('value contains "a"', 5, "expected a string, a list or an object to look into, got number 5"),
        ("value contains 1", "abc1", "(a string only contains strings)"),
        ('value startsWith "a"', ["a"], 'expected a string for startsWith, got list ["a"]'),
        ("value matches /a/", None, "expected a string for matches, got null"),
        ("value isEmpty", 0, "expected a string, a list or an object for isEmpty, got number 0"),
    ],
)
def test_type_errors_fail_even_when_negated(text: str, value: Any, fragment: str) -> None:
    v = judge(text, {"value": value})
    assert v.passed is False
    assert fragment in v.message
    assert passed("not " + text, {"value": value}) is False


# --- no data -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('header "Retry-After" exists', False),
        ('not header "Retry-After" exists', True),
        ('header "Retry-After" not exists', True),
        ('header "Retry-After" isNull', True),
        ('header "Retry-After" not isNull', False),
        ('header "Retry-After" == "1"', None),
        ('header "Retry-After" != "1"', None),
        ('not header "Retry-After" == "1"', None),
        ('header "Retry-After" isString', None),
        ('header "Retry-After" count > 0', None),
        ('header "Retry-After" isEmpty', None),
    ],
)
def test_absence_is_no_data_except_for_exists_and_is_null(text: str, expected: bool | None) -> None:
    v = judge(text, {"headers": {"Other": "x"}})
    assert v.passed is expected
    assert v.actual is None
    assert 'header "Retry-After" is missing' in v.message


def test_extract_raises_no_data_naming_what_is_missing() -> None:
    with pytest.raises(NoData, match=r"^stdout is missing$"):
        parse('stdout contains "x"').extract({})
    with pytest.raises(NoData, match=r"^nth 3 is missing: the list has 1 items$"):
        parse("value nth 3 == 1").extract({"value": [1]})
    assert isinstance(parse("stdout exists"), Assertion)
    with pytest.raises(TypeMismatch, match="filter trim needs a string, got number 5"):
        parse("value trim == 1").extract({"value": 5})


# --- verdicts and messages -----------------------------------------------------------------


def test_messages_show_expected_and_actual() -> None:
    assert judge("status == 200", {"status": 503}).message == "status == 200: expected 200, got 503"
    assert judge("status == 200", {"status": "200"}).message == 'status == 200: expected number 200, got string "200"'
    assert judge("status == 200", {"status": 200}).message == "status == 200: ok, got 200"
    assert judge("duration < 500ms", {"duration": 812.5}).message == "duration < 500ms: expected < 500ms, got 812.5"
    assert (
        judge('body not contains "Traceback"', {"body": "a Traceback"}).message
        == 'body not contains "Traceback": expected not contains "Traceback", got "a Traceback"'
    )
    assert judge("value == null", {"value": 0}).message == "value == null: expected null, got number 0"
    assert judge("value == 0", {"value": None}).message == "value == 0: expected number 0, got null"
    assert judge("value isNumber", {"value": "5"}).message == 'value isNumber: expected isNumber, got string "5"'
    assert (
        judge("status in [200, 204]", {"status": "200"}).message
        == 'status in [200, 204]: expected in [200, 204], got string "200"'
    )
    assert (
        judge('header "Retry-After" exists', {"headers": {}}).message
        == 'header "Retry-After" exists: header "Retry-After" is missing'
    )


def test_verdict_fields() -> None:
    v = judge('column "avg" == 0.95 +- 0.01', {"rows": [{"avg": 0.9}]})
    assert v.assertion == 'column "avg" == 0.95 +- 0.01'
    assert v.passed is False
    assert v.actual == 0.9
    assert v.expected == "== 0.95 +- 0.01"
    assert v.message == 'column "avg" == 0.95 +- 0.01: expected 0.95 +- 0.01, got 0.9'
    assert parse('not header "X" exists').expected == "not exists"


def test_long_values_are_truncated_in_messages_and_dicts() -> None:
    body = "x" * 5000
    v = judge('body contains "Traceback"', {"body": body})
    assert len(v.message) < 400
    assert "(5002 characters)" in v.message
    d = v.to_dict()
    assert len(d["actual"]) < 600
    assert json.loads(json.dumps(d)) == d


def test_to_dict_is_json_safe_for_any_actual() -> None:
    for actual in [Decimal("0.95"), {"a": [1, (2, 3)]}, b"bytes", float("nan"), 5, None, True, "s"]:
        d = Verdict("value exists", True, actual, "exists", "ok").to_dict()
        json.dumps(d, allow_nan=False)
        assert set(d) == {"assertion", "passed", "actual", "expected", "message"}
    assert Verdict("a", None, 5, "== 1", "m").to_dict()["actual"] == 5


def test_evaluate_all_keeps_order_and_distinguishes_outcomes() -> None:
    assertions = [parse(t) for t in ["status == 200", "status == 500", "exit_code == 0"]]
    verdicts = evaluate_all(assertions, {"status": 200})
    assert [v.passed for v in verdicts] == [True, False, None]
    assert [v.assertion for v in verdicts] == ["status == 200", "status == 500", "exit_code == 0"]


# --- replay --------------------------------------------------------------------------------


def test_with_operand_changes_only_the_threshold() -> None:
    rule = parse('jsonpath "$.pool.state.saturation" < 0.90')
    stricter = rule.with_operand(0.98)
    assert stricter.operand == 0.98
    assert stricter.text == 'jsonpath "$.pool.state.saturation" < 0.98'
    assert (stricter.query, stricter.argument, stricter.predicate) == (rule.query, rule.argument, "<")
    assert rule.operand == 0.9
    assert rule.evaluate({"json": DOC}).passed is False
    assert stricter.evaluate({"json": DOC}).passed is True
    assert stricter.evaluate({"json": DOC}).expected == "< 0.98"


def test_with_operand_validates_and_normalises() -> None:
    assert parse('stdout matches "a"').with_operand("^b").operand.pattern == "^b"
    assert parse("status in [1]").with_operand([2, 3]).operand == (2, 3)
    tolerant = parse("scalar not == 1 +- 0.1").with_operand(2)
    assert tolerant.text == "scalar not == 2 +- 0.1"
    assert tolerant.evaluate({"scalar": 2.05}).passed is False
    with pytest.raises(ValueError, match="compares numbers"):
        parse("status < 1").with_operand("x")
    with pytest.raises(ValueError, match="takes no operand"):
        parse("status exists").with_operand(1)
    with pytest.raises(ValueError, match="needs a number"):
        parse("scalar == 1 +- 0.1").with_operand("1")
