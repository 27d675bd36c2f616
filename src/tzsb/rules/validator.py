"""Compile a business type's rules once; validate whole batches, reporting every error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tzsb.catalog import BusinessType
from tzsb.rules import code_list, field_type, length, pattern, required
from tzsb.rules.base import Check, Violation, is_blank

UNKNOWN_FIELD = "unknown_field"
DUPLICATE_KEY = "duplicate_key"

#: Per-field rule types in the order they run; a field stops at its first failed rule.
FIELD_RULES = (field_type, length, pattern, code_list)


@dataclass(frozen=True, slots=True)
class _FieldChecks:
    code: str
    name: str
    required: bool
    checks: tuple[tuple[str, Check], ...]


class RecordValidator:
    """The compiled checks of one business type."""

    def __init__(self, business: BusinessType) -> None:
        self.business = business
        self._fields = tuple(
            _FieldChecks(
                code=spec.code,
                name=spec.name,
                required=spec.required,
                checks=tuple(
                    (module.RULE_ID, check) for module in FIELD_RULES if (check := module.build(spec)) is not None
                ),
            )
            for spec in business.fields
        )
        self._known = frozenset(spec.code for spec in business.fields)

    def violations(self, record: dict[str, Any], *, partial: bool = False) -> list[Violation]:
        """Every rule the record breaks. ``partial`` (a 02 modify) skips required checks."""
        found: list[Violation] = []
        for name in record:
            if name not in self._known:
                found.append(
                    Violation(
                        name,
                        UNKNOWN_FIELD,
                        f"字段 {name} 不是 {self.business.code} {self.business.name} 的数据元 / "
                        f"{name} is not a data element of business type {self.business.code}",
                    )
                )
        for field in self._fields:
            value = record.get(field.code)
            if is_blank(value):
                if field.required and not (partial and field.code not in record):
                    found.append(Violation(field.code, required.RULE_ID, required.message(field.code, field.name)))
                continue
            for rule_id, check in field.checks:
                problem = check(value)
                if problem is not None:
                    found.append(Violation(field.code, rule_id, problem))
                    break
        return found

    def validate_batch(self, records: Sequence[dict[str, Any]], *, partial: bool = False) -> list[dict[str, Any]]:
        """Per-record details of every failing record (empty when all pass), duplicates included."""
        key_field = self.business.primary_key
        details: list[dict[str, Any]] = []
        first_index: dict[Any, int] = {}
        for index, record in enumerate(records):
            problems = self.violations(record, partial=partial)
            key = record.get(key_field)
            if isinstance(key, str) and key:
                if key in first_index:
                    problems.append(
                        Violation(
                            key_field,
                            DUPLICATE_KEY,
                            f"主键 {key} 与第 {first_index[key]} 条重复，同一批次中每条记录只能出现一次 / "
                            f"primary key {key} repeats record {first_index[key]}; send each record once per batch",
                        )
                    )
                else:
                    first_index[key] = index
            if problems:
                details.append(
                    {
                        "index": index,
                        "key": key if isinstance(key, str) else None,
                        "errors": [problem.as_dict() for problem in problems],
                    }
                )
        return details


def compile_validator(business: BusinessType) -> RecordValidator:
    return RecordValidator(business)
