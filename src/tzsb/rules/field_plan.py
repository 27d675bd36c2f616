"""The field rules of the catalog, compiled per field into one plan the validator runs.

Field rules run in a fixed order and a field stops at its first failed error rule, so their types
are listed here, in that order, rather than discovered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from tzsb.catalog import FieldSpec, FieldType
from tzsb.rules import code_list, field_type, legacy_code, length, pattern
from tzsb.rules.base import Severity
from tzsb.rules.contract import Check, FieldRuleType

#: Per-field rule types in the order they run; a field stops at its first failed rule.
FIELD_RULE_TYPES: Final[tuple[FieldRuleType, ...]] = (
    field_type.RULE_TYPE,
    length.RULE_TYPE,
    pattern.RULE_TYPE,
    code_list.RULE_TYPE,
    legacy_code.RULE_TYPE,
)


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """The compiled field rules of one data element."""

    name: str
    #: (rule type id, check, severity) in the order they run.
    checks: tuple[tuple[str, Check, Severity], ...]
    #: A single test that implies every field rule passes (strings only); when it says no, the
    #: checks above run one by one to find which rule failed.
    passes: Callable[[Any], bool] | None = None


def passes_all(spec: FieldSpec) -> Callable[[Any], bool] | None:
    """One test a string passes exactly when it passes every field rule of ``spec``.

    The four rules, fused for strings: one call per value instead of four, in the loop that runs
    for every field of every record. The screen tests compare its answers with the rules' own.
    """
    if spec.type is not FieldType.STRING:
        return None
    limit = spec.length if spec.length is not None else float("inf")
    matcher = re.compile(spec.pattern, re.ASCII).fullmatch if spec.pattern else None
    codes = frozenset(spec.codes) if spec.codes else None

    def passes(value: Any) -> bool:
        return (
            type(value) is str
            and len(value) <= limit
            and (matcher is None or matcher(value) is not None)
            and (codes is None or value in codes)
        )

    return passes
