"""What an operator does to records outside the interface: hand a record to its rightful region.

An app of one region can add a record that belongs to another (a Hangzhou ID number registered
from Ningbo): its key is then held, and the rightful region's app can never add it — its adds are
refused as collisions (``tzsb app collisions`` lists them). The operator checks and reassigns the
record: its region (in the row and in the record), and its source (一数一源) when the rightful app
should own it. The change takes a change sequence like any write, so that the change feed and
upward sync carry it, and it is logged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tzsb.audit import InteractionLog, LogEntry
from tzsb.catalog import Catalog
from tzsb.clock import Clock, business_timestamp
from tzsb.errors import OperatorError
from tzsb.exchange.history import version_actions
from tzsb.exchange.masking import MASKERS
from tzsb.protocol import RESULT_SUCCESS, is_region_code
from tzsb.store import Store, records_read, records_written


@dataclass(frozen=True, slots=True)
class Reassigned:
    business: str
    key: str
    region_before: str
    region: str
    source_before: str
    source: str
    seq: int


def record_history(
    store: Store, catalog: Catalog, business: str, key: str
) -> list[tuple[records_read.RecordVersion, str]]:
    """Every version of a record this node holds, newest first, with what made it (``version_actions``):
    the operator's view, unmasked, every region. Raises ``OperatorError`` for an unknown business
    type or a key never stored."""
    if catalog.get(business) is None:
        raise OperatorError(f"business type {business} is not in this node's catalog")
    with store.read() as connection:
        found = records_read.versions(connection, business, key, limit=1_000_000)
    if not found:
        raise OperatorError(f"this node holds no {business} record with key {key}")
    return list(zip(found, version_actions(found), strict=True))


def reassign_record(
    store: Store,
    catalog: Catalog,
    clock: Clock,
    business: str,
    key: str,
    region: str,
    *,
    source: str | None = None,
    operator: str = "operator",
) -> Reassigned:
    """Move the record ``key`` of ``business`` to ``region`` (and to ``source``, if given); logged.

    Raises ``OperatorError`` for an unknown business type, a malformed region or a key this node
    does not hold.
    """
    started = time.perf_counter()
    business_type = catalog.get(business)
    if business_type is None:
        raise OperatorError(f"business type {business} is not in this node's catalog")
    if not is_region_code(region):
        raise OperatorError(f"{region} is not a 6-digit GB/T 2260 region code")
    now = clock.now()
    with store.write() as connection:
        last_seq = records_written.lock_change_counter(connection)
        stored = records_read.fetch(connection, business, [key]).get(key)
        if stored is None:
            raise OperatorError(f"this node holds no {business} record with key {key}")
        data = {**stored.data, business_type.region_field: region}
        new_source = source or stored.source_appid
        records_written.hand_over(
            connection,
            business,
            key,
            region=region,
            data=data,
            source_appid=new_source,
            changed_by=operator,
            changed_at=business_timestamp(now),
            seq=last_seq + 1,
        )
        records_written.store_change_counter(connection, last_seq + 1)
        records_written.note_change(
            connection,
            last_seq + 1,
            last_seq + 1,
            appid=operator,
            action="reassign",
            random="",
            at=business_timestamp(now),
        )
        # The log names the key as a masked answer would: the log is read by more people than the records.
        spec = business_type.field(business_type.primary_key)
        shown = MASKERS[spec.mask or "all"](key) if spec is not None and spec.sensitive else key
        message = (
            f"操作员 {operator} 将 {business} 记录 {shown} 由 {stored.region}（{stored.source_appid}）转移至 "
            f"{region}（{new_source}） / operator {operator} reassigned {business} record {shown} from "
            f"{stored.region} ({stored.source_appid}) to {region} ({new_source})"
        )
        InteractionLog(store).append(
            connection,
            LogEntry(
                at=now.isoformat(timespec="milliseconds"),
                appid=new_source,
                busicode="",
                action="",
                random="",
                client_addr="(operator)",
                record_count=1,
                result=RESULT_SUCCESS,
                code="",
                message=message,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            ),
        )
    return Reassigned(business, key, stored.region, region, stored.source_appid, new_source, last_seq + 1)
