"""Actions 01–03 on the node's own store, inside one transaction: all records or none."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from tzsb.catalog import BusinessType
from tzsb.errors import ErrorCode, ExchangeError
from tzsb.protocol.codes import Action
from tzsb.protocol.regions import covers
from tzsb.registry import App
from tzsb.rules import RecordValidator
from tzsb.rules.base import Severity
from tzsb.store import records as record_store
from tzsb.store.records import StoredRecord


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


def _region_error(indexes: list[dict[str, Any]], scope: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.REGION,
        f"有 {len(indexes)} 条记录的所属区域超出本应用的授权区域 {scope}，整批未写入",
        f"{len(indexes)} record(s) lie outside this app's region {scope}; nothing was written",
        indexes,
    )


def _not_found(missing: list[dict[str, Any]], business: BusinessType) -> ExchangeError:
    return ExchangeError(
        ErrorCode.NOTFOUND,
        f"有 {len(missing)} 条记录在本节点不存在（{business.primary_key}），整批未写入；新记录请用 01 新增",
        f"{len(missing)} record(s) do not exist here ({business.primary_key}); nothing was written. "
        "Use action 01 to add new records",
        missing,
    )


def _conflict(owned: list[dict[str, Any]], business: BusinessType) -> ExchangeError:
    return ExchangeError(
        ErrorCode.CONFLICT,
        f"有 {len(owned)} 条记录由其他数据源提供（一数一源），本应用无权覆盖 {business.code}，整批未写入；"
        "如确需接管，请联系节点管理员授予 override",
        f"{len(owned)} record(s) were supplied by another source (one record, one source) and this app may not "
        f"override {business.code}; nothing was written. Ask the node operator for an override grant",
        owned,
    )


def check_regions(records: Sequence[dict[str, Any]], business: BusinessType, scope: str) -> None:
    """Every record's region field must lie inside ``scope`` (``E_REGION`` lists those that don't)."""
    field_name = business.region_field
    # A batch holds few distinct regions: test each once, then pick out the records outside.
    regions = {str(record[field_name]) for record in records if field_name in record}
    foreign = {region for region in regions if not covers(scope, region)}
    if not foreign:
        return
    outside = [
        {"index": index, "key": record.get(business.primary_key), "region": record.get(field_name)}
        for index, record in enumerate(records)
        if field_name in record and str(record[field_name]) in foreign
    ]
    if outside:
        raise _region_error(outside, scope)


def _may_override(context: WriteContext, stored: StoredRecord) -> bool:
    return stored.source_appid == context.app.appid or context.business.code in context.app.overrides


def _row(context: WriteContext, key: str, data: dict[str, Any], seq: int, source: str) -> dict[str, Any]:
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
    }


@dataclass(frozen=True, slots=True)
class WritePlan:
    """What a batch would change, decided against the stored records under the writers' lock."""

    outcome: WriteOutcome
    new: record_store.NewRecords
    #: Rows of stored records to replace (``update`` rows, with their sequences).
    updates: list[dict[str, Any]]
    last_seq: int
    #: Why the batch cannot be applied (the first of: invalid after a change, outside the caller's
    #: region, not found, another source's record), or None.
    error: ExchangeError | None


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
        last_seq = record_store.lock_change_counter(connection)
    stored = record_store.fetch(connection, business.code, keys)
    outcome = WriteOutcome()
    updates: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    owned: list[dict[str, Any]] = []
    outside: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    new_records: list[dict[str, Any]] = []
    new_seqs: list[int] = []
    timestamp_field = business.timestamp_field

    for index, (key, record) in enumerate(zip(keys, records, strict=True)):
        current = stored.get(key)
        if current is not None and not covers(context.app.region, current.region):
            # A record outside the caller's region is, to the caller, a record it does not hold:
            # neither its existence (02/03) nor its region may be told.
            if action is Action.ADD:
                outside.append({"index": index, "key": key})
            else:
                missing.append({"index": index, "key": key})
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
                missing.append({"index": index, "key": key})
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
            problems = [item for item in context.validator.violations(new_data) if item.severity is Severity.ERROR]
            if problems:
                invalid.append({"index": index, "key": key, "errors": [problem.as_dict() for problem in problems]})
                continue
            if not covers(context.app.region, str(new_data[business.region_field])):
                outside.append({"index": index, "key": key, "region": new_data[business.region_field]})
                continue
        else:
            if current is None:
                missing.append({"index": index, "key": key})
                continue
            if current.deleted:
                outcome.unchanged += 1
                continue
            new_data = current.data

        if not _may_override(context, current):
            owned.append({"index": index, "key": key, "source": current.source_appid})
            continue
        last_seq += 1
        row = _row(context, key, new_data, last_seq, current.source_appid)
        if action is Action.DELETE:
            row.update(deleted=True, deleted_at=context.now, deleted_by=context.app.appid)
            outcome.deleted += 1
        else:
            outcome.updated += 1
        updates.append(row)

    error: ExchangeError | None = None
    if invalid:
        error = ExchangeError(
            ErrorCode.VALIDATION,
            f"有 {len(invalid)} 条记录修改后未通过数据校验，整批未写入，请按 busilist 中的明细修正",
            f"{len(invalid)} record(s) fail validation after the change; nothing was written. "
            "Fix them as listed in busilist",
            invalid,
        )
    elif outside:
        error = _region_error(outside, context.app.region)
    elif missing:
        error = _not_found(missing, business)
    elif owned:
        error = _conflict(owned, business)
    new = record_store.NewRecords(
        business.code, business.primary_key, business.region_field, business.timestamp_field, new_records, new_seqs,
        context.app.appid, context.now,
    )  # fmt: skip
    return WritePlan(outcome, new, updates, last_seq, error)


def finish(connection: Connection, plan: WritePlan) -> None:
    """Store what ``plan`` changes in stored records (its new records are inserted by the caller)."""
    record_store.update(connection, plan.updates)
    if plan.new.records or plan.updates:
        record_store.store_change_counter(connection, plan.last_seq)


def apply(
    connection: Connection, action: Action, records: Sequence[dict[str, Any]], context: WriteContext
) -> WriteOutcome:
    """Apply a checked batch. Raises (and so rolls back) on the first record that cannot be applied."""
    planned = plan(connection, action, records, context)
    if planned.error is not None:
        raise planned.error
    record_store.insert_new(connection, planned.new)
    finish(connection, planned)
    return planned.outcome
