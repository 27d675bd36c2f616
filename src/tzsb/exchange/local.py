"""Local execution: an admitted request carried out on the node's own store.

Writes (01 add, 02 modify, 03 delete) are validated, planned against the stored records and
applied in one transaction with their claim and log row: every record or none. A 04 query is
planned against the catalog and the caller's region, read a page at a time (the next page read
ahead), masked where the caller may not see sensitive fields, and claimed after it ran.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import replace
from typing import Any, Final

import orjson

from tzsb import inline, refusals
from tzsb.catalog import BusinessType, Catalog
from tzsb.errors import ExchangeError, FieldFault, RecordFault, StoreConflict
from tzsb.exchange import query as query_planning
from tzsb.exchange import writes
from tzsb.exchange.answers import Answers
from tzsb.exchange.context import Admitted, RequestContext
from tzsb.exchange.cursors import CursorCodec
from tzsb.exchange.history import version_actions
from tzsb.exchange.masking import mask_plan, masker, receives_masked
from tzsb.exchange.query import is_id_or_mobile
from tzsb.exchange.readahead import ReadAhead
from tzsb.protocol import Action, covers, region_prefix, split_busicode, success_datalist
from tzsb.registry import App, Collisions
from tzsb.rules import (
    BatchReport,
    NaturalKeyHolder,
    NaturalKeyLookup,
    RecordValidator,
    RelatedLookup,
    RelatedRecord,
    delete_faults,
    modify_faults,
)
from tzsb.store import Connection, Store, StoredRecord, masked_copies, natural_keys, records_read, records_written

#: An answer lists at most this many faulty records, and this many faults of each (the message counts all).
MAX_DETAILED_RECORDS: Final = 100
MAX_FAULTS_PER_RECORD: Final = 20


class LocalExecution:
    """Carries out admitted requests on the node's own store."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        answers: Answers,
        codec: CursorCodec,
        read_ahead: ReadAhead,
        collisions: Collisions,
        page_size: int = 100,
        max_page_size: int = 1000,
    ) -> None:
        self.store = store
        self.answers = answers
        self.collisions = collisions
        self.codec = codec
        self.read_ahead = read_ahead
        self.page_size = page_size
        self.max_page_size = max_page_size
        self._maskers = {code: masker(catalog[code]) for code in catalog}
        self._mask_plans = {code: mask_plan(catalog[code]) for code in catalog}

    def execute(self, context: RequestContext, admitted: Admitted) -> bytes:
        if admitted.action is Action.QUERY:
            return self.query(context, admitted)
        return self.write(context, admitted)

    # -- 01 / 02 / 03 ---------------------------------------------------------------------------

    def write(self, context: RequestContext, admitted: Admitted) -> bytes:
        business, records = admitted.business, context.records
        validator = admitted.rules.validators[business.code]
        plan_context = writes.WriteContext(
            business,
            validator,
            admitted.app,
            context.business_now,
            masked=receives_masked(context, admitted),
            random=context.random,
        )
        if admitted.action is Action.ADD and not validator.reads_store and writes.plannable(records, business):
            answer = self._add_while_validating(context, admitted, validator, plan_context)
            if answer is not None:
                return answer
        warnings = self._checked(context, admitted, validator, self._natural_key_lookup(plan_context))
        try:
            with self.store.write() as connection:
                planned = writes.plan(connection, admitted.action, records, plan_context)
                if planned.error is None:
                    records_written.insert_new(connection, planned.new)
                    writes.finish(connection, planned)
                    return self._written(connection, context, planned.outcome, warnings)
        except StoreConflict as conflict:
            # Another request with the same random committed first: answer as a retry of it would be.
            return self.answers.first_answer(context, conflict)
        # Refused: nothing was written (the transaction held only the change counter's lock).
        raise self._refusal(context, admitted, planned)

    def preflight_add(
        self,
        app: App,
        validator: RecordValidator,
        records: Sequence[dict[str, Any]],
        now: str,
        client_addr: str,
        unsent: Collection[int] = (),
    ) -> tuple[BatchReport, bool]:
        """What an add of ``records`` by ``app`` would meet, without writing anything: the validator's
        report with the store look-ups an add makes (keys, natural keys, related records, as ``app``
        may learn of them), and whether a key is held by a record ``app`` may not access (the add
        would be refused without saying which). A file import checks every batch so before it
        writes the first. Held keys count toward the app's lock-out exactly as a refused add's do,
        so that a preflight is no cheaper oracle than an add."""
        # The locks admission applies to an add: a locked-out app (or address) learns nothing here.
        if not app.enabled:
            raise refusals.unknown_app(app.appid)
        locks = self.collisions.lockouts.locks(app.appid, client_addr)
        if locks.app_locked_until is not None:
            raise refusals.locked_out_for_collisions(app.appid, locks.app_locked_until)
        if locks.locked_until is not None:
            raise refusals.locked_out(app.appid, client_addr, locks.locked_until)
        business = validator.business
        masked = business.code not in app.unmasked
        plan_context = writes.WriteContext(business, validator, app, now, masked=masked)
        report = self._add_report(validator, records, app, now, self._natural_key_lookup(plan_context))
        # Only the records the import would send (``unsent``: those it already knows it will not):
        # one with an error is never written, so its key is not looked for (nor counted).
        faulty = {fault.index for fault in report.errors} | set(unsent)
        plannable = [
            record
            for index, record in enumerate(records)
            if index not in faulty and isinstance(record.get(business.primary_key), str)
        ]
        with self.store.read() as connection:
            held = [
                (key, stored.region, stored.source_appid)
                for key, stored in records_read.fetch(
                    connection, business.code, [record[business.primary_key] for record in plannable]
                ).items()
                if not writes.accessible(plan_context, stored)
            ]
        if held:
            self.collisions.record(app.appid, client_addr, business.code, held, counts=_personal(business, held))
        return report, bool(held)

    def _add_while_validating(
        self,
        context: RequestContext,
        admitted: Admitted,
        validator: RecordValidator,
        plan_context: writes.WriteContext,
    ) -> bytes | None:
        """An add planned against the stored records, its new records inserted while the batch is
        validated (the database works without the GIL meanwhile); a refusal rolls the insert back and
        answers exactly as validating first would.

        Only when the writers' lock is free right now (else None: the caller validates first and then
        queues for the lock, so that validation never waits behind other writers, nor holds them up)
        and when validation reads nothing from the store (a reference look-up would need a second
        connection while this one is held: with writers queued holding the others, the pool could run
        dry).
        """
        try:
            with self.store.write_if_free() as connection:
                last_seq = None if connection is None else records_written.try_lock_change_counter(connection)
                if connection is None or last_seq is None:
                    return None
                planned = writes.plan(connection, Action.ADD, context.records, plan_context, last_seq)
                # Natural keys are looked up on this connection before the insert starts: the
                # records stored before this batch, as validating first would see them.
                natural = _asked_beforehand(connection, plan_context, validator, context.records)
                related = _related_beforehand(connection, validator, context.records, admitted.app)
                inserting = records_written.inserting(connection, planned.new) if planned.error is None else None
                with inserting or nullcontext():
                    warnings = self._checked(context, admitted, validator, natural, related)
                if planned.error is None:
                    writes.finish(connection, planned)
                    return self._written(connection, context, planned.outcome, warnings)
                # Leaving the block by this exception rolls back what was inserted meanwhile.
                raise _Refused
        except StoreConflict as conflict:
            return self.answers.first_answer(context, conflict)
        except _Refused:
            raise self._refusal(context, admitted, planned) from None

    def _refusal(self, context: RequestContext, admitted: Admitted, planned: writes.WritePlan) -> ExchangeError:
        """The refusal of a batch its plan rejects, after its transaction ended; the keys of an add
        held by records the caller may not access are kept for the operator (and may lock the app)."""
        assert planned.error is not None
        if planned.held:
            held = [(item.key, item.region, item.source) for item in planned.held]
            business = admitted.business
            counts = _personal(business, held)
            self.collisions.record(admitted.app.appid, context.client_addr, business.code, held, counts=counts)
        return planned.error

    def _written(
        self, connection: Connection, context: RequestContext, outcome: writes.WriteOutcome, warnings: list[RecordFault]
    ) -> bytes:
        """The success answer of a write, claimed with the request's random and logged in its transaction."""
        message = outcome.message()
        extra: dict[str, Any] = {"counts": outcome.counts(), "skipped_keys": outcome.skipped_keys}
        if warnings:
            message += f"；数据质量警告 {len(warnings)} 条 / {len(warnings)} record(s) with warnings"
            extra["warnings"] = [warning.as_dict() for warning in warnings]
        response = self.answers.encode(context, success_datalist(message, [], **extra))
        self.answers.claim_and_log(connection, context, response, message)
        return response

    def _checked(
        self,
        context: RequestContext,
        admitted: Admitted,
        validator: RecordValidator,
        natural_keys: NaturalKeyLookup | None = None,
        related: RelatedLookup | None = None,
    ) -> list[RecordFault]:
        """Validate a write's batch and check its regions; returns the warnings, raises on errors."""
        records, business, app, action = context.records, admitted.business, admitted.app, admitted.action
        warnings: list[RecordFault] = []
        if action is Action.ADD:
            report = self._add_report(validator, records, app, context.business_now, natural_keys, related)
            faults, warnings = report.errors, report.warnings
        elif action is Action.MODIFY:
            faults = modify_faults(
                records, business, validator.validate_batch(records, partial=True, now=context.business_now)
            )
        else:
            faults = delete_faults(records, business)
        if faults:
            raise refusals.records_invalid(_capped(faults), len(faults))
        if action is not Action.DELETE:
            writes.check_regions(records, business, app.region)
        return warnings

    def _add_report(
        self,
        validator: RecordValidator,
        records: Sequence[dict[str, Any]],
        app: App,
        now: str,
        natural_keys: NaturalKeyLookup | None,
        related: RelatedLookup | None = None,
    ) -> BatchReport:
        """An add's batch validated with the store look-ups it makes, as ``app`` may learn of them
        (``related``: the cross-record look-ups already made; else each is read when asked)."""

        def lookup(business_code: str, keys: Collection[str]) -> set[str]:
            return self._live_keys(business_code, keys, app.region)

        def read_related(need: RelatedRecord, values: Collection[str]) -> Mapping[str, Mapping[str, Any]]:
            with self.store.read() as connection:
                return _related_records(connection, need, values, app)

        return validator.check_batch(
            records, now=now, lookup=lookup, natural_keys=natural_keys, related=related or read_related
        )

    def _natural_key_lookup(self, plan_context: writes.WriteContext) -> NaturalKeyLookup:
        """The validator's natural-key look-up for a batch validated before its write transaction:
        one read of the store when the validator asks."""

        def lookup(
            business: str, wanted: Mapping[str, Collection[str]]
        ) -> Mapping[str, Mapping[str, Sequence[NaturalKeyHolder]]]:
            with self.store.read() as connection:
                return writes.natural_key_holders(connection, plan_context, wanted)

        return lookup

    def _live_keys(self, business: str, keys: Collection[str], scope: str) -> set[str]:
        """Referenced keys the caller may see: a reference must not reveal records outside its region."""
        with self.store.read() as connection:
            return records_read.live_keys(connection, business, keys, region_prefix(scope))

    # -- 04 ---------------------------------------------------------------------------------------

    def query(self, context: RequestContext, admitted: Admitted) -> bytes:
        records, business, app = context.records, admitted.business, admitted.app
        if len(records) != 1:
            raise refusals.query_needs_one_condition()
        masked = receives_masked(context, admitted)
        if "_history" in records[0]:
            return self.history(context, admitted, masked)
        plan = query_planning.plan_query(
            records[0], business, app.region, self.codec, self.page_size, self.max_page_size, masked=masked
        )
        # A type with no sensitive field is answered as stored, to masked callers too (its copies would
        # be the records themselves).
        masks = masked and bool(business.sensitive_fields)
        raw = self.store.dialect.keeps_document_text and not masks
        masked_plan = self._mask_plans[business.code] if masks else None
        read = functools.partial(self.read_ahead.page, app.appid, plan.query, raw=raw, masked_plan=masked_plan)
        # A walk that filters may be long: on the event loop's thread (``tzsb.inline``) it would hold
        # up every request, in a worker thread SQLite walks without the GIL.
        rows = read() if records_read.reads_few_rows(plan.query) else inline.in_thread(read)
        following = query_planning.next_query(plan, rows)
        if following is not None:
            self.read_ahead.prepare(app.appid, following, raw=raw, masked_plan=masked_plan)
        busilist = query_planning.render(rows, plan)
        context.records_out = len(busilist)
        copies: list[tuple[str, int, str]] = []
        if masks:
            # Copies are kept for pages of records, which callers read again and again; not for a look-up
            # by key (one record: the write would cost what the masking saves), nor for a change feed,
            # whose reader takes each version once.
            keeps = plan.query.key is None and not plan.feed
            busilist = self._masked(business.code, rows, busilist, copies if keeps else None)
        message = f"查询成功，返回 {len(busilist)} 条 / OK: {len(busilist)} record(s)"
        datalist = success_datalist(message, busilist, **query_planning.page_extras(plan, rows, self.codec))
        kept = (business.code, masked_plan, copies) if masked_plan is not None and copies else None
        return self._answered_query(context, datalist, message, kept)

    def _masked(
        self,
        business: str,
        rows: Sequence[StoredRecord],
        rendered: list[Any],
        copies: list[tuple[str, int, str]] | None,
    ) -> list[Any]:
        """A page's records as a masked caller sees them. Records read with their masked copy come as
        they are; every other live record is masked here, and its masked text added to ``copies`` (key,
        ``seq``, text) to be kept for the next masked page (unless ``copies`` is None)."""
        mask = self._maskers[business]
        shown: list[Any] = []
        for row, record in zip(rows[: len(rendered)], rendered, strict=True):
            if type(record) is orjson.Fragment:
                shown.append(record)
            elif row.departed or row.deleted:
                shown.append(mask(record))
            else:
                text = orjson.dumps(mask(record)).decode()
                if copies is not None:
                    copies.append((row.key, row.seq, text))
                shown.append(orjson.Fragment(text))
        return shown

    def _answered_query(
        self,
        context: RequestContext,
        datalist: dict[str, Any],
        message: str,
        copies: tuple[str, str, list[tuple[str, int, str]]] | None = None,
    ) -> bytes:
        """A query's answer, claimed with its random and logged after it ran, with the masked copies
        it made (``copies``: business type, masking plan, copies) kept in the same transaction."""
        response = self.answers.encode(context, datalist)

        def claim_and_log(connection: Connection) -> None:
            self.answers.claim_and_log(connection, context, response, message)
            if copies is not None:
                masked_copies.keep(connection, *copies)

        try:
            # Committed with the claims and entries of concurrent requests (group commit).
            self.store.write_grouped(claim_and_log)
        except StoreConflict as conflict:
            # The random was claimed before: a retry of the same query gets the first answer.
            return self.answers.first_answer(context, conflict)
        return response

    def history(self, context: RequestContext, admitted: Admitted, masked: bool) -> bytes:
        """A record's versions, newest first (``_history: true`` and its primary key): the ones in the
        caller's region, masked as a query would answer them; who made each version, and through
        which request, only for a caller that receives the type unmasked."""
        conditions, business, app = context.records[0], admitted.business, admitted.app
        if conditions["_history"] is not True:
            raise refusals.history_flag_malformed()
        if set(conditions) != {"_history", business.primary_key}:
            raise refusals.history_needs_key(business.primary_key)
        # The key's checks of any query: a text value, and no ID or mobile number to a masked caller.
        key_only = {business.primary_key: conditions[business.primary_key]}
        query_planning.plan_query(key_only, business, app.region, self.codec, 1, 1, masked=masked)
        key = str(conditions[business.primary_key])
        with self.store.read() as connection:
            found = records_read.versions(
                connection, business.code, key, region_prefix(app.region), limit=self.max_page_size
            )
        mask = self._maskers[business.code] if masked else None
        busilist = [
            _version_shown(version, action, mask) for version, action in zip(found, version_actions(found), strict=True)
        ]
        context.records_out = len(busilist)
        message = f"查询成功，返回 {len(busilist)} 个版本 / OK: {len(busilist)} version(s)"
        return self._answered_query(context, success_datalist(message, busilist, next_cursor=None), message)


