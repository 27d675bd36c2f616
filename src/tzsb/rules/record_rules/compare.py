"""``compare``: two fields of one record stand in a relation, e.g. 下次检验日期 > 检验日期."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from tzsb.errors import ConfigurationError
from tzsb.rules.base import RuleContext, field_label, present, require_field
from tzsb.rules.contract import BuiltRule, RecordRuleType

_OPERATORS: Final[dict[str, tuple[Callable[[Any, Any], bool], str, str]]] = {
    "<": (operator.lt, "早于/小于", "less than"),
    "<=": (operator.le, "不晚于/不大于", "at most"),
    ">": (operator.gt, "晚于/大于", "greater than"),
    ">=": (operator.ge, "不早于/不小于", "at least"),
    "==": (operator.eq, "等于", "equal to"),
    "!=": (operator.ne, "不等于", "different from"),
}


def _comparable(value: Any, numeric: bool) -> Any:
    if not numeric:
        return str(value)
    text = str(value)
    if isinstance(value, bool) or not text.isascii():
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None  # NaN would signal on comparison


def build(params: Mapping[str, Any], context: RuleContext) -> BuiltRule:
    field = require_field(params, "field", context)
    other = require_field(params, "other", context)
    op = params.get("op")
    if op not in _OPERATORS:
        raise ConfigurationError(f"rule {params.get('id')!r}: op must be one of {' '.join(_OPERATORS)}")
    test, zh, en = _OPERATORS[op]
    spec = context.business.field(field)
    numeric = spec is not None and spec.type.value in ("integer", "decimal")
    message = f"{field_label(context, field)}应{zh}{field_label(context, other)} / {field} must be {en} {other}"

    def check(record: Mapping[str, Any], now: str) -> list[tuple[str, str]]:
        left, right = present(record, field), present(record, other)
        if left is None or right is None:
            return []
        a, b = _comparable(left, numeric), _comparable(right, numeric)
        if a is None or b is None:
            return []
        return [] if test(a, b) else [(field, message)]

    return BuiltRule(check, reads=(field, other), triggers=frozenset({field, other}))


RULE_TYPE = RecordRuleType("compare", build)
