"""One pass of a link: send this node's changes up, or pull the parent's down — nothing lost,
nothing twice, whatever fails in between.

Up (6.1 f, 6.3.1 a): the changes of each business type after the link's acknowledged position
in the change feed, in sequence order, a page at a time: live records as 01 (the whole current
record; the parent keeps the newer by timestamp), tombstones as 03. The position moves only after
the parent's verified ``0001`` for every record of the page (or their parking), in one
transaction with the parked records. Each batch's ``random`` is derived from the link and what the
batch holds, so a batch sent again after its answer was lost is a replay the parent answers from
its first answer. Records the parent refuses are parked with its reason and sent again when they
change; an ``E_LIMIT`` halves the batch (7.3).

Down: a 04 change-feed query per business type (``_since``), applied here through the same
validation and upsert as a caller's add, under the link's identity; the cursor moves only after
the local commit.

Failures (7.4): anything that is not about particular records fails the attempt. Attempts are
retried with back-off; after ``attempts`` consecutive failures the link is marked failed and waits
(24 hours by default) or ``tzsb sync retry``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import httpx
import orjson

from tzsb.audit import InteractionLog, LogEntry
from tzsb.catalog import BusinessType, Catalog
from tzsb.clock import BEIJING, Clock
from tzsb.errors import ErrorCode
from tzsb.exchange import PulledWrites
from tzsb.protocol import RESULT_FAILURE, RESULT_SUCCESS, Action
from tzsb.registry import App
from tzsb.store import Store, leases, records_read
from tzsb.store import links as stored_links
from tzsb.sync.links import IDENTITY_PREFIX, Link, LinkRegistry, due
from tzsb.sync.transport import Answer, LinkFailure, ParentSession, derived_random, peer_of

logger = logging.getLogger(__name__)

#: Refusals about particular records: those are parked, the rest of the batch goes on.
RECORD_CODES: Final = frozenset({ErrorCode.VALIDATION, ErrorCode.REGION, ErrorCode.CONFLICT, ErrorCode.NOTFOUND})
#: A page of the feed read at a time on an upward link holds at most this many records.
FEED_PAGE: Final = 1000
#: Where a sync process may be told to kill itself (``TZSB_SYNC_FAULT``), for the crash tests.
FAULT_POINTS: Final = frozenset({"before_send", "after_answer", "before_position", "pull_received", "pull_applied"})
FAULT_VARIABLE: Final = "TZSB_SYNC_FAULT"

#: (link, business type, records done, records to do or None)
Progress = Callable[[str, str, int, int | None], None]


@dataclass(slots=True)
class LinkReport:
    """What one pass of a link did."""

    link: str
    direction: str
    state: str = "ok"
    #: Up: records the parent acknowledged (tombstones included). Down: records changed here.
    records: int = 0
    deleted: int = 0
    parked: int = 0
    batches: int = 0
    attempts: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """``tzsb sync status``: one link's state and how far behind it is."""

    link: Link
    #: Up: changes waiting to be sent. Down: None (the parent knows).
    lag_changes: int | None
    #: Up: seconds since the oldest waiting change was made. Down: since the last success.
    lag_seconds: float | None
    parked: int

    def as_dict(self) -> dict[str, Any]:
        described = self.link.describe()
        return {**described, "lag_changes": self.lag_changes, "lag_seconds": self.lag_seconds, "parked": self.parked}


@dataclass(frozen=True, slots=True)
class _Item:
    """One record on its way: its key, its change sequence, what is sent (or applied) for it (an
    object, or the stored JSON text as an ``orjson.Fragment``), and whether it is a tombstone."""

    key: str
    seq: int
    record: Any
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class _Verdict:
    ok: bool
    code: str = ""
    message: str = ""
    details: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class _Delivery:
    delivered: list[_Item] = field(default_factory=list)
    parked: list[tuple[_Item, str, str]] = field(default_factory=list)
    #: 03 only: records the other side does not hold at all.
    missing: list[_Item] = field(default_factory=list)


