"""The shape of the data catalog: business types and their fields."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

MASKS = ("id_card", "mobile", "phone", "name", "address", "bank_card", "all")
#: The severities a natural key may be declared with (the rules' severities, by name).
NATURAL_KEY_SEVERITIES = ("error", "warning")


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
    #: Where the code list comes from: a document and article, or "project-defined" / "provincial
    #: practice" where no public text sets it (../shared/spec/code-list-sources.md).
    codes_source: str = ""
    #: Codes of an earlier version of the list that real data still carries: accepted with a warning
    #: (rule ``<FIELD>.legacy_code``) that says what the value means now. Code → that explanation.
    legacy_codes: Mapping[str, str] = field(default_factory=dict)
    sensitive: bool = False
    description: str = ""
    #: How a sensitive value is masked: id_card, mobile, phone, name, address, bank_card or all.
    mask: str | None = None
    #: Sensitive fields of the same type whose hidden part this field's value gives away (a birth
    #: date is the middle of an ID number). Such a field is itself sensitive and fully masked.
    reveals: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NaturalKey:
    """Fields that identify a record of the type besides its primary key (一数一源 across keys): two
    records with different primary keys and the same values of all ``fields`` are one thing stored
    twice, e.g. a device's 注册代码, or its 出厂编号 with its 制造单位名称.

    Attributes:
        fields: The data elements, in declared order.
        severity: ``warning`` (the default) or ``error``: how a duplicate is reported, unless the
            rule sets say otherwise (rule id ``natural-key-<name>``).
    """

    #: Joins the values of a key of several fields (no value holding it takes part in a match).
    SEPARATOR: ClassVar[str] = "\x1f"

    fields: tuple[str, ...]
    severity: str = "warning"

    @property
    def name(self) -> str:
        """The fields joined by ``+``, e.g. ``FACTORY_NO+MAKE_UNIT_NAME``."""
        return "+".join(self.fields)

    @property
    def rule_id(self) -> str:
        """The id of the rule that reports duplicates, e.g. ``natural-key-REG_CODE``."""
        return f"natural-key-{self.name}"

    def value(self, record: Mapping[str, Any]) -> str | None:
        """The record's value of the key: its fields' texts joined by ``SEPARATOR``; None when a field
        is missing, not a text, blank, or holds the separator (such a record has no value to match).

        Texts match exactly (no trimming, no case folding): a stored value matches only an equal one.
        """
        return self.values((record,))[0]

    def values(self, records: Sequence[Mapping[str, Any]]) -> list[str | None]:
        """``value`` of each record, column by column (a batch's thousands of records at C speed)."""
        separator = self.SEPARATOR
        columns = [
            [
                # Blank: empty, or only whitespace (the strip only for a value starting with a space).
                part if type(part) is str and part and separator not in part and (not part[0].isspace() or part.strip())
                else None
                for part in [record.get(code) for record in records]
            ]
            for code in self.fields
        ]  # fmt: skip
        if len(columns) == 1:
            return columns[0]
        return [None if None in parts else separator.join(parts) for parts in zip(*columns, strict=True)]


@dataclass(frozen=True, slots=True)
class BusinessType:
    """A business type of table 7 with its data elements."""

    code: str
    name: str
    primary_key: str
    region_field: str
    timestamp_field: str
    fields: tuple[FieldSpec, ...]
    #: Field sets that identify a record besides its primary key (checked against the store).
    natural_keys: tuple[NaturalKey, ...] = ()
    by_code: Mapping[str, FieldSpec] = field(init=False, repr=False, compare=False)
    #: Whether a field holds an ID number shown masked (``mask == "id_card"``): asked of every masked query.
    masks_id_number: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_code", {spec.code: spec for spec in self.fields})
        masks = any(spec.sensitive and spec.mask == "id_card" for spec in self.fields)
        object.__setattr__(self, "masks_id_number", masks)

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
