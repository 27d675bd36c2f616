"""Turn a 04 request's conditions into a ``RecordQuery``, and its results into a page."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import orjson
from stdnum.cn import ric

from tzsb import refusals
from tzsb.catalog import BusinessType
from tzsb.exchange.cursors import CursorCodec
from tzsb.protocol import covers, is_region_code, region_prefix
from tzsb.store import RecordQuery, StoredRecord

CONTROL_KEYS: Final = frozenset(
    {"_region", "_updated_from", "_updated_to", "_since", "_page_size", "_cursor", "_include_deleted"}
)
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
FEED_START: Final = "0"
#: A mainland mobile number (with or without the country code).
_MOBILE: Final = re.compile(r"(?:\+?86)?1[3-9][0-9]{9}")


def is_id_or_mobile(value: str) -> bool:
    """Whether ``value`` is a resident ID number (18 characters, GB 11643 check digit, a real date
    in digits 7–14; the place code is not checked: a code missing from a list must not let a
    probe through) or a mainland mobile number."""
    if _MOBILE.fullmatch(value):
        return True
    number = value.strip().upper()
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        return False
    if number[17] != ric.calc_check_digit(number):
        return False
    try:
        ric.get_birth_date(number)
    except ValueError:
        return False
    return True


def hides_key_order(business: BusinessType) -> bool:
    """Whether a masked answer of ``business`` must not come in key order: its key is masked (0103
    ID_NO), or may echo a masked ID number (0210/0211 CERT_NO, any type with an ID number field).
    Probe records of chosen keys, placed among masked ones, would tell the hidden digits."""
    key = business.field(business.primary_key)
    return (key is not None and key.sensitive) or business.masks_id_number


@dataclass(frozen=True, slots=True)
class QueryPlan:
    query: RecordQuery
    page_size: int
    #: Hash of the conditions (without paging keys): a page cursor is only valid for the same ones.
    fingerprint: str
    feed: bool
    #: The business type's key and region fields (a record's departure from the feed's region names both).
    key_field: str = ""
    region_field: str = ""


def _time_bound(name: str, value: Any, end_of_day: bool) -> str:
    if isinstance(value, str):
        if _DATETIME.fullmatch(value):
            return value
        if _DATE.fullmatch(value):
            return value + (" 23:59:59" if end_of_day else " 00:00:00")
    raise refusals.query_time_malformed(name)


def plan_query(
    conditions: Mapping[str, Any],
    business: BusinessType,
    scope: str,
    codec: CursorCodec,
    default_page_size: int,
    max_page_size: int,
    masked: bool = False,
) -> QueryPlan:
    """Check every condition against the catalog and the caller's region ``scope``.

    A caller who receives sensitive fields masked may not test them either: an equality condition
    would tell it whether a given ID number or phone number is on record. Nor may it test any
    field (the key included) against a value that is an ID or mobile number: a certificate number
    may be its holder's ID number, masked in answers as an echo. Its pages of a type whose key is
    (or may echo) a masked value come in write (``seq``) order, not key order (``hides_key_order``).
    """
    equals: dict[str, str] = {}
    key: str | None = None
    region: str | None = None
    prefixes = [region_prefix(scope)]
    for name, value in conditions.items():
        if name in CONTROL_KEYS:
            continue
        if name.startswith("_"):
            raise refusals.query_control_unknown(name, sorted(CONTROL_KEYS))
        if business.field(name) is None:
            raise refusals.query_field_unknown(name, business.code)
        if not isinstance(value, str) or not value:
            raise refusals.query_value_not_text(name)
        spec = business.field(name)
        if masked and spec is not None and spec.sensitive:
            raise refusals.query_by_sensitive_field(name, spec.name)
        if masked and spec is not None and is_id_or_mobile(value):
            raise refusals.query_by_sensitive_value(name, spec.name)
        if name == business.primary_key:
            key = value
        elif name == business.region_field:
            if not is_region_code(value):
                raise refusals.query_region_malformed(name)
            if not covers(scope, value):
                raise refusals.query_region_outside(value, scope)
            region = value
        else:
            equals[name] = value

    if "_region" in conditions:
        wanted = conditions["_region"]
        if not isinstance(wanted, str) or not is_region_code(wanted):
            raise refusals.query_region_malformed("_region")
        if not covers(scope, wanted):
            raise refusals.query_region_outside(wanted, scope)
        prefixes.append(region_prefix(wanted))

    updated_from = (
        _time_bound("_updated_from", conditions["_updated_from"], False) if "_updated_from" in conditions else None
    )
    updated_to = _time_bound("_updated_to", conditions["_updated_to"], True) if "_updated_to" in conditions else None

    include_deleted = conditions.get("_include_deleted", False)
    if not isinstance(include_deleted, bool):
        raise refusals.include_deleted_malformed()

    page_size = conditions.get("_page_size", default_page_size)
    if isinstance(page_size, str) and page_size.isdigit() and page_size.isascii():
        page_size = int(page_size)
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= max_page_size:
        raise refusals.page_size_malformed(max_page_size)

    filters = {name: value for name, value in conditions.items() if name not in ("_page_size", "_cursor", "_since")}
    fingerprint = hashlib.sha256(
        orjson.dumps([business.code, scope, filters], option=orjson.OPT_SORT_KEYS)
    ).hexdigest()[:32]

    by_seq = masked and hides_key_order(business)
    since: int | None = None
    after: tuple[str, str] | tuple[int] | None = None
    if "_since" in conditions:
        if "_cursor" in conditions:
            raise refusals.since_with_cursor()
        token = conditions["_since"]
        if token == FEED_START:
            since = 0
        else:
            payload = codec.decode(token, "_since")
            if payload.get("m") != "s" or payload.get("b") != business.code or not isinstance(payload.get("p"), int):
                raise refusals.since_of_another_business()
            since = payload["p"]
    elif "_cursor" in conditions:
        payload = codec.decode(conditions["_cursor"], "_cursor")
        position = payload.get("p")
        if by_seq:
            # "q" (a seq-ordered page) and "k" (a key-ordered one) never stand in for each other.
            if (
                payload.get("m") != "q"
                or payload.get("f") != fingerprint
                or not isinstance(position, int)
                or isinstance(position, bool)
            ):
                raise refusals.cursor_of_other_conditions()
            after = (position,)
        elif (
            payload.get("m") != "k"
            or payload.get("f") != fingerprint
            or not isinstance(position, list)
            or len(position) != 2
            or not all(isinstance(part, str) for part in position)
        ):
            raise refusals.cursor_of_other_conditions()
        else:
            after = (position[0], position[1])

    query = RecordQuery(
        business=business.code,
        region_prefixes=tuple(prefixes),
        key=key,
        region=region,
        equals=equals,
        updated_from=updated_from,
        updated_to=updated_to,
        include_deleted=include_deleted,
        since=since,
        after=after,
        limit=page_size + 1,
        by_seq=by_seq,
    )
    return QueryPlan(
        query=query,
        page_size=page_size,
        fingerprint=fingerprint,
        feed=since is not None,
        key_field=business.primary_key,
        region_field=business.region_field,
    )


def page_extras(plan: QueryPlan, rows: list[StoredRecord], codec: CursorCodec) -> dict[str, Any]:
    """``next_cursor`` (and for a change feed ``next_since`` / ``has_more``) for the response."""
    more = len(rows) > plan.page_size
    page = rows[: plan.page_size]
    if plan.feed:
        last = page[-1].seq if page else plan.query.since
        return {
            "next_cursor": None,
            "next_since": codec.encode({"m": "s", "b": plan.query.business, "p": last}),
            "has_more": more,
        }
    if not more:
        return {"next_cursor": None}
    last_row = page[-1]
    if plan.query.by_seq:
        return {"next_cursor": codec.encode({"m": "q", "f": plan.fingerprint, "p": last_row.seq})}
    return {"next_cursor": codec.encode({"m": "k", "f": plan.fingerprint, "p": [last_row.region, last_row.key]})}


def next_query(plan: QueryPlan, rows: list[StoredRecord]) -> RecordQuery | None:
    """The query the caller's next page request will plan to (from the token ``page_extras`` gives),
    or None when this page is the last."""
    if len(rows) <= plan.page_size:
        return None
    last = rows[plan.page_size - 1]
    if plan.feed:
        return replace(plan.query, since=last.seq, after=None)
    if plan.query.by_seq:
        return replace(plan.query, after=(last.seq,))
    return replace(plan.query, after=(last.region, last.key))


def render(rows: list[StoredRecord], plan: QueryPlan) -> list[Any]:
    """The records of a page; tombstones (and deleted rows asked for) carry ``_deleted: true``.

    A record that left the feed's region comes as a tombstone of its key and the region it left,
    with ``_moved: true`` — gone from the caller's region, and nothing of where it went.

    Rows selected raw become ``orjson.Fragment`` s: their stored compact text goes out unparsed; so do
    rows selected with their masked copy (``masked_text``), already masked.
    """
    page = rows[: plan.page_size]
    show_deleted = plan.feed or plan.query.include_deleted
    rendered: list[Any] = []
    for row in page:
        if row.departed:
            rendered.append({
                plan.key_field: row.key,
                plan.region_field: row.region,
                "_deleted": True,
                "_deleted_at": row.deleted_at,
                "_moved": True,
            })  # fmt: skip
        elif show_deleted and row.deleted:
            rendered.append({**row.data, "_deleted": True, "_deleted_at": row.deleted_at})
        elif row.text is not None:
            rendered.append(orjson.Fragment(row.text))
        elif row.masked_text is not None:
            rendered.append(orjson.Fragment(row.masked_text))
        else:
            rendered.append(row.data)
    return rendered
