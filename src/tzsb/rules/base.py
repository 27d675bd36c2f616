"""What a rule is.

Two kinds, both built once when a rule set loads:

- *field rules* come from the catalog (required, type, length, pattern, code list): a ``Check``
  runs on one present, non-blank value;
- *record rules* come from rule-set configuration (numeric range, cross-field comparison, check
  digits, …): a ``RecordCheck`` runs on the whole record and names the fields it faults.

Each has a string id and a severity: ``error`` rejects the batch, ``warning`` is reported only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tzsb.catalog import BusinessType
from tzsb.clock import Clock, business_timestamp
from tzsb.errors import ConfigurationError

#: A compiled field check: ``None`` when the value passes, else the (zh / en) message.
Check = Callable[[Any], str | None]
#: A compiled record check: ``(field, message)`` for every fault it finds.
RecordCheck = Callable[[Mapping[str, Any]], list[tuple[str, str]]]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Violation:
    field: str
    rule: str
    message: str
    severity: Severity = Severity.ERROR

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What record rules may consult while they are built: the business type and the clock."""

    business: BusinessType
    clock: Clock
    #: "Now" as business-timestamp text, fixed by the validator for the length of one batch.
    now: NowCell = field(default_factory=lambda: NowCell())

    def now_text(self) -> str:
        return self.now.text or business_timestamp(self.clock.now())


@dataclass(slots=True)
class NowCell:
    text: str | None = None


def is_blank(value: Any) -> bool:
    """Missing, null, or a string of only whitespace (full-width spaces included)."""
    return value is None or (isinstance(value, str) and not value.strip())


def field_label(context: RuleContext, code: str) -> str:
    spec = context.business.field(code)
    return f"{spec.name}（{code}）" if spec is not None else code


def require_field(params: Mapping[str, Any], key: str, context: RuleContext) -> str:
    """A parameter that must name a data element of the business type."""
    value = params.get(key)
    if not isinstance(value, str) or context.business.field(value) is None:
        raise ConfigurationError(
            f"rule {params.get('id')!r}: {key} must name a field of {context.business.code}, got {value!r}"
        )
    return value


def present(record: Mapping[str, Any], code: str) -> Any:
    """The value of ``code`` when it is present and not blank, else None."""
    value = record.get(code)
    # is_blank, inlined: record rules call this for every record.
    if value is None or (type(value) is str and (not value or (value[0].isspace() and not value.strip()))):
        return None
    return value
