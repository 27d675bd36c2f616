"""``reference``: a foreign key — a field names a record this node holds, e.g. an inspection's
``EQP_CODE`` a 0101 device.

Off by default (``"enabled": false`` in the shipped sets): a node often receives inspections before
the devices they concern. The rule is a store look-up, not a check: the validator asks the store
once per batch, not per record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tzsb.errors import ConfigurationError
from tzsb.protocol import BUSINESS_TYPES
from tzsb.rules.base import RuleContext, field_label, require_field
from tzsb.rules.contract import BuiltRule, RecordLookup, RecordRuleType


def build(params: Mapping[str, Any], context: RuleContext) -> BuiltRule:
    field = require_field(params, "field", context)
    business = params.get("business")
    if business not in BUSINESS_TYPES:
        raise ConfigurationError(f"rule {params.get('id')!r}: business must be a table 7 code, got {business!r}")
    message = (
        f"{field_label(context, field)}在本节点的 {business} 中不存在，请先报送被引用的记录 / "
        f"{field} names no {business} record held by this node; send that record first"
    )
    return BuiltRule(
        None, reads=(field,), triggers=frozenset({field}), lookup=RecordLookup(str(business), field, message)
    )


RULE_TYPE = RecordRuleType("reference", build, looks_up=True)
