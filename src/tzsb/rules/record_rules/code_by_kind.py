"""``code_by_kind``: a coded value belongs to the family its equipment kind uses.

An inspection's conclusion is worded per kind of equipment (the 2024 《特种设备重大事故隐患判定准则》):
机电类 合格 / 不合格 / 复检…, 锅炉 and 压力容器 符合要求 / 基本符合要求 / 不符合要求, 压力管道 also
允许使用 / 不允许使用. ``field`` holds the code, ``by`` a 《特种设备目录》 code (种类, 类别 or 品种)
whose first character is the kind; ``families`` maps a kind to the codes it uses. A kind the
rule does not list, or a value the field's code list refuses anyway, is not judged here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tzsb.errors import ConfigurationError
from tzsb.rules.base import RuleContext, field_label, present, require_field
from tzsb.rules.contract import BuiltRule, RecordRuleType


def build(params: Mapping[str, Any], context: RuleContext) -> BuiltRule:
    field = require_field(params, "field", context)
    by = require_field(params, "by", context)
    families = params.get("families")
    if (
        not isinstance(families, dict)
        or not families
        or not all(
            isinstance(kind, str)
            and len(kind) == 1
            and isinstance(codes, list)
            and codes
            and all(isinstance(code, str) for code in codes)
            for kind, codes in families.items()
        )
    ):
        raise ConfigurationError(
            f"rule {params.get('id')!r}: code_by_kind needs 'families': an object of kind (one character) → "
            "list of codes"
        )
    spec = context.business.field(field)
    names = dict(spec.codes) if spec is not None else {}
    known = frozenset(names) | (frozenset(spec.legacy_codes) if spec is not None else frozenset())
    allowed = {kind: frozenset(codes) for kind, codes in families.items()}
    label, by_label = field_label(context, field), field_label(context, by)
    messages: dict[tuple[str, str], str] = {}

    def message(value: str, kind: str) -> str:
        if (value, kind) not in messages:
            used = "、".join(f"{code} {names.get(code, '')}".strip() for code in families[kind])
            messages[value, kind] = (
                f"{label} {value}（{names.get(value, '')}）不是{by_label}首位为 {kind} 的设备所用的结论；"
                f"该类设备用 {used} / {field} {value} is not a value used for equipment of kind {kind} "
                f"({by} starts with {kind}): it uses {', '.join(families[kind])}"
            )
        return messages[value, kind]

    def check(record: Mapping[str, Any], now: str) -> list[tuple[str, str]]:
        value, kind_code = present(record, field), present(record, by)
        if not isinstance(value, str) or not isinstance(kind_code, str) or not kind_code or value not in known:
            return []
        kind = kind_code[0]
        family = allowed.get(kind)
        if family is None or value in family:
            return []
        return [(field, message(value, kind))]

    return BuiltRule(check, reads=(field, by), triggers=frozenset({field, by}))


RULE_TYPE = RecordRuleType("code_by_kind", build)
