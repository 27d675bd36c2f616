"""``numeric_range``: a number lies within ``min`` … ``max`` (either may be left out)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tzsb.errors import ConfigurationError
from tzsb.rules.base import RuleContext, field_label, finite_number, present, require_field
from tzsb.rules.contract import BuiltRule, RecordRuleType


def build(params: Mapping[str, Any], context: RuleContext) -> BuiltRule:
    field = require_field(params, "field", context)
    low = finite_number(params["min"]) if "min" in params else None
    high = finite_number(params["max"]) if "max" in params else None
    for key, bound in (("min", low), ("max", high)):
        if key in params and bound is None:
            raise ConfigurationError(f"rule {params.get('id')!r}: numeric_range {key} must be a number")
    if low is None and high is None:
        raise ConfigurationError(f"rule {params.get('id')!r}: numeric_range needs min or max")
    label = field_label(context, field)
    if high is None:
        message = f"{label}应不小于 {low} / {field} must be at least {low}"
    elif low is None:
        message = f"{label}应不大于 {high} / {field} must be at most {high}"
    else:
        message = f"{label}应在 {low} … {high} 范围内 / {field} must lie within {low} … {high}"

    def check(record: Mapping[str, Any], now: str) -> list[tuple[str, str]]:
        value = present(record, field)
        if value is None:
            return []
        number = finite_number(value)
        if number is None or not number.is_finite():
            return []  # not a number at all: the type rule reports it
        if (low is not None and number < low) or (high is not None and number > high):
            return [(field, message)]
        return []

    return BuiltRule(check, reads=(field,), triggers=frozenset({field}))


RULE_TYPE = RecordRuleType("numeric_range", build)
