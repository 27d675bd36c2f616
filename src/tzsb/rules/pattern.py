"""``pattern``: a string value matches the field's regular expression (whole value)."""

from __future__ import annotations

import re
from typing import Any

from tzsb.catalog import FieldSpec
from tzsb.rules.contract import Check, FieldRuleType


def build(spec: FieldSpec) -> Check | None:
    if spec.pattern is None:
        return None
    # ASCII: \d and \w must not accept full-width or other-script digits and letters.
    compiled = re.compile(spec.pattern, re.ASCII)
    text = f"{spec.name}（{spec.code}）格式不正确 / {spec.code} does not match {spec.pattern}"

    def check(value: Any) -> str | None:
        return None if isinstance(value, str) and compiled.fullmatch(value) else text

    return check


RULE_TYPE = FieldRuleType("pattern", build)
