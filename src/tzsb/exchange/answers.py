"""Answers, claims and the log: how every request ends.

Every request of a caller that proved who it is claims its ``random`` with its answer — a
refusal too, so that captured bytes replayed later get the same refusal instead of acting on
what changed since — and leaves exactly one interaction-log row. A success writes its claim and
its row in the transaction of its own work, so that all of it commits or none of it does; a
refusal writes nothing else. Refusals of callers that never proved who they are are only counted
(``RefusalTally``): a stranger cannot grow the database.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import orjson

from tzsb import refusals
from tzsb.audit import InteractionLog, LogEntry, RefusalTally
from tzsb.clock import Clock
from tzsb.errors import ErrorCode, ExchangeError, StoreConflict
from tzsb.exchange.context import RequestContext
from tzsb.exchange.replays import ReplayBounds
from tzsb.protocol import RESULT_FAILURE, RESULT_SUCCESS, encode_response, failure_datalist
from tzsb.store import Connection, Store, nonces

logger = logging.getLogger(__name__)

REPLAYED: Final = "重复请求，返回首次响应 / replayed"


#: Refusals that are never a claimed first answer. None depends on the stored data, so the same
#: bytes sent again cannot act on what changed since: an internal error and a rate or size limit
#: say "retry later" (a passing cause), an interface disabled by failing rule tests comes back when
#: the operator fixes them, and a reused random is claimed by the request that used it first.
_NOT_CLAIMED: Final = frozenset(
    {ErrorCode.INTERNAL, ErrorCode.REPLAY, ErrorCode.LIMIT, ErrorCode.DISABLED, ErrorCode.UPSTREAM}
)
#: Refusals logged one row each even before the caller is authenticated, while its address is under
#: the limit of unidentified refusals: a failed signature names a real app (and at most three per
#: address before its lock-out), an internal error needs its row.
_ALWAYS_LOGGED: Final = frozenset({ErrorCode.SIGN, ErrorCode.INTERNAL})


class Answers:
    """Signs answers for the caller, claims randoms with them, and logs every request."""

    def __init__(
        self, store: Store, log: InteractionLog, clock: Clock, tally: RefusalTally, replays: ReplayBounds
    ) -> None:
        self.store = store
        self.log = log
        self.clock = clock
        self.tally = tally
        self.replays = replays

    def encode(self, context: RequestContext, datalist: dict[str, Any]) -> bytes:
        """The answer, signed with the secret the caller proved to hold (unsigned before that)."""
        return encode_response(
            context.appid, context.busicode, context.random, datalist, context.secret, context.algorithm
        )

    def refuse(self, context: RequestContext, error: ExchangeError) -> bytes:
        """The refusal's answer. An authenticated caller's refusal is claimed as the first answer of
        its random and logged; an unidentified caller's is counted. A failure to write either is
        only reported: the caller still gets its answer."""
        context.outcome = (RESULT_FAILURE, error.code.value)
        response = self.encode(context, failure_datalist(error))
        try:
            if context.secret is None:
                over = self.tally.over_limit(context.client_addr)
                self.tally.count(context.client_addr, error.code.value)
                if error.code not in _ALWAYS_LOGGED or (over and error.code is ErrorCode.SIGN):
                    return response
            entry = self.entry(context, RESULT_FAILURE, error.code.value, error.message)
            if context.secret is None or error.code in _NOT_CLAIMED:
                self.log.record(entry)
                return response
            try:

                def claim_and_log(connection: Connection) -> None:
                    nonces.claim(connection, context.appid, context.random, context.fingerprint, response, context.now)
                    self.log.append(connection, entry)

                self.store.write_grouped(claim_and_log)
                context.kept_bytes = len(response)
            except StoreConflict:
                # Claimed meanwhile (or before: a query's random is claimed after it ran): a retry of
                # the same request gets that first answer, another request its own refusal.
                claim = self._find_claim(context)
                if claim is not None and claim.fingerprint == context.fingerprint and claim.response is not None:
                    self._log_replayed(context, claim.response)
                    return claim.response
                self.log.record(entry)
        except Exception:
            logger.exception("could not write the interaction log row for a refused request")
        return response

    def claim_and_log(
        self,
        connection: Connection,
        context: RequestContext,
        response: bytes,
        message: str,
        *,
        result: str = RESULT_SUCCESS,
        code: str = "",
    ) -> None:
        """Claim the request's random with its answer and log it (a success, unless a provider's
        refusal is passed on: ``result`` and ``code``), in the caller's transaction (a duplicate claim
        raises ``StoreConflict`` and fails it)."""
        nonces.claim(connection, context.appid, context.random, context.fingerprint, response, context.now)
        self.log.append(connection, self.entry(context, result, code, message))
        context.outcome = (result, code)
        # Counted toward the app's quota once the transaction is over (``after``): holding the quota
        # writes, and the caller's transaction holds the writers' lock.
        context.kept_bytes = len(response)

    def stored_answer(self, context: RequestContext) -> bytes | None:
        """A write's first answer (success or refusal), if this random was claimed before by the same
        request (looked up before any validation); E_REPLAY if it was claimed by a different one, or
        if its answer is no longer kept."""
        claim = self._find_claim(context)
        return None if claim is None else self._replayed(context, claim)

    def first_answer(self, context: RequestContext, conflict: StoreConflict) -> bytes:
        """The stored answer of the request that claimed this random first, when it committed while
        this one ran (E_REPLAY if it differed); ``conflict`` again when no claim explains it."""
        claim = self._find_claim(context)
        if claim is None:
            raise conflict
        return self._replayed(context, claim)

    def _replayed(self, context: RequestContext, claim: nonces.Claim) -> bytes:
        """The claim's answer for a retry of the same request (logged as a replay), or E_REPLAY."""
        if claim.fingerprint != context.fingerprint:
            raise refusals.random_reused()
        if claim.response is None:
            raise refusals.answer_expired()
        self._log_replayed(context, claim.response)
        return claim.response

    def _log_replayed(self, context: RequestContext, response: bytes) -> None:
        """Log a retry answered with its first answer, under that answer's result and code."""
        datalist = orjson.loads(response).get("datalist", {})
        result, code = str(datalist.get("result", RESULT_SUCCESS)), str(datalist.get("code", ""))
        context.outcome = (result, code)
        self.log.record(self.entry(context, result, code, REPLAYED))

    def after(self, context: RequestContext) -> None:
        """After a request's transactions: its kept answer counted toward its app's quota, and work due
        now and then (tallies of ended minutes written, old answers expired)."""
        if context.kept_bytes:
            self.replays.claimed(context.appid, context.kept_bytes)
        self.tally.tick()
        self.replays.tick()

    def entry(self, context: RequestContext, result: str, code: str, message: str) -> LogEntry:
        record_count = len(context.records)
        return LogEntry(
            at=self.clock.now().isoformat(timespec="milliseconds"),
            appid=context.appid,
            busicode=context.busicode,
            action=context.action_code,
            random=context.random,
            client_addr=context.client_addr,
            record_count=record_count,
            result=result,
            code=code,
            message=message,
            duration_ms=context.duration_ms,
            region=context.app.region if context.app is not None else "",
            correlation=context.correlation,
        )

    def _find_claim(self, context: RequestContext) -> nonces.Claim | None:
        # Every write and every routed request looks its random up before anything else.
        with self.store.read_statement() as connection:
            return nonces.find(connection, context.appid, context.random)
