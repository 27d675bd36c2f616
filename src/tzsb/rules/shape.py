"""Record-shape checks: what a batch must look like before its records mean anything.

- one primary key at most once per batch (``duplicate_key``; also part of every validated batch);
- a 02 modify names each record by its primary key (:func:`modify_faults`);
- a 03 delete names each record by its primary key and nothing else (:func:`delete_faults`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Final

from tzsb.catalog import BusinessType
from tzsb.errors import FieldFault, RecordFault
from tzsb.rules import required

#: A primary key sent twice in one batch.
DUPLICATE_KEY: Final = "duplicate_key"
#: A key of a record that is not a data element of its business type (or, in a delete, not the key).
UNKNOWN_FIELD: Final = "unknown_field"


def duplicate_key_message(key: str, first_index: int) -> str:
    """The ``duplicate_key`` message: ``key`` was first sent as record ``first_index`` of the batch."""
    return (
        f"主键 {key} 与第 {first_index} 条重复，同一批次中每条记录只能出现一次 / "
        f"primary key {key} repeats record {first_index}; send each record once per batch"
    )


def modify_faults(
    records: Sequence[Mapping[str, Any]], business: BusinessType, faults: Sequence[RecordFault]
) -> list[RecordFault]:
    """The faults of a 02 modify: ``faults`` (the validator's) plus a ``required`` error on the
    primary key of every record that does not name one.

    The key error comes first among that record's errors, unless one on the key field is already
    there. Records are in batch order.

    Args:
        records: The batch as received.
        business: Its business type.
        faults: The validator's error faults for the batch (``validate_batch(records, partial=True)``).

    Returns:
        One fault per record with errors, sorted by index.
    """
    key_field = business.primary_key
    by_index = {fault.index: fault for fault in faults}
    spec = business.field(key_field)
    name = spec.name if spec is not None else key_field
    error = FieldFault(
        key_field,
        required.RULE_ID,
        f"{name}（{key_field}）为必填项：修改须按主键指定记录 / {key_field} is required to name the record",
    )
    for index, record in enumerate(records):
        key = record.get(key_field)
        if isinstance(key, str) and key.strip():
            continue
        known = by_index.get(index)
        if known is None:
            by_index[index] = RecordFault(index, None, errors=(error,))
            continue
        errors = known.errors or ()
        if not any(item.field == key_field for item in errors):
            by_index[index] = dataclasses.replace(known, errors=(error, *errors))
    return [by_index[index] for index in sorted(by_index)]


def delete_faults(records: Sequence[Mapping[str, Any]], business: BusinessType) -> list[RecordFault]:
    """The faults of a 03 delete: each record names one record by its primary key and holds nothing else.

    Args:
        records: The batch as received.
        business: Its business type.

    Returns:
        One fault per record with errors, in batch order.
    """
    key_field = business.primary_key
    details: list[RecordFault] = []
    first_index: dict[str, int] = {}
    for index, record in enumerate(records):
        errors: list[FieldFault] = []
        key = record.get(key_field)
        if isinstance(key, str) and key in first_index:
            errors.append(FieldFault(key_field, DUPLICATE_KEY, duplicate_key_message(key, first_index[key])))
        elif isinstance(key, str):
            first_index[key] = index
        if not isinstance(key, str) or not key.strip():
            errors.append(
                FieldFault(
                    key_field,
                    required.RULE_ID,
                    f"删除须按主键 {key_field} 指定记录 / {key_field} is required to name the record to delete",
                )
            )
        for name in record:
            if name != key_field:
                errors.append(
                    FieldFault(
                        name,
                        UNKNOWN_FIELD,
                        f"删除只接受主键 {key_field}，请去掉 {name} / a delete takes only {key_field}; remove {name}",
                    )
                )
        if errors:
            details.append(RecordFault(index, key if isinstance(key, str) else None, errors=tuple(errors)))
    return details
