"""Turn a 04 request's conditions into a ``RecordQuery``, and its results into a page."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import orjson

from tzsb.catalog import BusinessType
from tzsb.errors import ErrorCode, ExchangeError
from tzsb.exchange.cursors import CursorCodec
from tzsb.protocol.regions import covers, is_region_code, region_prefix
from tzsb.store.records import RecordQuery, StoredRecord

CONTROL_KEYS: Final = frozenset(
    {"_region", "_updated_from", "_updated_to", "_since", "_page_size", "_cursor", "_include_deleted"}
)
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
FEED_START: Final = "0"


def _param_error(zh: str, en: str) -> ExchangeError:
    return ExchangeError(ErrorCode.PARAM, zh, en)


def _region_error(code: str, scope: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.REGION,
        f"查询区域 {code} 超出本应用的授权区域 {scope}，请在授权区域内查询",
        f"Region {code} is outside this app's region {scope}; query inside your region",
    )


@dataclass(frozen=True, slots=True)
class QueryPlan:
    query: RecordQuery
    page_size: int
    #: Hash of the conditions (without paging keys): a page cursor is only valid for the same ones.
    fingerprint: str
    feed: bool


def _time_bound(name: str, value: Any, end_of_day: bool) -> str:
    if isinstance(value, str):
        if _DATETIME.fullmatch(value):
            return value
        if _DATE.fullmatch(value):
            return value + (" 23:59:59" if end_of_day else " 00:00:00")
    raise _param_error(
        f"{name} 应为 YYYY-MM-DD 或 YYYY-MM-DD HH:MM:SS", f"{name} must be YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"
    )


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
    would tell it whether a given ID number or phone number is on record.
    """
    equals: dict[str, str] = {}
    key: str | None = None
    region: str | None = None
    prefixes = [region_prefix(scope)]
    for name, value in conditions.items():
        if name in CONTROL_KEYS:
            continue
        if name.startswith("_"):
            raise _param_error(
                f"未知的查询控制参数 {name}，可用：{', '.join(sorted(CONTROL_KEYS))}",
                f"Unknown query control {name}; use one of {', '.join(sorted(CONTROL_KEYS))}",
            )
        if business.field(name) is None:
            raise _param_error(
                f"查询字段 {name} 不是 {business.code} 的数据元", f"{name} is not a data element of {business.code}"
            )
        if not isinstance(value, str) or not value:
            raise _param_error(f"查询条件 {name} 的值必须是非空字符串", f"Condition {name} must be a non-empty string")
        spec = business.field(name)
        if masked and spec is not None and spec.sensitive:
            raise ExchangeError(
                ErrorCode.FORBIDDEN,
                f"{spec.name}（{name}）是敏感字段，本应用只能收到脱敏数据，不能以其作为查询条件",
                f"{name} is a sensitive field; an app that receives it masked may not query by it",
            )
        if name == business.primary_key:
            key = value
        elif name == business.region_field:
            if not is_region_code(value):
                raise _param_error(f"{name} 应为 6 位行政区划代码", f"{name} must be a 6-digit region code")
            if not covers(scope, value):
                raise _region_error(value, scope)
            region = value
        else:
            equals[name] = value

    if "_region" in conditions:
        wanted = conditions["_region"]
        if not isinstance(wanted, str) or not is_region_code(wanted):
            raise _param_error("_region 应为 6 位行政区划代码", "_region must be a 6-digit region code")
        if not covers(scope, wanted):
            raise _region_error(wanted, scope)
        prefixes.append(region_prefix(wanted))

    updated_from = (
        _time_bound("_updated_from", conditions["_updated_from"], False) if "_updated_from" in conditions else None
    )
    updated_to = _time_bound("_updated_to", conditions["_updated_to"], True) if "_updated_to" in conditions else None

    include_deleted = conditions.get("_include_deleted", False)
    if not isinstance(include_deleted, bool):
        raise _param_error("_include_deleted 应为 true 或 false", "_include_deleted must be true or false")

    page_size = conditions.get("_page_size", default_page_size)
    if isinstance(page_size, str) and page_size.isdigit() and page_size.isascii():
        page_size = int(page_size)
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= max_page_size:
        raise _param_error(
            f"_page_size 应为 1 到 {max_page_size} 之间的整数",
            f"_page_size must be a whole number from 1 to {max_page_size}",
        )

    filters = {name: value for name, value in conditions.items() if name not in ("_page_size", "_cursor", "_since")}
    fingerprint = hashlib.sha256(
        orjson.dumps([business.code, scope, filters], option=orjson.OPT_SORT_KEYS)
    ).hexdigest()[:32]

    since: int | None = None
    after: tuple[str, str] | tuple[int] | None = None
    if "_since" in conditions:
        if "_cursor" in conditions:
            raise _param_error(
                "_since 与 _cursor 不能同时使用：增量拉取请用上次返回的 next_since 作为 _since",
                "Use _since or _cursor, not both: page a change feed with next_since as _since",
            )
        token = conditions["_since"]
        if token == FEED_START:
            since = 0
        else:
            payload = codec.decode(token, "_since")
            if payload.get("m") != "s" or payload.get("b") != business.code or not isinstance(payload.get("p"), int):
                raise _param_error(
                    '_since 不属于本业务类型的增量游标，请使用本业务上次返回的 next_since 或 "0"',
                    '_since is not a change cursor of this business type; use its last next_since or "0"',
                )
            since = payload["p"]
    elif "_cursor" in conditions:
        payload = codec.decode(conditions["_cursor"], "_cursor")
        position = payload.get("p")
        if (
            payload.get("m") != "k"
            or payload.get("f") != fingerprint
            or not isinstance(position, list)
            or len(position) != 2
            or not all(isinstance(part, str) for part in position)
        ):
            raise _param_error(
                "_cursor 与本次查询条件不符，翻页时请保持其余条件不变",
                "_cursor belongs to other conditions; keep every other condition unchanged while paging",
            )
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
    )
    return QueryPlan(query=query, page_size=page_size, fingerprint=fingerprint, feed=since is not None)


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
    return {"next_cursor": codec.encode({"m": "k", "f": plan.fingerprint, "p": [last_row.region, last_row.key]})}


def next_query(plan: QueryPlan, rows: list[StoredRecord]) -> RecordQuery | None:
    """The query the caller's next page request will plan to (from the token ``page_extras`` gives),
    or None when this page is the last."""
    if len(rows) <= plan.page_size:
        return None
    last = rows[plan.page_size - 1]
    if plan.feed:
        return replace(plan.query, since=last.seq, after=None)
    return replace(plan.query, after=(last.region, last.key))


def render(rows: list[StoredRecord], plan: QueryPlan) -> list[Any]:
    """The records of a page; tombstones (and deleted rows asked for) carry ``_deleted: true``.

    Rows selected raw become ``orjson.Fragment`` s: their stored compact text goes out unparsed.
    """
    page = rows[: plan.page_size]
    show_deleted = plan.feed or plan.query.include_deleted
    rendered: list[Any] = []
    for row in page:
        if show_deleted and row.deleted:
            rendered.append({**row.data, "_deleted": True, "_deleted_at": row.deleted_at})
        elif row.text is not None:
            rendered.append(orjson.Fragment(row.text))
        else:
            rendered.append(row.data)
    return rendered
