"""``length``: the value's text is at most the field's length, counted in characters."""

from __future__ import annotations

from typing import Any

from tzsb.catalog import FieldSpec
from tzsb.rules.contract import Check, FieldRuleType


def build(spec: FieldSpec) -> Check | None:
    limit = spec.length
    if limit is None:
        return None
    text = f"{spec.name}（{spec.code}）长度不能超过 {limit} 个字符 / {spec.code} must be at most {limit} characters"

    def check(value: Any) -> str | None:
        return text if len(value if isinstance(value, str) else str(value)) > limit else None

    return check


RULE_TYPE = FieldRuleType("length", build)
