"""``device_code``: the structure of a 设备代码 (TSG 08-2017 / TSG 21-2016 numbering).

品种代码 (4) + 制造单位代号 (5) + 制造年份 (4) + 顺序号 (5) = 18 characters; with the registration
authority's 6-digit area code instead of the manufacturer code, 19; some systems hold 20
(the legacy 注册代码 layout: 类别 4 + 区划 6 + 年月 6 + 顺序号 4). The 4-character head must be a
code of the equipment catalogue, and the year (or year-month) plausible.

21 characters are the national dictionary's layout before TSG 08 (登记代码 / 设备代码: 分类 4 +
组织机构代码 9 + 年 4 + 顺序 4): real data still carries it, so such a code is accepted and
reported as legacy (the shipped rules are warnings), with its year checked like the others.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from tzsb.catalog import division_name, equipment_catalogue
from tzsb.rules.base import RuleContext, field_label, present, require_field
from tzsb.rules.contract import BuiltRule, RecordRuleType

_SHAPE: Final = re.compile(r"[0-9A-Z]{17,21}")


def build(params: Mapping[str, Any], context: RuleContext) -> BuiltRule:
    field = require_field(params, "field", context)
    # Legacy catalogue heads (3010, 1120, …) still occur in real codes: strict_head false accepts them.
    strict_head = bool(params.get("strict_head", True))
    label = field_label(context, field)
    catalogue = equipment_catalogue()
    legacy = (
        f"{label}为 TSG 08 之前的 21 位旧代码（分类 4 + 组织机构代码 9 + 年 4 + 顺序 4），已接受；"
        f"换发登记时请改用设备代码 / {field} has the 21-character layout from before TSG 08-2017; accepted, "
        "and due for a 设备代码 at re-registration"
    )

    def check(record: Mapping[str, Any], now: str) -> list[tuple[str, str]]:
        value = present(record, field)
        if not isinstance(value, str) or not _SHAPE.fullmatch(value):
            return []  # the pattern rule reports the shape
        head = value[:4]
        if strict_head and head not in catalogue:
            return [(field, f"{label}前 4 位 {head} 不是《特种设备目录》代码 / {field} starts with {head}, "
                            "not a code of the equipment catalogue")]  # fmt: skip
        this_year = int(now[:4])  # the batch's one reading of the clock
        if len(value) in (18, 19):
            year = value[-9:-5]
            if not year.isdigit() or not 1950 <= int(year) <= this_year:
                return [(field, f"{label}中的制造年份 {year} 不合理 / {field} holds an implausible year {year}")]
            if len(value) == 19 and division_name(value[4:10]) is None:
                return [(field, f"{label}中的区划代码 {value[4:10]} 不存在 / {field} holds an unknown area code")]
        elif len(value) == 21:
            year = value[13:17]
            if not year.isdigit() or not 1950 <= int(year) <= this_year:
                return [(field, f"{label}中的年份 {year} 不合理 / {field} holds an implausible year {year}")]
            return [(field, legacy)]
        elif len(value) == 20:
            stamp = value[10:16]
            if not stamp.isdigit() or not (1950 <= int(stamp[:4]) <= this_year and 1 <= int(stamp[4:]) <= 12):
                return [(field, f"{label}中的登记年月 {stamp} 不合理 / {field} holds an implausible year-month")]
        return []

    return BuiltRule(check, reads=(field,), triggers=frozenset({field}))


RULE_TYPE = RecordRuleType("device_code", build)