class LeaseLost(Exception):
    """Another process holds (or took over) the link: this one stops without counting a failure."""


class SyncRunner:
    """Runs links: a pass now (``tzsb sync run``), a full re-send, or the schedule's due links."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        links: LinkRegistry,
        pulled: PulledWrites,
        log: InteractionLog,
        clock: Clock,
        *,
        attempts: int = 3,
        backoff_seconds: float = 30.0,
        failure_wait_seconds: float = 86400.0,
        lease_seconds: float = 300.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.links = links
        self.pulled = pulled
        self.log = log
        self.clock = clock
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.failure_wait_seconds = failure_wait_seconds
        self.lease_seconds = lease_seconds
        self.transport = transport
        self.sleep = sleep
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:100]
        fault = os.environ.get(FAULT_VARIABLE, "")
        self._fault = fault if fault in FAULT_POINTS else None

    # -- what operators ask for -----------------------------------------------------------------

    def run(self, name: str | None = None, *, progress: Progress | None = None) -> list[LinkReport]:
        """One pass of one link (enabled or not: the operator asked), or of every enabled link."""
        chosen = (
            [self.links.require(name)] if name is not None else [link for link in self.links.list() if link.enabled]
        )
        return [self.run_link(link, progress=progress) for link in chosen]

    def run_due(self, progress: Progress | None = None) -> list[LinkReport]:
        """One pass of each link the schedule says is due now."""
        now = self.clock.now()
        return [self.run_link(link, progress=progress) for link in self.links.list() if due(link, now)]

    def full(self, name: str, *, progress: Progress | None = None) -> LinkReport:
        """Send (or pull) everything the link carries again (全量), from the start of the feed.

        A new generation of derived randoms: the parent has claimed the earlier ones, and the
        records it holds are replaced only where these are newer (or equal and unchanged)."""
        link = self.links.require(name)
        with self._lease(link), self.store.write() as connection:
            stored_links.reset_positions(connection, link.name)
            stored_links.clear_parked(connection, link.name)
            stored_links.update(connection, link.name, generation=link.generation + 1, updated_at=self._now_text())
        return self.run_link(self.links.require(name), progress=progress)

    def retry(self, name: str) -> Link:
        """End a failed link's wait now: the next pass runs it with a fresh count of attempts."""
        link = self.links.require(name)
        with self.store.write() as connection:
            stored_links.update(
                connection, link.name, state="idle", failures=0, wait_until=None, updated_at=self._now_text()
            )
        return self.links.require(name)

    def status(self) -> list[LinkStatus]:
        found: list[LinkStatus] = []
        now = self.clock.now()
        with self.store.read() as connection:
            parked = stored_links.parked_counts(connection)
            for link in self.links.list():
                lag_changes: int | None = None
                lag_seconds: float | None = None
                if link.direction == "up":
                    positions = stored_links.positions(connection, link.name)
                    lag_changes = 0
                    oldest: list[str] = []
                    for business in link.businesses:
                        after = positions[business].seq if business in positions else 0
                        lag_changes += records_read.count_changes_to_send(
                            connection, business, after, not_changed_by=IDENTITY_PREFIX
                        )
                        first = records_read.oldest_change_to_send(
                            connection, business, after, not_changed_by=IDENTITY_PREFIX
                        )
                        if first is not None:
                            oldest.append(first)
                    lag_seconds = _seconds_since(min(oldest), now) if oldest else 0.0
                elif link.last_success_at is not None:
                    lag_seconds = max(0.0, (now - datetime.fromisoformat(link.last_success_at)).total_seconds())
                found.append(LinkStatus(link, lag_changes, lag_seconds, parked.get(link.name, 0)))
        return found

    def parked(self, name: str, limit: int = 1000) -> list[stored_links.Parked]:
        link = self.links.require(name)
        with self.store.read() as connection:
            return stored_links.parked(connection, link.name, limit)

    # -- one link -------------------------------------------------------------------------------

    def run_link(self, link: Link, *, progress: Progress | None = None) -> LinkReport:
        """One pass of ``link`` with its retries; never raises for the link's own failures. A failed
        link still waiting (7.4) is not run: ``tzsb sync retry`` ends the wait."""
        report = LinkReport(link.name, link.direction)
        if (
            link.state == "failed"
            and link.wait_until is not None
            and self.clock.now() < datetime.fromisoformat(link.wait_until)
        ):
            report.state = "failed"
            retry = f"tzsb sync retry --link {link.name}"
            report.error = (
                f"链路失败后等待至 {link.wait_until}（{link.last_error}）；立即重试：{retry} / "
                f"failed, waiting until {link.wait_until} ({link.last_error}); to try now: {retry}"
            )
            return report
        try:
            with self._lease(link):
                self._attempts(link, report, progress)
        except LeaseLost as lost:
            report.state = "busy"
            report.error = str(lost)
        return report

    def _attempts(self, link: Link, report: LinkReport, progress: Progress | None) -> None:
        # Each pass starts a fresh count: one that ends failed waits (7.4), and the pass after the
        # wait has its three attempts again.
        failures = 0
        while True:
            report.attempts += 1
            self._update(link, last_attempt_at=self._now_text())
            try:
                with ParentSession(link, self.transport) as session:
                    if link.direction == "up":
                        self._push(link, session, report, progress)
                    else:
                        self._pull(link, session, report, progress)
            except LinkFailure as failure:
                failures += 1
                report.error = failure.message
                logger.warning("sync link %s failed (attempt %d): %s", link.name, failures, failure)
                if failures >= self.attempts:
                    wait_until = self.clock.now() + timedelta(seconds=self.failure_wait_seconds)
                    report.state = "failed"
                    self._update(
                        link,
                        state="failed",
                        failures=failures,
                        wait_until=wait_until.isoformat(timespec="seconds"),
                        last_error=failure.message,
                    )
                    return
                self._update(link, state="retrying", failures=failures, last_error=failure.message)
                self.sleep(self.backoff_seconds * 2 ** (failures - 1))
                continue
            report.state = "ok"
            report.error = None
            self._update(
                link, state="ok", failures=0, wait_until=None, last_error=None, last_success_at=self._now_text()
            )
            return

    # -- up ---------------------------------------------------------------------------------------

    def _push(self, link: Link, session: ParentSession, report: LinkReport, progress: Progress | None) -> None:
        batch_limit = [link.max_records]
        for business in link.businesses:
            business_type = self._business(business)
            with self.store.read() as connection:
                stored = stored_links.positions(connection, link.name).get(business)
                position = stored.seq if stored is not None else 0
                total = (
                    records_read.count_changes_to_send(connection, business, position, not_changed_by=IDENTITY_PREFIX)
                    if progress is not None
                    else None
                )
            done = 0
            # The next page is read while the parent handles the current one (the feed only grows
            # past the current page's last change, so reading ahead cannot miss one).
            with ThreadPoolExecutor(1, thread_name_prefix="tzsb-sync-feed") as reader:
                ahead = reader.submit(self._page, business, position)
                while True:
                    rows = ahead.result()
                    if not rows:
                        break
                    ahead = reader.submit(self._page, business, rows[-1].seq)
                    self._push_page(link, session, business_type, rows, batch_limit, report)
                    position = rows[-1].seq
                    done += len(rows)
                    if progress is not None:
                        progress(link.name, business, done, total)

    def _page(self, business: str, after_seq: int) -> list[_Item]:
        """The next page of the upward feed: each change's record as the store's JSON text where
        the store keeps it (spliced into the request unparsed), else as parsed."""
        with self.store.read() as connection:
            rows = records_read.changes_to_send(
                connection, business, after_seq, FEED_PAGE, not_changed_by=IDENTITY_PREFIX, raw=True
            )
        return [
            _Item(row.key, row.seq, orjson.Fragment(row.text) if row.text is not None else row.data, row.deleted)
            for row in rows
        ]

    def _push_page(
        self,
        link: Link,
        session: ParentSession,
        business_type: BusinessType,
        rows: list[_Item],
        batch_limit: list[int],
        report: LinkReport,
    ) -> None:
        """Deliver one page of changes, then move the position past it with its parked records."""
        business = business_type.code
        key_field = business_type.primary_key
        live = [row for row in rows if not row.deleted]
        gone = [row for row in rows if row.deleted]

        def send(action: Action, items: Sequence[_Item], first: int, last: int, business: str = business) -> _Verdict:
            return self._send(link, session, business, action, items, first, last, report)

        def send_again(
            action: Action, items: Sequence[_Item], first: int, last: int, business: str = business
        ) -> _Verdict:
            # Not the first batch of these records: its random must differ from that one's.
            return self._send(link, session, business, action, items, first, last, report, "again")

        added = _deliver(Action.ADD, live, send, batch_limit, link.max_bytes)
        deletes = [_Item(item.key, item.seq, {key_field: item.key}) for item in gone]
        deleted = _deliver(Action.DELETE, deletes, send, batch_limit, link.max_bytes)
        if deleted.missing:
            # The parent never held these records: give them to it, then delete them there,
            # so that it keeps the tombstones as this node does.
            by_key = {item.key: item for item in gone}
            originals = [by_key[item.key] for item in deleted.missing]
            revived = _deliver(Action.ADD, originals, send, batch_limit, link.max_bytes)
            again = [_Item(item.key, item.seq, {key_field: item.key}) for item in revived.delivered]
            second = _deliver(Action.DELETE, again, send_again, batch_limit, link.max_bytes)
            deleted.delivered += second.delivered
            deleted.parked += revived.parked + second.parked
        self._fault_point("before_position")
        parked = added.parked + deleted.parked
        delivered = added.delivered + deleted.delivered
        with self.store.write() as connection:
            stored_links.set_position(connection, link.name, business, self._now_text(), seq=rows[-1].seq)
            stored_links.unpark(connection, link.name, business, [item.key for item in delivered])
            stored_links.park(
                connection,
                link.name,
                [
                    stored_links.Parked(business, item.key, item.seq, code, message, self._now_text())
                    for item, code, message in parked
                ],
            )
        report.records += len(delivered)
        report.deleted += len(deleted.delivered)
        report.parked += len(parked)

    def _send(
        self,
        link: Link,
        session: ParentSession,
        business: str,
        action: Action,
        items: Sequence[_Item],
        first: int,
        last: int,
        report: LinkReport,
        salt: str = "",
    ) -> _Verdict:
        """Send one batch; a refusal as a verdict, a failure of the exchange as ``LinkFailure``."""
        busilist_text = orjson.dumps([item.record for item in items]).decode("utf-8")
        busicode = link.busicode(business)
        random = derived_random(link, business, action.value, first, last, _digest(busilist_text), salt)
        self._fault_point("before_send")
        answer = self._exchange(link, session, busicode, action, busilist_text, random, len(items), report)
        self._fault_point("after_answer")
        if answer.code == ErrorCode.REPLAY:
            # The parent holds a claim of this random it will not answer from (its first answer
            # expired, or it kept another request under it): send the same records under a new one.
            # Adds keep the newer record by timestamp and deletes of deleted records change nothing.
            random = derived_random(link, business, action.value, first, last, _digest(busilist_text), uuid.uuid4().hex)
            answer = self._exchange(link, session, busicode, action, busilist_text, random, len(items), report)
        return _Verdict(answer.ok, answer.code, answer.message, answer.busilist if not answer.ok else [])

    def _exchange(
        self,
        link: Link,
        session: ParentSession,
        busicode: str,
        action: Action,
        busilist_text: str,
        random: str,
        count: int,
        report: LinkReport,
    ) -> Answer:
        """One request to the parent, logged (direction out) whatever came of it."""
        # Renewed before each request: a pass over a slow parent may outlast one lease.
        self._renew(link)
        started = time.perf_counter()
        report.batches += 1
        try:
            answer = session.exchange(busicode, action.value, busilist_text, random)
        except LinkFailure as failure:
            self._log_out(link, busicode, action, random, count, RESULT_FAILURE, failure.code, failure.message, started)
            raise
        result = RESULT_SUCCESS if answer.ok else RESULT_FAILURE
        self._log_out(link, busicode, action, random, count, result, answer.code, answer.message, started)
        return answer

    # -- down -------------------------------------------------------------------------------------

    def _pull(self, link: Link, session: ParentSession, report: LinkReport, progress: Progress | None) -> None:
        identity = self._identity(link)
        page_size = min(link.max_records, 1000)
        for business in link.businesses:
            business_type = self._business(business)
            busicode = link.busicode(business)
            with self.store.read() as connection:
                stored = stored_links.positions(connection, link.name).get(business)
            token = stored.since_token if stored is not None and stored.since_token else "0"
            done = 0
            while True:
                # The child's own region, even if the parent granted the app more.
                conditions = {"_since": token, "_page_size": page_size, "_region": self.links.node.region}
                busilist_text = orjson.dumps([conditions]).decode("utf-8")
                # A query's random is fresh each time: the same token asked again later must be
                # answered afresh, not from the parent's first answer.
                answer = self._exchange(
                    link, session, busicode, Action.QUERY, busilist_text, uuid.uuid4().hex, 1, report
                )
                if not answer.ok:
                    raise LinkFailure(
                        answer.code or "refused", f"上级节点拒绝查询 / the parent refused the pull: {answer.message}"
                    )
                next_since = answer.datalist.get("next_since")
                has_more = answer.datalist.get("has_more")
                if not isinstance(next_since, str) or not next_since or not isinstance(has_more, bool):
                    raise LinkFailure(
                        "answer",
                        "上级节点的变更查询应答缺少 next_since / has_more / the parent's change-feed answer lacks "
                        "next_since or has_more",
                    )
                records = [record for record in answer.busilist if isinstance(record, dict)]
                self._fault_point("pull_received")
                self._apply_pulled(link, identity, business_type, token, records, report)
                self._fault_point("pull_applied")
                with self.store.write() as connection:
                    stored_links.set_position(connection, link.name, business, self._now_text(), since_token=next_since)
                token = next_since
                done += len(records)
                if progress is not None:
                    progress(link.name, business, done, None)
                if not has_more:
                    break

    def _apply_pulled(
        self,
        link: Link,
        identity: App,
        business: BusinessType,
        token: str,
        records: list[dict[str, Any]],
        report: LinkReport,
    ) -> None:
        key_field = business.primary_key
        live: list[_Item] = []
        gone: list[_Item] = []
        for index, record in enumerate(records):
            key = record.get(key_field)
            if not isinstance(key, str):
                continue
            clean = {name: value for name, value in record.items() if not name.startswith("_")}
            (gone if record.get("_deleted") is True else live).append(_Item(key, index, clean))
        if gone:
            with self.store.read() as connection:
                held = records_read.fetch(connection, business.code, [item.key for item in gone])
            gone = [
                _Item(item.key, item.seq, {key_field: item.key})
                for item in gone
                if item.key in held and not held[item.key].deleted
            ]
        origin = f"{IDENTITY_PREFIX}{link.name}"
        # What the local writes changed (a record pulled as it already is here changes nothing: the
        # parent's feed also returns this node's own records, sent up earlier).
        changed = {"inserted": 0, "updated": 0, "deleted": 0}

        def apply(action: Action, items: Sequence[_Item], first: int, last: int) -> _Verdict:
            batch = [item.record for item in items]
            digest = _digest(orjson.dumps(batch).decode("utf-8"))
            random = derived_random(link, "pulled", business.code, action.value, token, first, last, digest)
            datalist = self.pulled.apply(identity, link.purpose, business, action, batch, random, origin)
            ok = datalist.get("result") == RESULT_SUCCESS
            counts = datalist.get("counts")
            if ok and isinstance(counts, dict):
                for name in changed:
                    changed[name] += int(counts.get(name, 0))
            details = datalist.get("busilist") if not ok else []
            return _Verdict(ok, str(datalist.get("code") or ""), str(datalist.get("message") or ""), details or [])

        limit = [max(len(records), 1)]
        applied = _deliver(Action.ADD, live, apply, limit, None)
        deleted = _deliver(Action.DELETE, gone, apply, limit, None)
        parked = applied.parked + deleted.parked
        if parked:
            with self.store.write() as connection:
                stored_links.park(
                    connection,
                    link.name,
                    [
                        stored_links.Parked(business.code, item.key, 0, code, message, self._now_text())
                        for item, code, message in parked
                    ],
                )
        report.records += sum(changed.values())
        report.deleted += changed["deleted"]
        report.parked += len(parked)

    def _identity(self, link: Link) -> App:
        """Who pulled records are written as: the link, for the node's own region, allowed to
        replace what another source supplied (the parent's records are what flows down)."""
        businesses = frozenset(link.businesses)
        party = self.links.node
        return App(
            appid=link.identity,
            name=f"sync link {link.name}",
            region=party.region,
            busicodes=frozenset(link.busicode(code) for code in businesses),
            actions=frozenset({Action.ADD.value, Action.DELETE.value}),
            overrides=businesses,
            sign_algorithm=link.sign_algorithm,
            max_records=100_000,
            enabled=True,
            created_at=link.created_at,
            level=party.level,
            max_bytes=None,
            rate_per_minute=0,
            ip_allow=(),
            unmasked=businesses,
            require_timestamp=False,
            cert_fingerprints=(),
            secrets=("",),
        )

    # -- bookkeeping ------------------------------------------------------------------------------

    def _business(self, code: str) -> BusinessType:
        business = self.catalog.get(code)
        if business is None:
            raise LinkFailure(
                "config", f"本节点目录中没有业务类型 {code} / business type {code} is not in this node's catalog"
            )
        return business

    @contextmanager
    def _lease(self, link: Link) -> Iterator[None]:
        name = f"sync/{link.name}"
        with self.store.write() as connection:
            taken = leases.take(connection, name, self.holder, time.time(), self.lease_seconds)
            holder = None if taken else leases.holder_of(connection, name, time.time())
            if holder is not None and _dead_here(holder):
                # Its holder was killed on this host: no need to wait for the lease to run out.
                taken = leases.take_over(connection, name, holder, self.holder, time.time(), self.lease_seconds)
        if not taken:
            raise LeaseLost(
                f"链路正由其他进程同步（{holder}）/ another process is running this link ({holder}); try again later"
            )
        try:
            yield
        finally:
            with self.store.write() as connection:
                leases.release(connection, name, self.holder)

    def _renew(self, link: Link) -> None:
        with self.store.write() as connection:
            if not leases.take(connection, f"sync/{link.name}", self.holder, time.time(), self.lease_seconds):
                raise LeaseLost("另一进程接管了本链路 / another process took this link over")

    def _update(self, link: Link, **values: Any) -> None:
        with self.store.write() as connection:
            stored_links.update(connection, link.name, updated_at=self._now_text(), **values)

    def _now_text(self) -> str:
        return self.clock.now().isoformat(timespec="seconds")

    def _log_out(
        self,
        link: Link,
        busicode: str,
        action: Action,
        random: str,
        count: int,
        result: str,
        code: str,
        message: str,
        started: float,
    ) -> None:
        """One log row per exchange with the parent (direction "out"); a failure to write it is only reported."""
        entry = LogEntry(
            at=self.clock.now().isoformat(timespec="milliseconds"),
            appid=link.appid,
            busicode=busicode,
            action=action.value,
            random=random,
            client_addr=peer_of(link.url),
            record_count=count,
            result=result,
            code=code,
            message=f"同步链路 {link.name} / sync link {link.name}: {message}",
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            direction="out",
            region=self.links.node.region,
        )
        try:
            self.log.record(entry)
        except Exception:
            logger.exception("could not write the log row of a batch sent over link %s", link.name)

    def _fault_point(self, point: str) -> None:
        if self._fault == point:
            os.kill(os.getpid(), signal.SIGKILL)


