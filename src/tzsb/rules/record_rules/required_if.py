"""``required_if``: field B is required when field A has one of the given values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tzsb.errors import ConfigurationError
from tzsb.rules.base import RuleContext, field_label, present, require_field
from tzsb.rules.contract import BuiltRule, RecordRuleType


def build(params: Mapping[str, Any], context: RuleContext) -> BuiltRule:
    field = require_field(params, "field", context)
    when = require_field(params, "when", context)
    values = params.get("in")
    if not isinstance(values, list) or not values or not all(isinstance(item, str) for item in values):
        raise ConfigurationError(f"rule {params.get('id')!r}: required_if needs 'in': a list of values of {when}")
    triggers = frozenset(values)
    message = (
        f"{field_label(context, when)}为 {'/'.join(values)} 时，{field_label(context, field)}为必填项 / "
        f"{field} is required when {when} is {' or '.join(values)}"
    )

    def check(record: Mapping[str, Any], now: str) -> list[tuple[str, str]]:
        trigger = record.get(when)
        if isinstance(trigger, str) and trigger in triggers and present(record, field) is None:
            return [(field, message)]
        return []

    return BuiltRule(check, reads=(field, when), triggers=frozenset({when}))


RULE_TYPE = RecordRuleType("required_if", build)