def _version_shown(
    version: records_read.RecordVersion, action: str, mask: Callable[[dict[str, Any]], dict[str, Any]] | None
) -> dict[str, Any]:
    """A version as a history answer shows it: the record (masked for a masked caller), and
    ``_version``: its change sequence, time and action, and (unmasked callers only) who made it
    through which request."""
    about: dict[str, Any] = {"seq": version.seq, "at": version.changed_at, "action": action}
    if version.deleted:
        about["deleted_at"] = version.deleted_at
    if mask is None:
        about.update(by=version.changed_by, random=version.random, source=version.source_appid)
    record = dict(version.data) if mask is None else mask(dict(version.data))
    if version.deleted:
        record["_deleted"] = True
    record["_version"] = about
    return record


def _asked_beforehand(
    connection: Connection,
    plan_context: writes.WriteContext,
    validator: RecordValidator,
    records: Sequence[dict[str, Any]],
) -> NaturalKeyLookup | None:
    """The natural-key look-up of a batch, asked now on ``connection`` (before the batch's insert
    starts on it), as a look-up that hands the answer to the validator later; None when the
    validator checks no natural key."""
    if not validator.checks_natural_keys:
        return None
    wanted = validator.natural_key_values(records)
    found = writes.natural_key_holders(connection, plan_context, wanted) if wanted else {}

    def lookup(
        business: str, asked: Mapping[str, Collection[str]]
    ) -> Mapping[str, Mapping[str, Sequence[NaturalKeyHolder]]]:
        return found

    return lookup


