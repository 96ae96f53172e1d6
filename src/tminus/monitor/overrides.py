"""`replay --set RULE.FIELD=VALUE`: parsing the changes and applying them to a rule's configuration,
and describing a rule and what it reads in words."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from tminus.durations import parse_duration
from tminus.errors import ExpectationSyntaxError
from tminus.expect import NoData, TypeMismatch, parse
from tminus.expect.values import render
from tminus.monitor.modes import Consecutive, ErrorRate, For, Increase, Ratio
from tminus.monitor.readers import parse_query
from tminus.monitor.rules import Rule, RuleConfig
from tminus.monitor.text import short_duration

# What --set can change. `threshold` is the condition's operand; `for`/`consecutive` may switch the
# rule's mode; the dotted ones edit one field of the rule's own mode.
FIELDS = (
    "threshold", "when", "for", "consecutive", "on_no_data", "on_error", "max_no_data",
    "increase.query", "increase.window", "increase.at_least",
    "ratio.query", "ratio.above", "ratio.baseline_window", "ratio.floor",
    "error_rate.window", "error_rate.above", "error_rate.min_samples",
)
DURATIONS = {"for", "increase.window", "ratio.baseline_window", "error_rate.window"}
_MODE_TYPES: dict[str, type] = {"increase": Increase, "ratio": Ratio, "error_rate": ErrorRate}
class ReplayError(ValueError):
    """A bad --set: unknown rule or field, or a value the rule cannot take (usage, exit 2)."""


# --- --set -------------------------------------------------------------------------------------


def parse_sets(items: Iterable[str], rule_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`RULE.FIELD=VALUE` items -> {rule: {field: value}}. Rule names may hold spaces and dots, so the
    longest known name followed by "." wins; values are YAML scalars (0.95, 3, 10m, hold)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        rule, name, raw = _split(item, rule_names)
        value = raw if name == "when" else _scalar(raw, item)
        if name in DURATIONS:
            try:
                value = parse_duration(value)
            except ValueError as exc:
                raise ReplayError(f"--set {item!r}: {exc}") from None
        out.setdefault(rule, {})[name] = value
    return out


def _split(item: str, rule_names: Sequence[str]) -> tuple[str, str, str]:
    head, sep, raw = item.partition("=")
    if not sep:
        raise ReplayError(f"--set {item!r} is not RULE.FIELD=VALUE")
    candidates = sorted((n for n in rule_names if head.startswith(n + ".")), key=len, reverse=True)
    if not candidates:
        raise ReplayError(f"--set {item!r}: no rule named like that; the rules are: "
                          + ", ".join(repr(n) for n in rule_names))
    for rule in candidates:
        name = head[len(rule) + 1:].strip()
        if name in FIELDS:
            return rule, name, raw.strip()
    name = head[len(candidates[0]) + 1:].strip()
    raise ReplayError(f"--set {item!r}: rule {candidates[0]!r} has no field {name!r}; fields: "
                      + ", ".join(FIELDS))


def _scalar(raw: str, item: str) -> Any:
    try:
        value = YAML(typ="safe").load(raw)
    except YAMLError:
        return raw
    if value is None:
        raise ReplayError(f"--set {item!r} has no value")
    return raw if isinstance(value, dict | list) else value


def apply_overrides(config: RuleConfig, fields: Mapping[str, Any]) -> RuleConfig:
    """The rule changed by its --set fields; any value it cannot take is a ReplayError."""
    changes: dict[str, Any] = {}
    for name, value in fields.items():
        kind, _, sub = name.partition(".")
        if sub:
            mode_type = _MODE_TYPES[kind]
            if not isinstance(config.mode, mode_type):
                raise ReplayError(f"rule {config.name!r} is {describe_mode(config)}; "
                                  f"{name} only applies to an {kind} rule")
            changes.setdefault(kind, {})[sub] = value
        elif name == "when":
            changes["condition"] = value
        elif name == "threshold":
            changes["threshold"] = _operand(config, value)
        else:
            changes[name] = value
    try:
        changed = config.with_overrides(changes)
        Rule.from_config(changed)  # parses the condition: a bad `when` fails here, not mid-replay
    except (ValueError, TypeError) as exc:
        raise ReplayError(f"rule {config.name!r}: {exc}") from None
    return changed


def _operand(config: RuleConfig, value: Any) -> Any:
    """A text threshold goes through the expectation grammar: 500ms, "quoted", /regex/."""
    if not isinstance(value, str) or config.condition is None:
        return value
    current = config.assertion()
    assert current is not None
    negation = "not " if current.negated else ""
    try:
        return parse(f"{current.subject} {negation}{current.predicate} {value}").operand
    except ExpectationSyntaxError:
        return value  # with_operand says what fits


def describe_mode(config: RuleConfig) -> str:
    mode = config.mode
    if isinstance(mode, For):
        return f"a `for {short_duration(mode.seconds)}` rule"
    if isinstance(mode, Consecutive):
        return f"a `consecutive {mode.count}` rule"
    return f"an {type(mode).__name__.lower().replace('errorrate', 'error_rate')} rule"


def describe(config: RuleConfig) -> str:
    """The rule in one line, as its author would read it."""
    mode, cond = config.mode, config.condition
    if isinstance(mode, For):
        text = f"{cond} for {short_duration(mode.seconds)}"
    elif isinstance(mode, Consecutive):
        text = f"{cond} on {mode.count} probe{'s' if mode.count != 1 else ''} in a row"
    elif isinstance(mode, Increase):
        text = f"{mode.query} rises by at least {mode.at_least:g} within {short_duration(mode.window)}"
    elif isinstance(mode, Ratio):
        text = f"{mode.query} above {mode.above:g}x its pre-cutover baseline"
    else:
        failures = f"failed probes or {cond}" if cond else "failed probes"
        text = f"{failures} above {mode.above:.1%} over {short_duration(mode.window)}"
    policies = [f"{k} {getattr(config, k)}" for k in ("on_no_data", "on_error") if getattr(config, k) != "breach"]
    if config.max_no_data is not None:
        policies.append(f"max_no_data {config.max_no_data}")
    return text + (f" ({', '.join(policies)})" if policies else "")


def reading(config: RuleConfig, values: Mapping[str, Any] | None, error: str | None) -> str:
    """What the rule reads from one sample, e.g. `0.93` or `probe error: refused`."""
    if error is not None or values is None:
        return f"probe error: {error or 'nothing returned'}"
    query = config.assertion()
    if isinstance(config.mode, Increase | Ratio):
        query = parse_query(config.mode.query)
    if query is None:
        return "probe ok"
    try:
        return render(query.extract(values), 80)
    except (NoData, TypeMismatch) as exc:
        return f"no data ({exc})"
