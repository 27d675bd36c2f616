"""``type``: the value has the field's type (string, integer, decimal, date, datetime)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Final

from tzsb.catalog import FieldSpec, FieldType
from tzsb.rules.contract import Check, FieldRuleType

_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_DECIMAL: Final = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and bool(_INTEGER.fullmatch(value)))


def _is_decimal(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) or (isinstance(value, str) and bool(_DECIMAL.fullmatch(value)))


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


# fromisoformat after the strict pattern: the pattern fixes the layout, the C parser checks the
# calendar (month lengths, leap days), twenty times faster than strptime.
def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


_TESTS: Final[dict[FieldType, tuple[Callable[[Any], bool], str, str]]] = {
    FieldType.STRING: (_is_string, "字符串", "a string"),
    FieldType.INTEGER: (_is_integer, "整数", "an integer"),
    FieldType.DECIMAL: (_is_decimal, "数值", "a decimal number"),
    FieldType.DATE: (_is_date, "日期 YYYY-MM-DD", "a date YYYY-MM-DD"),
    FieldType.DATETIME: (_is_datetime, "时间 YYYY-MM-DD HH:MM:SS（北京时间）", "a time YYYY-MM-DD HH:MM:SS (Beijing)"),
}


def build(spec: FieldSpec) -> Check:
    test, zh, en = _TESTS[spec.type]
    text = f"{spec.name}（{spec.code}）应为{zh} / {spec.code} must be {en}"

    def check(value: Any) -> str | None:
        return None if test(value) else text

    return check


RULE_TYPE = FieldRuleType("type", build)
