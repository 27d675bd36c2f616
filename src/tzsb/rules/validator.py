"""Compile a business type's rules once; validate whole batches, reporting every fault.

Field rules come from the catalog; record rules from the rule set. Every rule has an id —
``<FIELD>.<rule>`` for field rules (``AREA_CODE.pattern``), the configured id for record rules —
by which configuration can change its severity or switch it off.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Final

from tzsb.catalog import BusinessType, FieldSpec, FieldType
from tzsb.clock import Clock, SystemClock, business_timestamp
from tzsb.errors import ConfigurationError
from tzsb.rules import (
    check_digit,
    code_list,
    compare,
    date_range,
    device_code,
    equipment_code,
    field_type,
    length,
    numeric_range,
    pattern,
    reference,
    region_code,
    required,
    required_if,
)
from tzsb.rules.base import Check, RecordCheck, RuleContext, Severity, Violation
from tzsb.rules.reference import ReferenceCheck

UNKNOWN_FIELD: Final = "unknown_field"
DUPLICATE_KEY: Final = "duplicate_key"

#: Per-field rule types in the order they run; a field stops at its first failed rule.
FIELD_RULES: Final = (field_type, length, pattern, code_list)

#: Record rule types by their id, as named in rule-set files.
RECORD_RULES: Final[dict[str, ModuleType]] = {
    module.RULE_ID: module
    for module in (
        numeric_range,
        date_range,
        compare,
        required_if,
        check_digit,
        region_code,
        equipment_code,
        device_code,
    )
}
RULE_TYPES: Final = frozenset(
    {required.RULE_ID, UNKNOWN_FIELD, DUPLICATE_KEY, reference.RULE_ID, *RECORD_RULES}
    | {module.RULE_ID for module in FIELD_RULES}
)

#: Looks up which of ``keys`` a business type holds (live records): ``(business, keys) -> found``.
ReferenceLookup = Callable[[str, Collection[str]], set[str]]


class _Absent:
    """A field the record does not hold (unlike ``None``, a field sent as null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Final = _Absent()
#: Value types whose equal values are interchangeable for every rule: a column holding only these
#: can be de-duplicated by value. ``1``, ``1.0`` and ``True`` are equal but not interchangeable.
_PLAIN_TYPES: Final = frozenset({str, type(None), _Absent})


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    checks: tuple[tuple[str, Check, Severity], ...]
    #: A single test that implies every field rule passes (strings only); when it says no, the
    #: checks above run one by one to find which rule failed.
    passes: Callable[[Any], bool] | None = None


def _passes_all(spec: FieldSpec) -> Callable[[Any], bool] | None:
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


@dataclass(frozen=True, slots=True)
class _RecordRule:
    rule_id: str
    check: RecordCheck
    severity: Severity
    #: The rule can only fault a record holding one of these fields (for required_if: its trigger).
    triggers: frozenset[str]
    #: The one trigger field when there is exactly one (most rules), else None.
    trigger: str | None = None
    #: Every field the rule reads: its result depends on their values alone (and the batch's clock).
    reads: tuple[str, ...] = ()


_TRIGGER_KEYS: Final = ("field", "other", "type_field", "sort_field", "variety_field")
_READ_KEYS: Final = ("field", "other", "when", "type_field", "sort_field", "variety_field")
#: Per batch, each record rule's results by the values it read: records of one batch repeat values
#: (the same unit, area, dates, equipment codes), so most rule calls become one dictionary look-up.
RuleMemo = list[dict[Any, list[tuple[str, str]]]]
#: position, trigger, triggers, single read, reads, check, rule id, severity
_RuleStep = tuple[int, str | None, frozenset[str], str | None, tuple[str, ...], RecordCheck, str, Severity]


@dataclass(slots=True)
class BatchReport:
    """Per-record details in the response shape ``[{"index", "key", "errors"|"warnings": [...]}]``."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)


class RecordValidator:
    """The compiled rules of one business type."""

    def __init__(
        self,
        business: BusinessType,
        rules: Sequence[Mapping[str, Any]] = (),
        severities: Mapping[str, str] | None = None,
        disabled: Collection[str] = (),
        clock: Clock | None = None,
    ) -> None:
        self.business = business
        severities = dict(severities or {})
        off = frozenset(disabled)
        # The primary key, region and timestamp fields carry the store: their field rules stay errors.
        for code in {business.primary_key, business.region_field, business.timestamp_field}:
            for rule in (required.RULE_ID, *(module.RULE_ID for module in FIELD_RULES)):
                rule_id = f"{code}.{rule}"
                if rule_id in off or severities.get(rule_id, Severity.ERROR) != Severity.ERROR:
                    raise ConfigurationError(
                        f"{business.code}: {rule_id} guards the primary key, region or timestamp field and "
                        "cannot be switched off or made a warning"
                    )

        def severity(rule_id: str, default: str = Severity.ERROR) -> Severity:
            try:
                return Severity(severities.get(rule_id, default))
            except ValueError:
                raise ConfigurationError(f"{business.code}: severity of {rule_id} must be error or warning") from None

        self._plans: dict[str, _FieldPlan] = {}
        required_fields: list[tuple[str, str, Severity]] = []
        for spec in business.fields:
            checks: list[tuple[str, Check, Severity]] = []
            for module in FIELD_RULES:
                rule_id = f"{spec.code}.{module.RULE_ID}"
                check = module.build(spec)
                if check is not None and rule_id not in off:
                    checks.append((module.RULE_ID, check, severity(rule_id)))
            self._plans[spec.code] = _FieldPlan(spec.name, tuple(checks), _passes_all(spec))
            if spec.required and f"{spec.code}.{required.RULE_ID}" not in off:
                required_fields.append((spec.code, spec.name, severity(f"{spec.code}.{required.RULE_ID}")))
        self._required = tuple(required_fields)
        self._required_names = frozenset(code for code, _, _ in required_fields)
        self._unknown_severity = severity(UNKNOWN_FIELD)
        self._check_unknown = UNKNOWN_FIELD not in off

        context = RuleContext(business, clock or SystemClock())
        self._context = context
        record_rules: list[_RecordRule] = []
        references: list[tuple[ReferenceCheck, Severity]] = []
        seen: set[str] = set()
        for params in rules:
            configured_id, rule_type = params.get("id"), params.get("type")
            if not isinstance(configured_id, str) or not configured_id:
                raise ConfigurationError(f"{business.code}: every rule needs an id")
            if configured_id in seen:
                raise ConfigurationError(f"{business.code}: rule id {configured_id} is used twice")
            seen.add(configured_id)
            if not params.get("enabled", True) or configured_id in off:
                continue
            default = str(params.get("severity", Severity.ERROR))
            builder = RECORD_RULES.get(str(rule_type))
            if builder is None and rule_type != reference.RULE_ID:
                raise ConfigurationError(
                    f"{business.code}: rule {configured_id} has unknown type {rule_type!r}; "
                    f"known: {', '.join(sorted(RECORD_RULES))}, reference"
                )
            try:
                if builder is None:
                    references.append((reference.build(params, context), severity(configured_id, default)))
                    continue
                check = builder.build(params, context)
            except ConfigurationError as exc:
                if str(exc).startswith(f"{business.code}: "):
                    raise
                raise ConfigurationError(f"{business.code}: {exc}") from None
            keys = ("when",) if rule_type == required_if.RULE_ID else _TRIGGER_KEYS
            triggers = frozenset(str(params[key]) for key in keys if key in params)
            record_rules.append(
                _RecordRule(
                    configured_id,
                    check,
                    severity(configured_id, default),
                    triggers,
                    next(iter(triggers)) if len(triggers) == 1 else None,
                    tuple(str(params[key]) for key in _READ_KEYS if key in params),
                )
            )
        self._record_rules = tuple(record_rules)
        # The same rules as flat tuples, for the per-record loop (unpacking beats attribute look-ups).
        self._rule_steps: tuple[_RuleStep, ...] = tuple(
            (position, rule.trigger, rule.triggers, rule.reads[0] if len(rule.reads) == 1 else None, rule.reads,
             rule.check, rule.rule_id, rule.severity)
            for position, rule in enumerate(record_rules)
        )  # fmt: skip
        self._references = tuple(references)

    @property
    def reads_store(self) -> bool:
        """Whether ``check_batch`` looks records up through its ``lookup`` (reference rules)."""
        return bool(self._references)

    def violations(
        self, record: Mapping[str, Any], *, partial: bool = False, memo: RuleMemo | None = None
    ) -> list[Violation]:
        """Every rule the record breaks, errors and warnings. ``partial`` (a 02 modify) skips required."""
        found: list[Violation] = []
        plans = self._plans
        for name, value in record.items():
            plan = plans.get(name)
            if plan is None:
                if self._check_unknown:
                    found.append(
                        Violation(
                            name,
                            UNKNOWN_FIELD,
                            f"字段 {name} 不是 {self.business.code} {self.business.name} 的数据元 / "
                            f"{name} is not a data element of business type {self.business.code}",
                            self._unknown_severity,
                        )
                    )
                continue
            # A value that passes every field rule needs nothing more (a blank one would be skipped
            # anyway: required fields are checked below, on their own).
            if plan.passes is not None and plan.passes(value):
                continue
            # is_blank, inlined: this loop runs for every field of every record.
            if value is None or (type(value) is str and (not value or (value[0].isspace() and not value.strip()))):
                continue
            for rule_id, check, rule_severity in plan.checks:
                problem = check(value)
                if problem is not None:
                    found.append(Violation(name, rule_id, problem, rule_severity))
                    if rule_severity is Severity.ERROR:
                        break  # later checks of this field would only repeat the fault
        for code, name, rule_severity in self._required:
            value = record.get(code)
            blank = value is None or (type(value) is str and (not value or (value[0].isspace() and not value.strip())))
            if blank and not (partial and code not in record):
                found.append(Violation(code, required.RULE_ID, required.message(code, name), rule_severity))
        if self._rule_steps and not partial:
            for position, trigger, triggers, single, reads, rule_check, rule_id, rule_severity in self._rule_steps:
                # Most rules watch one field: a membership test is much cheaper than isdisjoint.
                if trigger is not None:
                    if trigger not in record:
                        continue
                elif triggers.isdisjoint(record):
                    continue
                if memo is None:
                    rule_faults = rule_check(record)
                else:
                    # Keyed by type too: 1, 1.0 and True are equal keys but not equal values to a rule.
                    if single is not None:
                        value = record.get(single)
                        key: Any = _typed_item(value)
                    else:
                        key = tuple(_typed_item(record.get(name)) for name in reads)
                    cache = memo[position]
                    try:
                        rule_faults = cache[key]
                    except KeyError:
                        rule_faults = cache[key] = rule_check(record)
                    except TypeError:  # a list or object value cannot be a key
                        rule_faults = rule_check(record)
                for field_code, message in rule_faults:
                    found.append(Violation(field_code, rule_id, message, rule_severity))
        return found

    def check_batch(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        partial: bool = False,
        lookup: ReferenceLookup | None = None,
    ) -> BatchReport:
        """Every fault of every record, split by severity; duplicate keys and references included."""
        key_field = self.business.primary_key
        report = BatchReport()
        # One "now" for the whole batch: not-in-the-future rules would otherwise read the clock per record.
        self._context.now.text = business_timestamp(self._context.clock.now())
        try:
            return self._check_batch(records, partial, lookup, key_field, report)
        finally:
            self._context.now.text = None

    def _check_batch(
        self,
        records: Sequence[Mapping[str, Any]],
        partial: bool,
        lookup: ReferenceLookup | None,
        key_field: str,
        report: BatchReport,
    ) -> BatchReport:
        first_index: dict[str, int] = {}
        per_record: list[list[Violation]] = []
        memo: RuleMemo = [{} for _ in self._record_rules]
        # Only the records the column screen cannot clear are checked one by one.
        suspects = None if partial or not records else self._suspects(records)
        for index, record in enumerate(records):
            if suspects is None or index in suspects:
                problems = self.violations(record, partial=partial, memo=memo)
            else:
                problems = []
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
            per_record.append(problems)
        if self._references and lookup is not None and not partial:
            for check, rule_severity in self._references:
                wanted = {
                    str(r[check.field]) for r in records if isinstance(r.get(check.field), str) and r[check.field]
                }
                held = lookup(check.business, wanted) if wanted else set()
                for index, record in enumerate(records):
                    value = record.get(check.field)
                    if isinstance(value, str) and value and value not in held:
                        per_record[index].append(Violation(check.field, check.rule_id, check.message, rule_severity))
        for index, (record, problems) in enumerate(zip(records, per_record, strict=True)):
            if not problems:
                continue
            key = record.get(key_field)
            shown_key = key if isinstance(key, str) else None
            errors = [p.as_dict() for p in problems if p.severity is Severity.ERROR]
            warnings = [p.as_dict() for p in problems if p.severity is Severity.WARNING]
            if errors:
                report.errors.append({"index": index, "key": shown_key, "errors": errors})
            if warnings:
                report.warnings.append({"index": index, "key": shown_key, "warnings": warnings})
        return report

    def _suspects(self, records: Sequence[Mapping[str, Any]]) -> set[int]:
        """The records that may break a rule, found column by column over distinct values.

        A batch repeats most of its values (code lists, units, areas, dates), so every field rule and
        record rule runs once per distinct value (or distinct tuple of the values it reads) instead of
        once per record. A record holding no failing value has no violation; only the others go
        through ``violations``, which then reports exactly as it would have without the screen.
        """
        suspects: set[int] = set()
        count = len(records)
        names: set[str] = set().union(*records)
        plans = self._plans
        if self._check_unknown:
            for name in names.difference(plans):
                suspects.update(index for index, record in enumerate(records) if name in record)
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
                values = columns[name] = [record.get(name, _ABSENT) for record in records]
            return values

        required_names = self._required_names
        for name, plan in plans.items():
            required_field = name in required_names
            if name not in names:
                if required_field:
                    return set(range(count))  # no record holds it: every one fails
                continue
            if not _screen_column(column(name), _field_passes(plan, required_field), suspects):
                suspects.update(range(count))
        for _, _, triggers, single, reads, rule_check, _, _ in self._rule_steps:
            if triggers.isdisjoint(names):
                continue
            if single is not None:
                passes = _single_read_passes(single, rule_check)
                if not _screen_column(column(single), passes, suspects):
                    suspects.update(range(count))
                continue
            rows = list(zip(*(column(name) for name in reads), strict=True))
            if not _screen_column(rows, _many_reads_passes(reads, triggers, rule_check), suspects):
                suspects.update(range(count))
        return suspects

    def validate_batch(self, records: Sequence[Mapping[str, Any]], *, partial: bool = False) -> list[dict[str, Any]]:
        """Per-record details of every record with errors (empty when the batch may be stored)."""
        return self.check_batch(records, partial=partial).errors


def _field_passes(plan: _FieldPlan, required_field: bool) -> Callable[[Any], bool]:
    """Whether ``violations`` would find nothing wrong with a value of the field."""
    fast = plan.passes
    checks = plan.checks

    def passes(value: Any) -> bool:
        if value is _ABSENT or value is None:
            return not required_field
        # Blank before the combined test: a required field holding only spaces passes that test.
        if type(value) is str and (not value or (value[0].isspace() and not value.strip())):
            return not required_field
        if fast is not None and fast(value):
            return True
        return all(check(value) is None for _, check, _ in checks)

    return passes


def _single_read_passes(name: str, rule_check: RecordCheck) -> Callable[[Any], bool]:
    """A record rule reading one field: it passes a value when a record holding only it passes."""

    def passes(value: Any) -> bool:
        return value is _ABSENT or not rule_check({name: value})

    return passes


def _many_reads_passes(
    reads: tuple[str, ...], triggers: frozenset[str], rule_check: RecordCheck
) -> Callable[[tuple[Any, ...]], bool]:
    def passes(values: tuple[Any, ...]) -> bool:
        record = {name: value for name, value in zip(reads, values, strict=True) if value is not _ABSENT}
        return triggers.isdisjoint(record) or not rule_check(record)

    return passes


def _screen_column(values: Sequence[Any], passes: Callable[[Any], bool], suspects: set[int]) -> bool:
    """Add the positions whose value fails ``passes`` to ``suspects``, testing each distinct value once.

    Returns False when the column cannot be de-duplicated (a list or object value): the caller then
    treats every record as a suspect.
    """
    try:
        distinct = set(values)
    except TypeError:
        return False
    if not _plain(distinct):
        # Equal values of different types (1, 1.0, True) must be told apart.
        typed = [_typed(value) for value in values]
        try:
            distinct = set(typed)
        except TypeError:
            return False
        failing = {key for key in distinct if not passes(_untyped(key))}
        if failing:
            suspects.update(index for index, key in enumerate(typed) if key in failing)
        return True
    failing = {value for value in distinct if not passes(value)}
    if failing:
        suspects.update(index for index, value in enumerate(values) if value in failing)
    return True


def _plain(distinct: set[Any]) -> bool:
    kinds = set(map(type, distinct))
    if kinds <= _PLAIN_TYPES:
        return True
    if kinds == {tuple}:
        return all(set(map(type, row)) <= _PLAIN_TYPES for row in distinct)
    return False


def _typed_item(value: Any) -> tuple[Any, ...]:
    """A key under which only interchangeable values meet: 1, 1.0 and True are equal but render
    differently, and so do 0.0 and -0.0 (``str`` gives "0.0" and "-0.0", which a length rule counts)."""
    if type(value) is float:
        return (float, value, math.copysign(1.0, value))
    return (value.__class__, value)


def _typed(value: Any) -> Any:
    if type(value) is tuple:
        return tuple(_typed_item(item) for item in value)
    return _typed_item(value)


def _untyped(key: Any) -> Any:
    if key and type(key[0]) is tuple:
        return tuple(item[1] for item in key)
    return key[1]


def compile_validator(
    business: BusinessType,
    rules: Sequence[Mapping[str, Any]] = (),
    severities: Mapping[str, str] | None = None,
    disabled: Collection[str] = (),
    clock: Clock | None = None,
) -> RecordValidator:
    return RecordValidator(business, rules, severities, disabled, clock)
