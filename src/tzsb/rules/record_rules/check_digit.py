"""``check_digit``: 统一社会信用代码 (GB 32100, ``scheme: uscc``) or 身份证号码 (GB 11643, ``scheme: id_card``).

The check characters are computed by python-stdnum; for ID numbers the birth date must also be a
real date not in the future. Some genuine early credit codes fail the check: configure the
severity as ``warning`` where that matters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Any, Final

from stdnum.cn import ric, uscc

from tzsb.errors import ConfigurationError
from tzsb.rules.base import RuleContext, field_label, present, require_field
from tzsb.rules.contract import BuiltRule, RecordRuleType

_USCC: Final = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")
_ID_CARD: Final = re.compile(r"[0-9]{17}[0-9X]")
#: 港澳台居民居住证 (810000 / 820000 / 830000) follow other rules.
_PERMIT_AREAS: Final = ("81", "82", "83")


@lru_cache(maxsize=65536)
def _uscc_problem(value: str) -> str | None:
    if not _USCC.fullmatch(value):
        return "format"
    return None if uscc.calc_check_digit(value[:-1]) == value[-1] else "check"


def _id_card_problem(value: str, today: date) -> str | None:
    if not _ID_CARD.fullmatch(value):
        return "format"
    if value.startswith(_PERMIT_AREAS):
        return None
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "birth"
    if born > today:
        return "birth"
    return None if ric.calc_check_digit(value) == value[-1] else "check"


def build(params: Mapping[str, Any], context: RuleContext) -> BuiltRule:
    field = require_field(params, "field", context)
    scheme = params.get("scheme")
    if scheme not in ("uscc", "id_card"):
        raise ConfigurationError(f"rule {params.get('id')!r}: scheme must be uscc or id_card")
    label = field_label(context, field)
    messages = {
        "format": f"{label}格式不正确 / {field} is not well formed",
        "check": f"{label}校验位不正确，请核对号码 / {field} has a wrong check character; check the number",
        "birth": f"{label}中的出生日期无效或在未来 / {field} holds an impossible birth date",
    }

    def check(record: Mapping[str, Any], now: str) -> list[tuple[str, str]]:
        value = present(record, field)
        if not isinstance(value, str):
            return []
        # For ID numbers "today" is the date of the batch's one clock reading (Beijing time).
        problem = _uscc_problem(value) if scheme == "uscc" else _id_card_problem(value, date.fromisoformat(now[:10]))
        return [] if problem is None else [(field, messages[problem])]

    return BuiltRule(check, reads=(field,), triggers=frozenset({field}))


RULE_TYPE = RecordRuleType("check_digit", build)
