"""Compile a business type's rules once; validate whole batches, reporting every fault.

Field rules come from the catalog; record rules from the rule set. Every rule has an id —
``<FIELD>.<rule>`` for field rules (``AREA_CODE.pattern``), the configured id for record rules —
by which configuration can change its severity or switch it off.

The validator knows rule types only through their declared contract (:mod:`tzsb.rules.contract`):
a record rule is a check with the fields it reads and the fields that trigger it, or a store
look-up. The catalog's natural keys become rules ``natural-key-<name>``
(:mod:`tzsb.rules.natural_keys`), checked within the batch and, through one look-up per batch,
against the store. It holds no state that changes while it validates: the batch's clock reading is
an argument of each call, so concurrent requests share one validator safely.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tzsb.catalog import BusinessType
from tzsb.clock import Clock, SystemClock, business_timestamp
from tzsb.errors import ConfigurationError, RecordFault
from tzsb.rules import natural_keys as natural_key_rules
from tzsb.rules import required
from tzsb.rules.base import RuleContext, Severity, Violation
from tzsb.rules.contract import Check, KeyLookup, NaturalKeyLookup, RecordLookup, RelatedLookup, RelatedRecord
from tzsb.rules.field_plan import FIELD_RULE_TYPES, FieldPlan, passes_all
from tzsb.rules.record_rules import RECORD_RULE_TYPES
from tzsb.rules.screen import ABSENT, RuleStep, plain_values, suspects, typed_item
from tzsb.rules.shape import DUPLICATE_KEY, UNKNOWN_FIELD, duplicate_key_message

#: Per batch, each record rule's results by the values it read: records of one batch repeat values
#: (the same unit, area, dates, equipment codes), so most rule calls become one dictionary look-up.
RuleMemo = list[dict[Any, list[tuple[str, str]]]]


@dataclass(frozen=True, slots=True)
class BatchReport:
    """Every fault of a batch, by record: ``errors`` reject the batch, ``warnings`` are only reported.

    Each entry's ``as_dict()`` is the response shape: ``{"index", "key", "errors": [...]}`` or
    ``{"index", "key", "warnings": [...]}``.
    """

    errors: list[RecordFault] = field(default_factory=list)
    warnings: list[RecordFault] = field(default_factory=list)


def _known_types() -> str:
    # Look-up types last: the wording of this message predates the contract.
    ordered = sorted(RECORD_RULE_TYPES.values(), key=lambda rule_type: (rule_type.looks_up, rule_type.id))
    return ", ".join(rule_type.id for rule_type in ordered)


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
        self._clock = clock or SystemClock()
        severities = dict(severities or {})
        off = frozenset(disabled)
        # The primary key, region and timestamp fields carry the store: their field rules stay errors.
        for code in {business.primary_key, business.region_field, business.timestamp_field}:
            for rule in (required.RULE_ID, *(rule_type.id for rule_type in FIELD_RULE_TYPES)):
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

        self._plans: dict[str, FieldPlan] = {}
        required_fields: list[tuple[str, str, Severity]] = []
        for spec in business.fields:
            checks: list[tuple[str, Check, Severity]] = []
            for field_rule in FIELD_RULE_TYPES:
                rule_id = f"{spec.code}.{field_rule.id}"
                check = field_rule.build(spec)
                if check is not None and rule_id not in off:
                    checks.append((field_rule.id, check, severity(rule_id, field_rule.default_severity)))
            self._plans[spec.code] = FieldPlan(spec.name, tuple(checks), passes_all(spec))
            if spec.required and f"{spec.code}.{required.RULE_ID}" not in off:
                required_fields.append((spec.code, spec.name, severity(f"{spec.code}.{required.RULE_ID}")))
        self._required = tuple(required_fields)
        self._required_names = frozenset(code for code, _, _ in required_fields)
        self._unknown_severity = severity(UNKNOWN_FIELD)
        self._check_unknown = UNKNOWN_FIELD not in off

        self._natural_keys = natural_key_rules.compile_rules(business, severity, off)
        context = RuleContext(business)
        steps: list[RuleStep] = []
        lookups: list[tuple[RecordLookup, str, Severity]] = []
        related: list[tuple[RelatedRecord, str, Severity]] = []
        # The catalog's natural keys own their ids: a record rule of the same id would share their
        # severity and switch.
        seen: set[str] = {natural_key.rule_id for natural_key in business.natural_keys}
        for params in rules:
            configured_id, type_id = params.get("id"), params.get("type")
            if not isinstance(configured_id, str) or not configured_id:
                raise ConfigurationError(f"{business.code}: every rule needs an id")
            if configured_id in seen:
                raise ConfigurationError(f"{business.code}: rule id {configured_id} is used twice")
            seen.add(configured_id)
            if not params.get("enabled", True) or configured_id in off:
                continue
            rule_type = RECORD_RULE_TYPES.get(str(type_id))
            if rule_type is None:
                raise ConfigurationError(
                    f"{business.code}: rule {configured_id} has unknown type {type_id!r}; known: {_known_types()}"
                )
            try:
                built = rule_type.build(params, context)
            except ConfigurationError as exc:
                if str(exc).startswith(f"{business.code}: "):
                    raise
                raise ConfigurationError(f"{business.code}: {exc}") from None
            rule_severity = severity(configured_id, str(params.get("severity", Severity.ERROR)))
            if built.lookup is not None:
                lookups.append((built.lookup, configured_id, rule_severity))
            if built.related is not None:
                related.append((built.related, configured_id, rule_severity))
            if built.check is not None:
                triggers, reads = built.triggers, built.reads
                # Flat tuples for the per-record loop (unpacking beats attribute look-ups).
                steps.append((
                    len(steps),
                    next(iter(triggers)) if len(triggers) == 1 else None,
                    triggers,
                    reads[0] if len(reads) == 1 else None,
                    reads,
                    built.check,
                    configured_id,
                    rule_severity,
                ))  # fmt: skip
        self._rule_steps: tuple[RuleStep, ...] = tuple(steps)
        self._lookups = tuple(lookups)
        self._related = tuple(related)

    @property
    def reads_store(self) -> bool:
        """Whether ``check_batch`` looks records up through its ``lookup`` (rules that are store look-ups
        of their own; cross-record rules ask ``related``, which a caller may answer beforehand as for
        natural keys: ``related_values``)."""
        return bool(self._lookups)

    def related_values(self, records: Sequence[Mapping[str, Any]]) -> list[tuple[RelatedRecord, set[str]]]:
        """What ``check_batch`` would ask its ``related`` look-up about ``records``: per cross-record
        rule, the values of the records that need the other record (rules with none left out)."""
        asked: list[tuple[RelatedRecord, set[str]]] = []
        for need, _, _ in self._related:
            values = {value for _, value in _needing(need, records)}
            if values:
                asked.append((need, values))
        return asked

    @property
    def related_matches(self) -> frozenset[tuple[str, str]]:
        """(business, field) of every other type's field a cross-record rule finds records by: the
        store indexes them."""
        return frozenset((need.business, need.match) for need, _, _ in self._related if need.match is not None)

    @property
    def checks_natural_keys(self) -> bool:
        """Whether ``check_batch`` asks its ``natural_keys`` look-up (natural keys not switched off)."""
        return bool(self._natural_keys)

    def natural_key_values(self, records: Sequence[Mapping[str, Any]]) -> dict[str, set[str]]:
        """What ``check_batch`` would ask its ``natural_keys`` look-up about ``records``: every value
        of every natural key in force, by key name (for a caller that must ask the store beforehand)."""
        return natural_key_rules.wanted(self._natural_keys, records)

    def _now(self) -> str:
        return business_timestamp(self._clock.now())

    def violations(
        self,
        record: Mapping[str, Any],
        *,
        partial: bool = False,
        now: str | None = None,
        memo: RuleMemo | None = None,
    ) -> list[Violation]:
        """Every rule the record breaks, errors and warnings (store look-ups aside).

        Args:
            record: One record.
            partial: A 02 modify: required fields the record does not hold, and record rules, are skipped.
            now: The clock reading rules judge "the future" by (business-timestamp text); None reads
                the validator's clock once.
            memo: Record rules' results by the values they read, shared by the records of one batch
                (and one ``now``).

        Returns:
            The violations, in no promised order.
        """
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
            if now is None:
                now = self._now()
            for position, trigger, triggers, single, reads, rule_check, rule_id, rule_severity in self._rule_steps:
                # Most rules watch one field: a membership test is much cheaper than isdisjoint.
                if trigger is not None:
                    if trigger not in record:
                        continue
                elif triggers.isdisjoint(record):
                    continue
                if memo is None:
                    rule_faults = rule_check(record, now)
                else:
                    # Keyed by type too: 1, 1.0 and True are equal keys but not equal values to a rule.
                    if single is not None:
                        key: Any = typed_item(record.get(single))
                    else:
                        key = tuple(typed_item(record.get(name)) for name in reads)
                    cache = memo[position]
                    try:
                        rule_faults = cache[key]
                    except KeyError:
                        rule_faults = cache[key] = rule_check(record, now)
                    except TypeError:  # a list or object value cannot be a key
                        rule_faults = rule_check(record, now)
                for field_code, message in rule_faults:
                    found.append(Violation(field_code, rule_id, message, rule_severity))
        return found

    def check_batch(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        now: str | None = None,
        partial: bool = False,
        lookup: KeyLookup | None = None,
        natural_keys: NaturalKeyLookup | None = None,
        related: RelatedLookup | None = None,
    ) -> BatchReport:
        """Every fault of every record, split by severity; duplicate keys and store look-ups included.

        Args:
            records: The batch.
            now: The batch's clock reading (business-timestamp text); None reads the validator's
                clock once, so every record is judged against the same "now".
            partial: A 02 modify: required fields the record does not hold, record rules and store
                look-ups are skipped.
            lookup: Asks the store which keys it holds; without it, look-up rules are skipped.
            natural_keys: Asks the store which records hold the batch's natural-key values (once);
                without it, natural keys are checked within the batch only.
            related: Fetches the other records cross-record rules judge records with (once per
                rule); without it, those rules are skipped.

        Returns:
            The report: one entry per record with errors, one per record with warnings, by index.
        """
        if now is None:
            now = self._now()
        key_field = self.business.primary_key
        first_index: dict[str, int] = {}
        per_record: list[list[Violation]] = []
        memo: RuleMemo = [{} for _ in self._rule_steps]
        # Only the records the column screen cannot clear are checked one by one.
        screened = None if partial or not records else self._suspects(records, now)
        for index, record in enumerate(records):
            if screened is None or index in screened:
                problems = self.violations(record, partial=partial, now=now, memo=memo)
            else:
                problems = []
            key = record.get(key_field)
            if isinstance(key, str) and key:
                if key in first_index:
                    problems.append(Violation(key_field, DUPLICATE_KEY, duplicate_key_message(key, first_index[key])))
                else:
                    first_index[key] = index
            per_record.append(problems)
        if self._lookups and lookup is not None and not partial:
            self._look_up(records, lookup, per_record)
        if self._related and related is not None and not partial:
            self._relate(records, related, per_record)
        if self._natural_keys and not partial:
            natural_key_rules.add_faults(
                self._natural_keys, records, key_field, natural_keys, self.business.code, per_record
            )
        errors: list[RecordFault] = []
        warnings: list[RecordFault] = []
        for index, (record, problems) in enumerate(zip(records, per_record, strict=True)):
            if not problems:
                continue
            key = record.get(key_field)
            shown_key = key if isinstance(key, str) else None
            found_errors = tuple(p.as_fault() for p in problems if p.severity is Severity.ERROR)
            found_warnings = tuple(p.as_fault() for p in problems if p.severity is Severity.WARNING)
            if found_errors:
                errors.append(RecordFault(index, shown_key, errors=found_errors))
            if found_warnings:
                warnings.append(RecordFault(index, shown_key, warnings=found_warnings))
        return BatchReport(errors, warnings)

    def _look_up(
        self, records: Sequence[Mapping[str, Any]], lookup: KeyLookup, per_record: list[list[Violation]]
    ) -> None:
        """Add a violation for every value a look-up rule needs held that the store does not hold."""
        for need, rule_id, rule_severity in self._lookups:
            name = need.field
            wanted = {str(r[name]) for r in records if isinstance(r.get(name), str) and r[name]}
            held = lookup(need.business, wanted) if wanted else set()  # one question per rule and batch
            for index, record in enumerate(records):
                value = record.get(name)
                if isinstance(value, str) and value and value not in held:
                    per_record[index].append(Violation(name, rule_id, need.message, rule_severity))

    def _relate(
        self, records: Sequence[Mapping[str, Any]], related: RelatedLookup, per_record: list[list[Violation]]
    ) -> None:
        """Judge every record that needs it with the other record it names (one question per rule)."""
        for need, rule_id, rule_severity in self._related:
            asking = _needing(need, records)
            if not asking:
                continue
            others = related(need, {value for _, value in asking})
            for index, value in asking:
                other = others.get(value)
                if other is not None:
                    for field, message in need.check(records[index], other):
                        per_record[index].append(Violation(field, rule_id, message, rule_severity))

    def _suspects(self, records: Sequence[Mapping[str, Any]], now: str) -> set[int]:
        """The records that may break a rule (see :mod:`tzsb.rules.screen`)."""
        return suspects(records, self._plans, self._required_names, self._check_unknown, self._rule_steps, now)

    def validate_batch(
        self, records: Sequence[Mapping[str, Any]], *, partial: bool = False, now: str | None = None
    ) -> list[RecordFault]:
        """Per-record faults of every record with errors (empty when the batch may be stored)."""
        return self.check_batch(records, now=now, partial=partial).errors


def _needing(need: RelatedRecord, records: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    """(position, value) of every record that names another record and needs it."""
    if need.needs_reads:
        by_values = _needing_by_values(need, need.needs_reads, records)
        if by_values is not None:
            return by_values
    name = need.field
    return [
        (index, record[name])
        for index, record in enumerate(records)
        if isinstance(record.get(name), str) and record[name] and need.needs(record)
    ]


def _needing_by_values(
    need: RelatedRecord, reads: tuple[str, ...], records: Sequence[Mapping[str, Any]]
) -> list[tuple[int, str]] | None:
    """``_needing``, asking ``need.needs`` once per distinct tuple of the values it reads: a batch
    asks it of every record twice (the look-up beforehand, then the check), and most records share
    a few values (e.g. 在用). None when equal values may not be interchangeable (1, 1.0, True) or
    cannot be told apart (a list): the caller asks each record."""
    rows = list(zip(*([record.get(field, ABSENT) for record in records] for field in reads), strict=True))
    try:
        distinct = set(rows)
    except TypeError:
        return None
    if not plain_values(distinct):
        return None
    verdicts = {
        row: need.needs({field: value for field, value in zip(reads, row, strict=True) if value is not ABSENT})
        for row in distinct
    }
    name = need.field
    return [
        (index, value)
        for index, (value, row) in enumerate(zip([record.get(name) for record in records], rows, strict=True))
        if isinstance(value, str) and value and verdicts[row]
    ]


def compile_validator(
    business: BusinessType,
    rules: Sequence[Mapping[str, Any]] = (),
    severities: Mapping[str, str] | None = None,
    disabled: Collection[str] = (),
    clock: Clock | None = None,
) -> RecordValidator:
    """The compiled rules of ``business`` (see :class:`RecordValidator`)."""
    return RecordValidator(business, rules, severities, disabled, clock)
