"""Actions 01–03 on the node's own store, inside one transaction: all records or none."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tzsb import refusals
from tzsb.catalog import BusinessType
from tzsb.errors import ExchangeError, RecordFault
from tzsb.exchange.query import is_id_or_mobile
from tzsb.protocol import Action, covers
from tzsb.registry import App
from tzsb.rules import NaturalKeyHolder, RecordValidator, Severity
from tzsb.store import Connection, StoredRecord, natural_keys, records_read, records_written


@dataclass(slots=True)
class WriteOutcome:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    unchanged: int = 0
    #: Keys skipped because the stored record is newer, so the caller can tell which.
    skipped_keys: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted

    def counts(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "skipped": self.skipped,
            "unchanged": self.unchanged,
        }

    def message(self) -> str:
        return (
            f"成功：新增 {self.inserted} 条，更新 {self.updated} 条，删除 {self.deleted} 条，"
            f"跳过 {self.skipped} 条（已有更新的数据），无变化 {self.unchanged} 条 / "
            f"OK: inserted {self.inserted}, updated {self.updated}, deleted {self.deleted}, "
            f"skipped {self.skipped} (stored data is newer), unchanged {self.unchanged}"
        )


@dataclass(frozen=True, slots=True)
class WriteContext:
    business: BusinessType
    validator: RecordValidator
    app: App
    now: str
    #: The app receives this business type masked: it may not learn through a write what a query
    #: would not tell it (which sensitive keys exist, what sensitive values hold).
    masked: bool = False
    #: The request's ``random``: a record's history names the request that made each version.
    random: str = ""


@dataclass(frozen=True, slots=True)
class HeldKey:
    """A key of an add that a record the caller may not access holds (told to the operator only)."""

    key: str
    region: str
    source: str


def check_regions(records: Sequence[dict[str, Any]], business: BusinessType, scope: str) -> None:
    """Every record's region field must lie inside ``scope`` (``E_REGION`` lists those that don't)."""
    field_name = business.region_field
    # A batch holds few distinct regions: test each once, then pick out the records outside.
    regions = {str(record[field_name]) for record in records if field_name in record}
    foreign = {region for region in regions if not covers(scope, region)}
    if not foreign:
        return
    outside = [
        RecordFault(index, record.get(business.primary_key), region=record.get(field_name))
        for index, record in enumerate(records)
        if field_name in record and str(record[field_name]) in foreign
    ]
    if outside:
        raise refusals.records_outside_region(outside, scope)


def accessible(context: WriteContext, stored: StoredRecord) -> bool:
    """Whether the caller may learn anything of ``stored`` through a write: it lies in the caller's
    region and, for an app that sees the type masked, the caller may change it."""
    return _may_learn_of(context, stored.region, stored.source_appid)


def _may_learn_of(context: WriteContext, region: str, source: str) -> bool:
    """``accessible`` for a record of ``region`` first supplied by ``source``."""
    if not covers(context.app.region, region):
        return False
    return not context.masked or source == context.app.appid or context.business.code in context.app.overrides


def _may_override(context: WriteContext, stored: StoredRecord) -> bool:
    return stored.source_appid == context.app.appid or context.business.code in context.app.overrides


def natural_key_holders(
    connection: Connection, context: WriteContext, wanted: Mapping[str, Collection[str]]
) -> dict[str, dict[str, list[NaturalKeyHolder]]]:
    """The live records holding the wanted natural-key values (one statement), as the caller may
    learn of them: the validator's natural-key look-up.

    A record the caller may access (as ``accessible``: an add colliding with its key would be told
    which key) is named, with its source. Of one it may not, the caller learns only that it exists
    (the warning says "outside your view", never which record, region or source), as an add
    colliding with such a key learns that some key of its batch is held; and not even that when
    the key holds personal data (a sensitive field, or a value that is an ID or mobile number — a
    certificate number may be its holder's ID number): "does this ID number exist in another
    region" must not be answerable by adding a record.
    """
    business = context.business
    declared = {natural_key.name: natural_key for natural_key in business.natural_keys}
    asked = {name: (declared[name].fields, values) for name, values in wanted.items() if name in declared}
    found: dict[str, dict[str, list[NaturalKeyHolder]]] = {}
    for name, by_value in natural_keys.holders_by_key(connection, business.code, asked).items():
        personal_key = any(spec.sensitive for spec in map(business.field, declared[name].fields) if spec is not None)
        for value, rows in by_value.items():
            hidden_allowed = not personal_key and not any(map(is_id_or_mobile, value.split(declared[name].SEPARATOR)))
            holders = [
                NaturalKeyHolder(row.record_key, row.source_appid, True)
                if _may_learn_of(context, row.region, row.source_appid)
                else NaturalKeyHolder(row.record_key, "", False)
                for row in rows
            ]
            if not hidden_allowed:
                holders = [holder for holder in holders if holder.visible]
            if holders:
                found.setdefault(name, {})[value] = holders
    return found


def _row(
    context: WriteContext, key: str, data: dict[str, Any], seq: int, source: str, previous_region: str
) -> dict[str, Any]:
    business = context.business
    return {
        "business": business.code,
        "record_key": key,
        "region": data[business.region_field],
        "updated_at": data[business.timestamp_field],
        "data": data,
        "deleted": False,
        "deleted_at": None,
        "deleted_by": None,
        "source_appid": source,
        "changed_by": context.app.appid,
        "changed_at": context.now,
        "seq": seq,
        # A record that moves leaves a departure behind, for the feeds of the region it left.
        "previous_region": previous_region,
    }


@dataclass(frozen=True, slots=True)
class WritePlan:
    """What a batch would change, decided against the stored records under the writers' lock."""

    outcome: WriteOutcome
    new: records_written.NewRecords
    #: Rows of stored records to replace (``update`` rows, with their sequences).
    updates: list[dict[str, Any]]
    last_seq: int
    #: Why the batch cannot be applied (the first of: invalid after a change, a key held by a record
    #: the caller may not access, outside the caller's region, not found, another source's record),
    #: or None.
    error: ExchangeError | None
    #: The keys of an add held by records the caller may not access (the error then says only that).
    held: tuple[HeldKey, ...] = ()
    #: The first change sequence this write hands out (``last_seq`` the last), its action, and who
    #: made it through which request, for the records' history.
    first_seq: int = 0
    action: Action = Action.ADD
    appid: str = ""
    random: str = ""
    now: str = ""


def plannable(records: Sequence[dict[str, Any]], business: BusinessType) -> bool:
    """Whether ``plan`` may see these records before they are validated: key, region and timestamp
    are strings in every one (planning compares them; validation reports anything else)."""
    fields = (business.primary_key, business.region_field, business.timestamp_field)
    return all(set(map(type, [record.get(field) for record in records])) == {str} for field in fields)


def plan(
    connection: Connection,
    action: Action,
    records: Sequence[dict[str, Any]],
    context: WriteContext,
    last_seq: int | None = None,
) -> WritePlan:
    """Lock the change counter (unless the caller holds it: ``last_seq``), read the stored records
    the batch names and decide each one."""
    business = context.business
    keys = [str(record[business.primary_key]) for record in records]
    if last_seq is None:
        last_seq = records_written.lock_change_counter(connection)
    first_seq = last_seq + 1
    stored = records_read.fetch(connection, business.code, keys)
    outcome = WriteOutcome()
    updates: list[dict[str, Any]] = []
    missing: list[RecordFault] = []
    owned: list[RecordFault] = []
    outside: list[RecordFault] = []
    invalid: list[RecordFault] = []
    held: list[HeldKey] = []
    new_records: list[dict[str, Any]] = []
    new_seqs: list[int] = []
    timestamp_field = business.timestamp_field

    for index, (key, record) in enumerate(zip(keys, records, strict=True)):
        current = stored.get(key)
        if current is not None and not accessible(context, current):
            # A record outside the caller's region (or, for an app that sees the type masked, of
            # another source it may not override) is, to the caller, a record it does not hold:
            # neither its existence, nor its region, nor its values may be told. A 02/03 finds
            # nothing; an add cannot take the key, and is refused without saying which key.
            if action is Action.ADD:
                held.append(HeldKey(key, current.region, current.source_appid))
            else:
                missing.append(RecordFault(index, key))
            continue
        if action is Action.ADD:
            if current is None:
                last_seq += 1
                new_records.append(record)
                new_seqs.append(last_seq)
                outcome.inserted += 1
                continue
            newest = max(current.updated_at, current.deleted_at or "") if current.deleted else current.updated_at
            if record[timestamp_field] < newest or (current.deleted and record[timestamp_field] == newest):
                outcome.skipped += 1
                outcome.skipped_keys.append(key)
                continue
            if not current.deleted and current.data == record:
                outcome.unchanged += 1
                continue
            new_data = record
        elif action is Action.MODIFY:
            if current is None or current.deleted:
                missing.append(RecordFault(index, key))
                continue
            if timestamp_field in record and record[timestamp_field] < current.updated_at:
                outcome.skipped += 1
                outcome.skipped_keys.append(key)
                continue
            # null clears a field; the merged record is validated in full below.
            new_data = {name: value for name, value in {**current.data, **record}.items() if value is not None}
            if timestamp_field not in record and new_data != current.data:
                # Never move the timestamp backwards (the source's clock may run ahead of ours).
                new_data[timestamp_field] = max(context.now, current.updated_at)
            if new_data == current.data:
                outcome.unchanged += 1
                continue
            problems = context.validator.violations(new_data, now=context.now)
            errors = tuple(problem.as_fault() for problem in problems if problem.severity is Severity.ERROR)
            if errors:
                invalid.append(RecordFault(index, key, errors=errors))
                continue
            if not covers(context.app.region, str(new_data[business.region_field])):
                outside.append(RecordFault(index, key, region=new_data[business.region_field]))
                continue
        else:
            if current is None:
                missing.append(RecordFault(index, key))
                continue
            if current.deleted:
                outcome.unchanged += 1
                continue
            new_data = current.data

        if not _may_override(context, current):
            owned.append(RecordFault(index, key, source=current.source_appid))
            continue
        last_seq += 1
        row = _row(context, key, new_data, last_seq, current.source_appid, current.region)
        if action is Action.DELETE:
            row.update(deleted=True, deleted_at=context.now, deleted_by=context.app.appid)
            outcome.deleted += 1
        else:
            outcome.updated += 1
        updates.append(row)

    error: ExchangeError | None = None
    if invalid:
        error = refusals.records_invalid_after_change(invalid)
    elif held:
        error = refusals.keys_held_elsewhere()
    elif outside:
        error = refusals.records_outside_region(outside, context.app.region)
    elif missing:
        error = refusals.records_not_found(missing, business.primary_key)
    elif owned:
        error = refusals.records_of_another_source(owned, business.code)
    new = records_written.NewRecords(
        business.code, business.primary_key, business.region_field, business.timestamp_field, new_records, new_seqs,
        context.app.appid, context.now,
    )  # fmt: skip
    return WritePlan(
        outcome, new, updates, last_seq, error, tuple(held), first_seq, action, context.app.appid, context.random,
        context.now,
    )  # fmt: skip


def finish(connection: Connection, plan: WritePlan) -> None:
    """Store what ``plan`` changes in stored records (its new records are inserted by the caller)."""
    records_written.update(connection, plan.updates)
    if plan.new.records or plan.updates:
        records_written.store_change_counter(connection, plan.last_seq)
        records_written.note_change(
            connection,
            plan.first_seq,
            plan.last_seq,
            appid=plan.appid,
            action=plan.action.value,
            random=plan.random,
            at=plan.now,
        )


def apply(
    connection: Connection, action: Action, records: Sequence[dict[str, Any]], context: WriteContext
) -> WriteOutcome:
    """Apply a checked batch. Raises (and so rolls back) on the first record that cannot be applied."""
    planned = plan(connection, action, records, context)
    if planned.error is not None:
        raise planned.error
    records_written.insert_new(connection, planned.new)
    finish(connection, planned)
    return planned.outcome
