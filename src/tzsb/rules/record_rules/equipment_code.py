"""``equipment_code``: 种类 / 类别 / 品种 are codes of the 2014 《特种设备目录》 and nest consistently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tzsb.catalog import equipment_catalogue
from tzsb.errors import ConfigurationError
from tzsb.rules.base import RuleContext, field_label, present, require_field
from tzsb.rules.contract import BuiltRule, RecordRuleType


def build(params: Mapping[str, Any], context: RuleContext) -> BuiltRule:
    levels = [
        (require_field(params, key, context), level)
        for key, level in (("type_field", "种类"), ("sort_field", "类别"), ("variety_field", "品种"))
        if key in params
    ]
    if not levels:
        raise ConfigurationError(
            f"rule {params.get('id')!r}: equipment_code needs at least one of type_field, sort_field, variety_field"
        )
    catalogue = equipment_catalogue()

    def ancestors(code: str) -> list[str]:
        chain: list[str] = []
        while code in catalogue and catalogue[code].parent:
            code = catalogue[code].parent
            chain.append(code)
        return chain

    def check(record: Mapping[str, Any], now: str) -> list[tuple[str, str]]:
        faults: list[tuple[str, str]] = []
        found: dict[str, str] = {}
        for field, level in levels:
            value = present(record, field)
            if not isinstance(value, str):
                continue
            entry = catalogue.get(value)
            if entry is None:
                faults.append(
                    (field, f"{field_label(context, field)} {value} 不在《特种设备目录》中 / "
                     f"{field} {value} is not a code of the 2014 equipment catalogue")
                )  # fmt: skip
            elif entry.level != level and not (level == "品种" and entry.level == "类别"):
                faults.append(
                    (field, f"{field_label(context, field)} {value} 是{entry.level}代码，不是{level} / "
                     f"{field} {value} is a {entry.level} code, not a {level} code")
                )  # fmt: skip
            else:
                found[level] = value
        variety, sort, kind = found.get("品种"), found.get("类别"), found.get("种类")
        if variety is not None and sort is not None and variety != sort and catalogue[variety].parent != sort:
            faults.append(
                (levels[-1][0], f"品种 {variety} 不属于类别 {sort} / variety {variety} is not in sort {sort}")
            )
        if sort is not None and kind is not None and catalogue[sort].parent != kind:
            faults.append((levels[1][0] if len(levels) > 1 else levels[0][0],
                           f"类别 {sort} 不属于种类 {kind} / sort {sort} is not in type {kind}"))  # fmt: skip
        if variety is not None and kind is not None and sort is None and kind not in ancestors(variety):
            faults.append(
                (levels[-1][0], f"品种 {variety} 不属于种类 {kind} / variety {variety} is not in type {kind}")
            )
        return faults

    return BuiltRule(check, reads=tuple(field for field, _ in levels), triggers=frozenset(field for field, _ in levels))


RULE_TYPE = RecordRuleType("equipment_code", build)
