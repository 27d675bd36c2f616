"""``code_list``: the value is one of the field's codes."""

from __future__ import annotations

from typing import Any

from tzsb.catalog import FieldSpec
from tzsb.rules.contract import Check, FieldRuleType


def build(spec: FieldSpec) -> Check | None:
    if not spec.codes:
        return None
    # Legacy codes pass here; the ``legacy_code`` rule reports them (a warning by default).
    allowed = frozenset(spec.codes) | frozenset(spec.legacy_codes)
    listing = ", ".join(f"{code} {label}" for code, label in spec.codes.items())
    text = (
        f"{spec.name}（{spec.code}）取值不在代码表内：{listing} / {spec.code} must be one of: {', '.join(spec.codes)}"
    )

    def check(value: Any) -> str | None:
        return None if isinstance(value, str) and value in allowed else text

    return check


RULE_TYPE = FieldRuleType("code_list", build)
