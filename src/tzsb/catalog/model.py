"""The shape of the data catalog: business types and their fields."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

MASKS = ("id_card", "mobile", "phone", "name", "address", "bank_card", "all")


def default_mask(code: str) -> str:
    """The masking of a sensitive field whose catalog entry names none, guessed from its code."""
    if code.endswith(("ID_NO", "IDCARD", "ID_CARD")):
        return "id_card"
    if code.endswith(("MOBILE", "PHONE", "TEL")):
        return "mobile"
    if code.endswith(("ADDRESS", "ADDR")):
        return "address"
    if code.endswith(("BANK_CARD", "ACCOUNT_NO")):
        return "bank_card"
    if code.endswith(("NAME", "NAMES", "PERSON", "MANAGER", "DIRECTOR", "CONTACT")):
        return "name"
    return "all"


class FieldType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One data element: its code (the JSON key), Chinese name and constraints."""

    code: str
    name: str
    type: FieldType
    length: int | None = None
    required: bool = False
    pattern: str | None = None
    codes: Mapping[str, str] = field(default_factory=dict)
    sensitive: bool = False
    description: str = ""
    #: How a sensitive value is masked: id_card, mobile, phone, name, address, bank_card or all.
    mask: str | None = None
    #: Sensitive fields of the same type whose hidden part this field's value gives away (a birth
    #: date is the middle of an ID number). Such a field is itself sensitive and fully masked.
    reveals: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BusinessType:
    """A business type of table 7 with its data elements."""

    code: str
    name: str
    primary_key: str
    region_field: str
    timestamp_field: str
    fields: tuple[FieldSpec, ...]
    by_code: Mapping[str, FieldSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_code", {spec.code: spec for spec in self.fields})

    def field(self, code: str) -> FieldSpec | None:
        return self.by_code.get(code)

    @property
    def sensitive_fields(self) -> tuple[str, ...]:
        return tuple(spec.code for spec in self.fields if spec.sensitive)

    @property
    def derivations(self) -> tuple[tuple[str, str], ...]:
        """(revealing field, field it reveals) pairs, in field order."""
        return tuple((spec.code, target) for spec in self.fields for target in spec.reveals)


@dataclass(frozen=True, slots=True)
class Catalog(Mapping[str, BusinessType]):
    """Business types by their 4-digit code."""

    types: Mapping[str, BusinessType]

    def __getitem__(self, code: str) -> BusinessType:
        return self.types[code]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.types))

    def __len__(self) -> int:
        return len(self.types)
