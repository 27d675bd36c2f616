"""What a rule reports, and the helpers rule types share.

Each rule has a string id and a severity: ``error`` rejects the batch, ``warning`` is reported
only. What a rule type declares to the validator is in :mod:`tzsb.rules.contract`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from tzsb.catalog import BusinessType
from tzsb.errors import ConfigurationError, FieldFault


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule a record breaks, with the severity configured for that rule."""

    field: str
    rule: str
    message: str
    severity: Severity = Severity.ERROR

    def as_fault(self) -> FieldFault:
        """The fault as an answer carries it (the severity decides where it goes)."""
        return FieldFault(self.field, self.rule, self.message)

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What record rules may consult while they are built: the business type.

    Nothing here changes after a build: a rule that needs "now" receives the batch's clock reading
    with every call, so one compiled rule serves concurrent requests.
    """

    business: BusinessType


def is_blank(value: Any) -> bool:
    """Missing, null, or a string of only whitespace (full-width spaces included)."""
    return value is None or (isinstance(value, str) and not value.strip())


def field_label(context: RuleContext, code: str) -> str:
    """``名称（CODE）`` for a field of the business type, else the code alone."""
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


def finite_number(value: Any) -> Decimal | None:
    """A finite number written in ASCII (Decimal alone would read full-width digits too)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    text = str(value)
    if not text.isascii():
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
