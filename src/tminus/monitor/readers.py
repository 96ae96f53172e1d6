"""Reading one sample through the shared expectation grammar.

Fail-closed by construction: only a sample whose condition was actually judged false is a
pass. A value of the wrong type (the breach condition can neither hold nor fail) is *no data*,
never a quiet pass, and a failed probe is an error.
"""

from __future__ import annotations

import math
from dataclasses import replace

from tminus.errors import ExpectationSyntaxError
from tminus.expect import Assertion, NoData, TypeMismatch, parse
from tminus.expect.values import is_number, render
from tminus.monitor.samples import Outcome, Reading, Sample


def probe_error(sample: Sample) -> Reading | None:
    if sample.error is not None:
        return Reading(Outcome.ERROR, None, f"probe error: {sample.error}")
    if sample.values is None:
        return Reading(Outcome.ERROR, None, "probe error: the probe returned nothing")
    return None


def read_condition(condition: Assertion, sample: Sample) -> Reading:
    """PASS, BREACH, NO_DATA or ERROR: the condition describes the breach."""
    failed = probe_error(sample)
    if failed is not None:
        return failed
    assert sample.values is not None
    verdict = condition.evaluate(sample.values)
    if verdict.passed is None:
        return Reading(Outcome.NO_DATA, None, verdict.message.removeprefix(f"{condition.text}: "))
    if isinstance(verdict.actual, float) and math.isnan(verdict.actual):
        # NaN compares false with everything, so it would pass any threshold.
        return Reading(Outcome.NO_DATA, None, f"no usable value: {condition.subject} is NaN")
    if verdict.passed:
        return Reading(Outcome.BREACH, verdict.actual, f"{render(verdict.actual)} {condition.expected}")
    # A type mismatch fails the condition *and* its negation; a genuine pass only fails it.
    if replace(condition, negated=not condition.negated).evaluate(sample.values).passed is False:
        return Reading(Outcome.NO_DATA, verdict.actual, f"no usable value: {verdict.message}")
    return Reading(Outcome.PASS, verdict.actual, f"{render(verdict.actual)}, not {condition.expected}")


def parse_query(text: str) -> Assertion:
    """A query and its filters without a predicate (`jsonpath "$.restarts"`), for counters and ratios.

    Raises ValueError when the text has a predicate: a threshold there would silently do nothing.
    """
    try:
        return parse(f"{text} exists")  # the predicate is never evaluated, only the query
    except ExpectationSyntaxError:
        pass
    try:
        parse(text)
    except ExpectationSyntaxError as exc:
        raise ValueError(f"invalid query: {exc}") from None
    raise ValueError(f"'{text}' has a predicate; give only the query and filters, e.g. jsonpath \"$.restarts\"")


def read_number(query: Assertion, sample: Sample) -> Reading:
    """VALUE (a number), NO_DATA or ERROR."""
    failed = probe_error(sample)
    if failed is not None:
        return failed
    assert sample.values is not None
    subject = query.subject
    try:
        value = query.extract(sample.values)
    except NoData as missing:
        return Reading(Outcome.NO_DATA, None, f"no data, {missing}")
    except TypeMismatch as exc:
        return Reading(Outcome.NO_DATA, None, f"no usable value: {subject}: {exc}")
    if not is_number(value) or math.isnan(value):
        return Reading(Outcome.NO_DATA, value, f"no usable value: {subject} is {render(value)}, not a number")
    return Reading(Outcome.VALUE, float(value), f"{subject} = {render(value)}")