def _deliver(
    action: Action,
    items: Sequence[_Item],
    send: Callable[[Action, Sequence[_Item], int, int], _Verdict],
    batch_limit: list[int],
    max_bytes: int | None,
) -> _Delivery:
    """Send ``items`` in batches within the limits; park what the other side refuses by record.

    ``batch_limit`` (one number, shared by the link's batches) halves on each ``E_LIMIT``. A refusal
    naming records (by ``index``) parks those and sends the rest again; one naming none is bisected
    down to single records. A 03 whose records the other side does not hold (``E_NOTFOUND``) hands
    them back as ``missing``.
    """
    delivery = _Delivery()
    queue: deque[list[_Item]] = deque(_batches(list(items), batch_limit[0], max_bytes))
    while queue:
        batch = queue.popleft()
        if len(batch) > batch_limit[0]:
            queue.appendleft(batch[batch_limit[0] :])
            batch = batch[: batch_limit[0]]
        verdict = send(action, batch, batch[0].seq, batch[-1].seq)
        if verdict.ok:
            delivery.delivered += batch
            continue
        if verdict.code == ErrorCode.LIMIT:
            if len(batch) == 1:
                delivery.parked.append((batch[0], verdict.code, verdict.message[:2000]))
                continue
            half = len(batch) // 2
            batch_limit[0] = min(batch_limit[0], half)
            queue.appendleft(batch[half:])
            queue.appendleft(batch[:half])
            continue
        if verdict.code not in RECORD_CODES:
            raise LinkFailure(verdict.code or "refused", verdict.message[:1000])
        named = _named(verdict.details, len(batch))
        if action is Action.DELETE and verdict.code == ErrorCode.NOTFOUND and named:
            delivery.missing += [batch[index] for index in named]
        elif named:
            delivery.parked += [(batch[index], verdict.code, reason) for index, reason in named.items()]
        elif len(batch) == 1:
            delivery.parked.append((batch[0], verdict.code, verdict.message[:2000]))
            continue
        else:
            half = len(batch) // 2
            queue.appendleft(batch[half:])
            queue.appendleft(batch[:half])
            continue
        rest = [item for index, item in enumerate(batch) if index not in named]
        if rest:
            queue.appendleft(rest)
    return delivery


