"""The declared contract of a rule type: what the validator may know about a rule, and nothing more.

Two kinds of rule type, both built once when a rule set loads:

- a :class:`FieldRuleType` comes from the catalog (type, length, pattern, code list): built from a
  field's :class:`~tzsb.catalog.FieldSpec`, its :data:`Check` runs on one present, non-blank value;
- a :class:`RecordRuleType` comes from rule-set configuration (numeric range, cross-field
  comparison, check digits, …): built from its parameters, it answers one :class:`BuiltRule`
  saying which fields it reads, which fields trigger it, and either the check to run on a whole
  record or the store look-up it needs.

The validator compiles these objects without knowing any rule type by name, so a new record rule
type is one new module in :mod:`tzsb.rules.record_rules` (and its tests).

The catalog's natural keys (:mod:`tzsb.rules.natural_keys`) are no rule type: the validator builds
their rules from the catalog, as it builds field rules, and asks the store about them through a
:data:`NaturalKeyLookup`, once per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tzsb.catalog import FieldSpec
from tzsb.rules.base import RuleContext, Severity

#: A compiled field check: ``None`` when the value passes, else the (zh / en) message.
Check = Callable[[Any], str | None]
#: A compiled record check, called with the record and the batch's clock reading (business-timestamp
#: text, ``YYYY-MM-DD HH:MM:SS``): ``(field, message)`` for every fault it finds.
RecordCheck = Callable[[Mapping[str, Any], str], list[tuple[str, str]]]
#: Which of ``keys`` a business type holds as live records: ``(business, keys) -> found``.
KeyLookup = Callable[[str, Collection[str]], set[str]]


@dataclass(frozen=True, slots=True)
class NaturalKeyHolder:
    """A live stored record that holds a natural key's value, as far as the caller may learn of it.

    Attributes:
        key: The record's primary key: the validator tells a record from itself by it, and shows it
            only when ``visible``.
        source: The app that first supplied the record; empty when not ``visible``.
        visible: Whether the caller may be told which record it is (the caller's region and view,
            as for a key an add collides with).
    """

    key: str
    source: str
    visible: bool


#: Which live records hold natural-key values, asked once per batch: ``(business, {key name: values})
#: -> {key name: {value: holders}}``; values no record holds, and holders the caller must not even
#: learn exist, are left out.
NaturalKeyLookup = Callable[
    [str, Mapping[str, Collection[str]]], Mapping[str, Mapping[str, Sequence[NaturalKeyHolder]]]
]


@dataclass(frozen=True, slots=True)
class FieldRuleType:
    """A field rule type of the catalog, e.g. ``length``; its rules have ids ``<FIELD>.<id>``.

    Attributes:
        id: The rule type's id, the second half of each of its rules' ids.
        build: Compiles the check of one field, or None when the field has nothing to check
            (no length, no pattern, no code list).
        default_severity: How its faults are reported unless the rule sets say otherwise.
    """

    id: str
    build: Callable[[FieldSpec], Check | None]
    default_severity: Severity = Severity.ERROR


@dataclass(frozen=True, slots=True)
class RecordLookup:
    """A store look-up a built rule needs: the value of ``field`` must be a live key of ``business``.

    The validator asks the store once per batch for every such value, and reports ``message`` on
    ``field`` for each record whose value the store does not hold.
    """

    business: str
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class RelatedRecord:
    """A store look-up a built rule needs: the live record of ``business`` that the value of ``field``
    names, judged together with the record that names it (cross-record plausibility).

    Attributes:
        business: The other record's business type.
        field: The field of the batch's records naming it.
        needs: Whether a record of the batch needs the other record at all (records that do not are
            not asked about).
        check: ``check(record, other) -> [(field, message), ...]`` for a record and the other record.
        match: The other type's field holding the value; None: its primary key.
        newest_by: With ``match``: of several records holding the value, the one with the greatest
            values of these fields (then the latest stored) is the other record.
        needs_reads: Every field ``needs`` reads, when it reads no other: then records holding the
            same values of them are asked once (a record without a field is asked as one without
            it). None: each record is asked.
    """

    business: str
    field: str
    needs: Callable[[Mapping[str, Any]], bool]
    check: Callable[[Mapping[str, Any], Mapping[str, Any]], list[tuple[str, str]]]
    match: str | None = None
    newest_by: tuple[str, ...] = ()
    needs_reads: tuple[str, ...] | None = None


#: The other records of a ``RelatedRecord``, as far as the caller may see them, asked once per rule
#: and batch: ``(need, values) -> {value: record}``; values of records it may not see are left out.
RelatedLookup = Callable[[RelatedRecord, Collection[str]], Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class BuiltRule:
    """One record rule, compiled from its parameters.

    Attributes:
        check: The check to run on a record, or None for a rule that is only a store look-up.
        reads: Every field the check reads: its result depends only on those values and the
            batch's clock reading, so the validator may remember results by those values.
        triggers: The rule can only fault a record holding one of these fields.
        lookup: The store look-up the rule needs, if any.
        related: The other record the rule judges each record with, if any.
    """

    check: RecordCheck | None
    reads: tuple[str, ...]
    triggers: frozenset[str]
    lookup: RecordLookup | None = None
    related: RelatedRecord | None = None

    def __post_init__(self) -> None:
        # A rule is a check, a look-up or a related record: the validator runs one or asks the store.
        if sum(part is not None for part in (self.check, self.lookup, self.related)) != 1:
            raise TypeError("a built rule has exactly one of a check, a lookup or a related record")


@dataclass(frozen=True, slots=True)
class RecordRuleType:
    """A record rule type, named by ``type`` in rule-set files. Each module of
    :mod:`tzsb.rules.record_rules` declares one as ``RULE_TYPE``.

    Attributes:
        id: The type's id, e.g. ``numeric_range``.
        build: Compiles one configured rule; raises ConfigurationError on bad parameters.
        looks_up: Whether its rules are store look-ups (such types are listed after the others
            where configuration errors name the known types).
    """

    id: str
    build: Callable[[Mapping[str, Any], RuleContext], BuiltRule]
    looks_up: bool = False
