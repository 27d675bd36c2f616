"""Log queries through the interface (6.3.1 d): ``POST /<service>/log``, the same envelope and
signing as the data interface, action 04.

An app reads its own entries; an app granted ``log_auditor`` reads every entry within its region
(the region of the app each entry is about). Pages go newest first, with a ``_cursor`` bound to the
conditions as for records. Every log query is itself claimed and logged like a query of records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

import orjson

from tzsb import refusals
from tzsb.audit import at_bound
from tzsb.exchange.answers import Answers
from tzsb.exchange.context import Admitted, RequestContext
from tzsb.exchange.cursors import CursorCodec
from tzsb.protocol import Action, region_prefix, success_datalist
from tzsb.store import EntryQuery, Store, interaction_log

#: Equality conditions on the entry's columns.
EQUALITY: Final = ("appid", "random", "busicode", "action", "result", "code")
CONDITIONS: Final = (*EQUALITY, "_from", "_to", "_page_size", "_cursor")
#: The columns of an entry as answered (``region`` is the node's bookkeeping, ``id`` pages).
ANSWERED: Final = (
    "id", "at", "appid", "busicode", "action", "random", "client_addr", "record_count", "result", "code",
    "message", "duration_ms", "direction",
)  # fmt: skip


def _time_bound(name: str, value: Any, end: bool) -> str:
    """A ``_from`` / ``_to`` condition as a bound on ``at``, or ``E_PARAM``."""
    bound = at_bound(value, end)
    if bound is None:
        raise refusals.query_time_malformed(name)
    return bound


class LogQueries:
    """Answers 04 requests of the log interface from the interaction log."""

    def __init__(
        self, store: Store, answers: Answers, codec: CursorCodec, page_size: int = 100, max_page_size: int = 1000
    ) -> None:
        self.store = store
        self.answers = answers
        self.codec = codec
        self.page_size = page_size
        self.max_page_size = max_page_size

    def execute(self, context: RequestContext, admitted: Admitted) -> bytes:
        if admitted.action is not Action.QUERY:
            raise refusals.log_query_only(admitted.action.value)
        if len(context.records) != 1:
            raise refusals.query_needs_one_condition()
        query, page_size, fingerprint = self._plan(context.records[0], admitted)
        with self.store.read() as connection:
            rows = interaction_log.select_entries(connection, query)
        page = rows[:page_size]
        entries = [{name: row[name] for name in ANSWERED} for row in page]
        context.records_out = len(entries)
        next_cursor = (
            self.codec.encode({"m": "l", "f": fingerprint, "p": page[-1]["id"]}) if len(rows) > page_size else None
        )
        message = (
            f"查询成功，返回日志 {len(entries)} 条 / OK: {len(entries)} log entr{'y' if len(entries) == 1 else 'ies'}"
        )
        response = self.answers.encode(context, success_datalist(message, entries, next_cursor=next_cursor))
        self.store.write_grouped(lambda connection: self.answers.claim_and_log(connection, context, response, message))
        return response

    def _plan(self, conditions: Mapping[str, Any], admitted: Admitted) -> tuple[EntryQuery, int, str]:
        app = admitted.app
        for name in conditions:
            if name not in CONDITIONS:
                raise refusals.log_condition_unknown(name, CONDITIONS)
        equals: dict[str, str] = {}
        for name in EQUALITY:
            if name in conditions:
                value = conditions[name]
                if not isinstance(value, str) or not value:
                    raise refusals.log_condition_not_text(name)
                equals[name] = value
        if not app.log_auditor and equals.get("appid", app.appid) != app.appid:
            raise refusals.log_of_another_app(equals["appid"])
        at_from = _time_bound("_from", conditions["_from"], False) if "_from" in conditions else None
        at_to = _time_bound("_to", conditions["_to"], True) if "_to" in conditions else None
        page_size = conditions.get("_page_size", self.page_size)
        if isinstance(page_size, str) and page_size.isascii() and page_size.isdigit():
            page_size = int(page_size)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= self.max_page_size:
            raise refusals.page_size_malformed(self.max_page_size)
        filters = {name: value for name, value in conditions.items() if name not in ("_page_size", "_cursor")}
        fingerprint = hashlib.sha256(
            orjson.dumps(["log", app.appid, filters], option=orjson.OPT_SORT_KEYS)
        ).hexdigest()[:32]
        before_id: int | None = None
        if "_cursor" in conditions:
            payload = self.codec.decode(conditions["_cursor"], "_cursor")
            position = payload.get("p")
            if (
                payload.get("m") != "l"
                or payload.get("f") != fingerprint
                or isinstance(position, bool)
                or not isinstance(position, int)
            ):
                raise refusals.cursor_of_other_conditions()
            before_id = position
        query = EntryQuery(
            # Its own entries, or (an auditor) every entry of its region.
            appid=equals.get("appid") if app.log_auditor else app.appid,
            region_prefix=region_prefix(app.region) if app.log_auditor else None,
            random=equals.get("random"),
            busicode=equals.get("busicode"),
            action=equals.get("action"),
            result=equals.get("result"),
            code=equals.get("code"),
            at_from=at_from,
            at_to=at_to,
            before_id=before_id,
            limit=page_size + 1,
        )
        return query, page_size, fingerprint