def _named(details: list[Any], size: int) -> dict[int, str]:
    """The records a refusal names (``index`` into the batch), with the reason given for each."""
    named: dict[int, str] = {}
    for detail in details:
        if not isinstance(detail, dict):
            continue
        index = detail.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            continue
        reasons = [
            f"{fault.get('field', '')}: {fault.get('message', '')}"
            for fault in detail.get("errors") or []
            if isinstance(fault, dict)
        ]
        for name in ("region", "source"):
            if detail.get(name) is not None:
                reasons.append(f"{name}: {detail[name]}")
        named[index] = "; ".join(reasons)[:2000]
    return named


def _batches(items: list[_Item], limit: int, max_bytes: int | None) -> Iterator[list[_Item]]:
    """``items`` cut into batches of at most ``limit`` records and (roughly) ``max_bytes`` of busilist."""
    if max_bytes is None:
        for start in range(0, len(items), limit):
            yield items[start : start + limit]
        return
    # The envelope around the busilist (appid, busicode, random, sign, escaping) stays under 1 KiB.
    budget = max(max_bytes - 1024, 1)
    batch: list[_Item] = []
    size = 0
    for item in items:
        item_size = len(orjson.dumps(item.record)) + 1
        if batch and (len(batch) >= limit or size + item_size > budget):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield batch


def _dead_here(holder: str) -> bool:
    """Whether a lease holder (``host:pid:…``) is a process of this host that no longer runs."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _seconds_since(moment: str, now: datetime) -> float:
    """Seconds from a business timestamp (Beijing time, ``YYYY-MM-DD HH:MM:SS``) to ``now``."""
    try:
        then = datetime.strptime(moment, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return 0.0
    return max(0.0, (now - then).total_seconds())