def _personal(business: BusinessType, held: Sequence[tuple[str, str, str]]) -> bool:
    """Whether colliding keys are personal data an app could not otherwise learn (and so count
    toward its lock-out): the key field is sensitive, or a key is an ID or mobile number (a
    certificate number may be its holder's ID number)."""
    key_spec = business.field(business.primary_key)
    return (key_spec is not None and key_spec.sensitive) or any(is_id_or_mobile(key) for key, _, _ in held)


def _related_records(
    connection: Connection, need: RelatedRecord, values: Collection[str], app: App
) -> dict[str, Mapping[str, Any]]:
    """The other records a cross-record rule judges the batch with, as far as the caller may learn of
    them: granted that business type, in the caller's region, and (seen masked) its own records.
    A warning built on any other record would tell the caller of data it may not read."""
    business = need.business
    if not any(split_busicode(busicode)[1] == business for busicode in app.busicodes):
        return {}

    def visible(region: str, source: str) -> bool:
        return covers(app.region, region) and (
            business in app.unmasked or source == app.appid or business in app.overrides
        )

    if need.match is None:
        stored = records_read.fetch(connection, business, values)
        return {
            key: record.data
            for key, record in stored.items()
            if not record.deleted and visible(record.region, record.source_appid)
        }
    found = natural_keys.newest(connection, business, need.match, need.newest_by, values)
    return {value: held.data for value, held in found.items() if visible(held.region, held.source_appid)}


def _related_beforehand(
    connection: Connection, validator: RecordValidator, records: Sequence[dict[str, Any]], app: App
) -> RelatedLookup:
    """The cross-record look-ups of a batch, asked now on ``connection`` (before the batch's insert
    starts on it), handed to the validator later."""
    found = {
        need: _related_records(connection, need, values, app) for need, values in validator.related_values(records)
    }

    def related(need: RelatedRecord, values: Collection[str]) -> Mapping[str, Mapping[str, Any]]:
        return found.get(need, {})

    return related


class _Refused(Exception):
    """Leaves a write transaction so that it rolls back; the plan's refusal is raised after it."""


def _capped(faults: list[RecordFault]) -> list[RecordFault]:
    """Faults small enough to answer: a request full of junk must not make a huge answer."""
    return [
        replace(
            fault,
            key=fault.key[:64] if isinstance(fault.key, str) else fault.key,
            errors=tuple(_capped_field(item) for item in (fault.errors or ())[:MAX_FAULTS_PER_RECORD]),
        )
        for fault in faults[:MAX_DETAILED_RECORDS]
    ]


def _capped_field(fault: FieldFault) -> FieldFault:
    return FieldFault(str(fault.field)[:64], fault.rule, str(fault.message)[:300])
