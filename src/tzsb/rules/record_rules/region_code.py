"""``region_code``: an administrative-division code exists in GB/T 2260 (offline table)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tzsb.catalog import division_name
from tzsb.protocol import NATIONAL
from tzsb.rules.base import RuleContext, field_label, present, require_field
from tzsb.rules.contract import BuiltRule, RecordRuleType


def build(params: Mapping[str, Any], context: RuleContext) -> BuiltRule:
    field = require_field(params, "field", context)
    message = (
        f"{field_label(context, field)}不是 GB/T 2260 中存在的行政区划代码 / {field} is not a GB/T 2260 division code"
    )

    def check(record: Mapping[str, Any], now: str) -> list[tuple[str, str]]:
        value = present(record, field)
        if not isinstance(value, str) or value == NATIONAL:
            return []
        return [] if division_name(value) is not None else [(field, message)]

    return BuiltRule(check, reads=(field,), triggers=frozenset({field}))


RULE_TYPE = RecordRuleType("region_code", build)
