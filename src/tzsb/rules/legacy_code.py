"""``legacy_code``: a code of an earlier version of the field's list, accepted with a warning that
says what the value means now (the catalog's ``legacy_codes``; ``code_list`` lets such codes pass).
"""

from __future__ import annotations

from typing import Any

from tzsb.catalog import FieldSpec
from tzsb.rules.base import Severity
from tzsb.rules.contract import Check, FieldRuleType


def build(spec: FieldSpec) -> Check | None:
    if not spec.legacy_codes:
        return None
    notes = {code: f"{spec.name}（{spec.code}）取旧代码：{note}" for code, note in spec.legacy_codes.items()}

    def check(value: Any) -> str | None:
        return notes.get(value) if isinstance(value, str) else None

    return check


RULE_TYPE = FieldRuleType("legacy_code", build, Severity.WARNING)
