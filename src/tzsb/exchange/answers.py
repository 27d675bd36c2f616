"""Answers, claims and the log: how every request ends.

Every request leaves exactly one interaction-log row. A refused one writes nothing but that row;
one that succeeds writes its ``random`` claim (with its answer, for idempotent retries) and its
log row in the transaction of its own work, so that all of it commits or none of it does.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from tzsb import refusals
from tzsb.audit import InteractionLog, LogEntry
from tzsb.clock import Clock
from tzsb.errors import ExchangeError, StoreConflict
from tzsb.exchange.context import RequestContext
from tzsb.protocol import RESULT_FAILURE, RESULT_SUCCESS, encode_response, failure_datalist
from tzsb.store import Connection, Store, nonces

logger = logging.getLogger(__name__)

REPLAYED: Final = "重复请求，返回首次响应 / replayed"


class Answers:
    """Signs answers for the caller, claims randoms with them, and logs every request."""

    def __init__(self, store: Store, log: InteractionLog, clock: Clock) -> None:
        self.store = store
        self.log = log
        self.clock = clock

    def encode(self, context: RequestContext, datalist: dict[str, Any]) -> bytes:
        """The answer, signed with the secret the caller proved to hold (unsigned before that)."""
        return encode_response(
            context.appid, context.busicode, context.random, datalist, context.secret, context.algorithm
        )

    def refuse(self, context: RequestContext, error: ExchangeError) -> bytes:
        """The refusal's answer, logged in a transaction of its own (a failed log write is only reported)."""
        response = self.encode(context, failure_datalist(error))
        try:
            self.log.record(self.entry(context, RESULT_FAILURE, error.code.value, error.message))
        except Exception:
            logger.exception("could not write the interaction log row for a refused request")
        return response

    def claim_and_log(self, connection: Connection, context: RequestContext, response: bytes, message: str) -> None:
        """Claim the request's random with its answer and log the success, in the caller's transaction
        (a duplicate claim raises ``StoreConflict`` and fails it)."""
        nonces.claim(connection, context.appid, context.random, context.fingerprint, response, context.now)
        InteractionLog.append(connection, self.entry(context, RESULT_SUCCESS, "", message))

    def stored_answer(self, context: RequestContext) -> bytes | None:
        """A write's first answer, if this random was claimed before by the same request (looked up
        before any validation); E_REPLAY if it was claimed by a different one."""
        claim = self._find_claim(context)
        if claim is None:
            return None
        if claim.fingerprint != context.fingerprint:
            raise refusals.random_reused()
        if claim.response is None:
            return None
        self.log_success(context, REPLAYED)
        return claim.response

    def first_answer(self, context: RequestContext, conflict: StoreConflict) -> bytes:
        """The stored answer of the request that claimed this random first, when it committed while
        this one ran (E_REPLAY if it differed); ``conflict`` again when no claim explains it."""
        claim = self._find_claim(context)
        if claim is None:
            raise conflict
        if claim.fingerprint != context.fingerprint or claim.response is None:
            raise refusals.random_reused()
        self.log_success(context, REPLAYED)
        return claim.response

    def log_success(self, context: RequestContext, message: str) -> None:
        self.log.record(self.entry(context, RESULT_SUCCESS, "", message))

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
        )

    def _find_claim(self, context: RequestContext) -> nonces.Claim | None:
        with self.store.read() as connection:
            return nonces.find(connection, context.appid, context.random)
