"""Natural keys (一数一源 across keys): the catalog's field sets that identify a record besides its
primary key, e.g. a device's 注册代码, or its 出厂编号 with its 制造单位名称.

A record whose natural key another record holds under another primary key — a stored record, or
one earlier in the same batch — breaks the rule ``natural-key-<name>`` (``natural-key-REG_CODE``,
``natural-key-FACTORY_NO+MAKE_UNIT_NAME``): a warning unless the catalog declares the key an error;
rule sets change its severity or switch it off by that id, like any rule. A record never duplicates
itself (the same primary key: a re-send, an update), and a missing or blank value matches nothing.

The rules are built from the catalog, as field rules are, and are no record rule type: a natural key
must be declared in the catalog because the store keeps an index for each one. The store is asked
once per batch, for every key of the business type at once, through the
:data:`~tzsb.rules.contract.NaturalKeyLookup` the caller provides; the caller decides which stored
records it may be told of (:class:`~tzsb.rules.contract.NaturalKeyHolder`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tzsb.catalog import BusinessType
from tzsb.rules.base import Severity, Violation
from tzsb.rules.contract import NaturalKeyHolder, NaturalKeyLookup

#: A warning names at most this many stored records (the first by key); more are only counted as "等".
MAX_NAMED: Final = 3


@dataclass(frozen=True, slots=True)
class NaturalKeyRule:
    """The compiled rule of one natural key.

    Attributes:
        name: The key's name (its fields joined by ``+``), as the store look-up is asked by.
        rule_id: ``natural-key-<name>``.
        field: The field its faults are reported on: the key's first.
        values: Each record's value of the key, or None (missing, blank: it matches nothing).
        label: The key's fields by Chinese name and code, for messages.
        severity: As configured (the catalog's, unless a rule set says otherwise).
    """

    name: str
    rule_id: str
    field: str
    values: Callable[[Sequence[Mapping[str, Any]]], list[str | None]]
    label: str
    severity: Severity

    def stored_message(self, holders: Sequence[NaturalKeyHolder]) -> str:
        """The fault of a record whose value stored records the caller may see hold (``holders``)."""
        named = holders[:MAX_NAMED]
        more = len(holders) > MAX_NAMED
        zh = "、".join(f"{holder.key}（来源 {holder.source}）" for holder in named) + ("等" if more else "")
        en = ", ".join(f"{holder.key} (source {holder.source})" for holder in named) + (" and more" if more else "")
        return (
            f"{self.label}与本节点已有记录 {zh} 相同，可能是同一对象的重复记录 / "
            f"{self.name} equals that of stored record {en}: the same thing may be stored twice"
        )

    def hidden_message(self) -> str:
        """The fault of a record whose value only stored records the caller may not see hold: it says
        neither which record, nor where, nor whose."""
        return (
            f"{self.label}与本节点一条您无权查看的记录相同，可能是同一对象的重复记录 / "
            f"{self.name} equals that of a record this node holds outside your view: the same thing may be "
            "stored twice"
        )

    def batch_message(self, first_index: int, first_key: Any) -> str:
        """The fault of a record whose value record ``first_index`` of the same batch holds under another key."""
        return (
            f"{self.label}与本批第 {first_index} 条记录（{first_key}）相同，可能是同一对象的重复记录 / "
            f"{self.name} equals that of record {first_index} of this batch ({first_key}): the same thing may be "
            "sent twice"
        )


def compile_rules(
    business: BusinessType, severity: Callable[[str, str], Severity], off: Collection[str]
) -> tuple[NaturalKeyRule, ...]:
    """The rules of ``business``'s natural keys that are not switched off, each with its severity
    (``severity(rule_id, the catalog's severity)``)."""
    rules: list[NaturalKeyRule] = []
    for natural_key in business.natural_keys:
        rule_id = natural_key.rule_id
        if rule_id in off:
            continue
        labels = []
        for code in natural_key.fields:
            spec = business.field(code)
            labels.append(f"{spec.name}（{code}）" if spec is not None else code)
        rules.append(
            NaturalKeyRule(
                name=natural_key.name,
                rule_id=rule_id,
                field=natural_key.fields[0],
                values=natural_key.values,
                label="+".join(labels),
                severity=severity(rule_id, natural_key.severity),
            )
        )
    return tuple(rules)


def wanted(rules: Sequence[NaturalKeyRule], records: Sequence[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Every value of every natural key in ``records``, by key name (keys without values left out):
    what one store look-up asks."""
    found: dict[str, set[str]] = {}
    for rule in rules:
        values = {value for value in rule.values(records) if value is not None}
        if values:
            found[rule.name] = values
    return found


def add_faults(
    rules: Sequence[NaturalKeyRule],
    records: Sequence[Mapping[str, Any]],
    key_field: str,
    lookup: NaturalKeyLookup | None,
    business: str,
    per_record: list[list[Violation]],
) -> None:
    """Add a violation to ``per_record`` for each record whose natural key another record holds under
    another primary key: a stored one (asked through ``lookup``, once; without it, only the batch is
    checked) or an earlier one of the batch."""
    columns = [rule.values(records) for rule in rules]
    found: Mapping[str, Mapping[str, Sequence[NaturalKeyHolder]]] = {}
    if lookup is not None:
        asked = {
            rule.name: values
            for rule, column in zip(rules, columns, strict=True)
            if (values := {value for value in column if value is not None})
        }
        if asked:
            found = lookup(business, asked)
    for rule, column in zip(rules, columns, strict=True):
        held = found.get(rule.name)
        first: dict[str, int] = {}
        for index, value in enumerate(column):
            if value is None:
                continue
            earlier = first.setdefault(value, index)
            holders = held.get(value) if held else None
            if not holders and earlier == index:
                continue  # most values: no other record holds them
            own = records[index].get(key_field)
            if holders:
                others = [holder for holder in holders if holder.key != own]
                if others:
                    visible = sorted((holder for holder in others if holder.visible), key=lambda holder: holder.key)
                    message = rule.stored_message(visible) if visible else rule.hidden_message()
                    per_record[index].append(Violation(rule.field, rule.rule_id, message, rule.severity))
            if earlier != index:
                first_key = records[earlier].get(key_field)
                # The same primary key twice is the fault of duplicate_key, not of a natural key.
                if first_key != own:
                    message = rule.batch_message(earlier, first_key)
                    per_record[index].append(Violation(rule.field, rule.rule_id, message, rule.severity))
