"""The column screen: find the records of a batch that may break a rule, value by distinct value.

A batch repeats most of its values (code lists, units, areas, dates), so every field rule and
record rule runs once per distinct value (or distinct tuple of the values it reads) instead of
once per record. A record holding no failing value has no violation; only the others go through
``RecordValidator.violations``, which then reports exactly as it would have without the screen.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

from tzsb.rules.base import Severity
from tzsb.rules.contract import RecordCheck
from tzsb.rules.field_plan import FieldPlan


class _Absent:
    """A field the record does not hold (unlike ``None``, a field sent as null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Final = _Absent()
#: Value types whose equal values are interchangeable for every rule: a column holding only these
#: can be de-duplicated by value. ``1``, ``1.0`` and ``True`` are equal but not interchangeable.
_PLAIN_TYPES: Final = frozenset({str, type(None), _Absent})

#: A record rule as the validator's loops take it, flat (unpacking beats attribute look-ups):
#: position, trigger, triggers, single read, reads, check, rule id, severity.
RuleStep = tuple[int, str | None, frozenset[str], str | None, tuple[str, ...], RecordCheck, str, Severity]


def suspects(
    records: Sequence[Mapping[str, Any]],
    plans: Mapping[str, FieldPlan],
    required_names: Collection[str],
    check_unknown: bool,
    rule_steps: Sequence[RuleStep],
    now: str,
) -> set[int]:
    """The positions of the records that may break a rule (field rules, required, record rules)."""
    found: set[int] = set()
    count = len(records)
    names: set[str] = set().union(*records)
    if check_unknown:
        for name in names.difference(plans):
            found.update(index for index, record in enumerate(records) if name in record)
    columns: dict[str, Sequence[Any]] = {}
    width = len(names)
    if width and all(len(record) == width for record in records):
        # Every record holds the same fields (the usual case: one system, one record layout):
        # transpose the batch in C instead of one look-up per record and field.
        ordered = tuple(names)
        fields_of: Callable[[Mapping[str, Any]], Any] = operator.itemgetter(*ordered)
        per_record = map(fields_of, records) if width > 1 else ((fields_of(record),) for record in records)
        columns = dict(zip(ordered, zip(*per_record, strict=True), strict=True))

    def column(name: str) -> Sequence[Any]:
        values = columns.get(name)
        if values is None:
            values = columns[name] = [record.get(name, ABSENT) for record in records]
        return values

    for name, plan in plans.items():
        required_field = name in required_names
        if name not in names:
            if required_field:
                return set(range(count))  # no record holds it: every one fails
            continue
        if not _screen_column(column(name), _field_passes(plan, required_field), found):
            found.update(range(count))
    for _, _, triggers, single, reads, rule_check, _, _ in rule_steps:
        if triggers.isdisjoint(names):
            continue
        if single is not None:
            passes = _single_read_passes(single, rule_check, now)
            if not _screen_column(column(single), passes, found):
                found.update(range(count))
            continue
        rows = list(zip(*(column(name) for name in reads), strict=True))
        if not _screen_column(rows, _many_reads_passes(reads, triggers, rule_check, now), found):
            found.update(range(count))
    return found


def _field_passes(plan: FieldPlan, required_field: bool) -> Callable[[Any], bool]:
    """Whether ``violations`` would find nothing wrong with a value of the field."""
    fast = plan.passes
    checks = plan.checks

    def passes(value: Any) -> bool:
        if value is ABSENT or value is None:
            return not required_field
        # Blank before the combined test: a required field holding only spaces passes that test.
        if type(value) is str and (not value or (value[0].isspace() and not value.strip())):
            return not required_field
        if fast is not None and fast(value):
            return True
        return all(check(value) is None for _, check, _ in checks)

    return passes


def _single_read_passes(name: str, rule_check: RecordCheck, now: str) -> Callable[[Any], bool]:
    """A record rule reading one field: it passes a value when a record holding only it passes."""

    def passes(value: Any) -> bool:
        return value is ABSENT or not rule_check({name: value}, now)

    return passes


def _many_reads_passes(
    reads: tuple[str, ...], triggers: frozenset[str], rule_check: RecordCheck, now: str
) -> Callable[[tuple[Any, ...]], bool]:
    def passes(values: tuple[Any, ...]) -> bool:
        record = {name: value for name, value in zip(reads, values, strict=True) if value is not ABSENT}
        return triggers.isdisjoint(record) or not rule_check(record, now)

    return passes


def _screen_column(values: Sequence[Any], passes: Callable[[Any], bool], found: set[int]) -> bool:
    """Add the positions whose value fails ``passes`` to ``found``, testing each distinct value once.

    Returns False when the column cannot be de-duplicated (a list or object value): the caller then
    treats every record as a suspect.
    """
    try:
        distinct = set(values)
    except TypeError:
        return False
    if not plain_values(distinct):
        # Equal values of different types (1, 1.0, True) must be told apart.
        typed = [_typed(value) for value in values]
        try:
            distinct = set(typed)
        except TypeError:
            return False
        failing = {key for key in distinct if not passes(_untyped(key))}
        if failing:
            found.update(index for index, key in enumerate(typed) if key in failing)
        return True
    failing = {value for value in distinct if not passes(value)}
    if failing:
        found.update(index for index, value in enumerate(values) if value in failing)
    return True


def plain_values(distinct: set[Any]) -> bool:
    """Whether equal values (or rows of values) in ``distinct`` are interchangeable for every rule:
    texts, null and absent only."""
    kinds = set(map(type, distinct))
    if kinds <= _PLAIN_TYPES:
        return True
    if kinds == {tuple}:
        return all(set(map(type, row)) <= _PLAIN_TYPES for row in distinct)
    return False


def typed_item(value: Any) -> tuple[Any, ...]:
    """A key under which only interchangeable values meet: 1, 1.0 and True are equal but render
    differently, and so do 0.0 and -0.0 (``str`` gives "0.0" and "-0.0", which a length rule counts)."""
    if type(value) is float:
        return (float, value, math.copysign(1.0, value))
    return (value.__class__, value)


def _typed(value: Any) -> Any:
    if type(value) is tuple:
        return tuple(typed_item(item) for item in value)
    return typed_item(value)


def _untyped(key: Any) -> Any:
    if key and type(key[0]) is tuple:
        return tuple(item[1] for item in key)
    return key[1]
