"""One request, start to finish: admit → claim check → batch → execute → answer → log.

``Exchange`` is the conductor: it holds one ``RequestContext`` per request and calls named steps
— ``Admission`` (parse, identify, authenticate, admit, authorise), ``Answers`` (first answers of
retried randoms, signed answers, claims, the log) and an execution (``LocalExecution`` on the
node's own store). Framings (HTTP JSON, SOAP) call ``handle`` and never see the steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tzsb import inline, refusals
from tzsb.clock import Clock
from tzsb.errors import ExchangeError
from tzsb.exchange.admission import Admission
from tzsb.exchange.answers import Answers
from tzsb.exchange.context import RequestContext, admitted
from tzsb.exchange.local import LocalExecution
from tzsb.exchange.log_queries import LogQueries
from tzsb.exchange.overlap import DigestPool
from tzsb.exchange.readahead import ReadAhead
from tzsb.exchange.routed import RoutedExecution
from tzsb.protocol import Action

logger = logging.getLogger(__name__)


class Exchange:
    """The node's interface logic, independent of HTTP or SOAP framing."""

    def __init__(
        self,
        admission: Admission,
        answers: Answers,
        local: LocalExecution,
        clock: Clock,
        *,
        read_ahead: ReadAhead,
        digests: DigestPool,
        logs: LogQueries | None = None,
        routed: RoutedExecution | None = None,
    ) -> None:
        self.admission = admission
        self.answers = answers
        self.local = local
        self.logs = logs
        self.routed = routed
        self._observers: list[Callable[[RequestContext], None]] = []
        self.clock = clock
        self.read_ahead = read_ahead
        self.digests = digests

    def close(self) -> None:
        try:
            self.read_ahead.close()
            self.answers.tally.flush(everything=True)
            if self.routed is not None:
                self.routed.close()
        finally:
            self.digests.close()

    def handle(self, body: bytes, content_type: str, client_addr: str, client_cert: str | None = None) -> bytes:
        """Answer one request body; never raises. ``client_cert``: SHA-256 of a verified TLS client certificate."""
        return self._answer(body, content_type, client_addr, client_cert, log_query=False)

    def handle_log(self, body: bytes, content_type: str, client_addr: str, client_cert: str | None = None) -> bytes:
        """Answer one request of the log interface (6.3.1 d): admitted as any request, answered from
        the interaction log; never raises."""
        return self._answer(body, content_type, client_addr, client_cert, log_query=True)

    def _answer(
        self, body: bytes, content_type: str, client_addr: str, client_cert: str | None, *, log_query: bool
    ) -> bytes:
        context = RequestContext(client_addr=client_addr, now=self.clock.now(), client_cert=client_cert)
        # Counted while answered: pages are read ahead only while the node has a core to spare.
        with self.read_ahead.answering():
            try:
                if log_query:
                    return self._handle_log(context, body, content_type)
                return self._handle(context, body, content_type)
            except ExchangeError as refusal:
                return self.answers.refuse(context, self._limited(context, refusal))
            except Exception:
                logger.exception("internal error while handling a request from %s", client_addr)
                return self.answers.refuse(context, refusals.internal_error())
            finally:
                self._after(context)

    def _limited(self, context: RequestContext, refusal: ExchangeError) -> ExchangeError:
        """Past its limit of unidentified refusals an address learns no more than "too many" (a caller
        that signs correctly is still served: callers behind one NAT share an address)."""
        if context.secret is None and self.answers.tally.over_limit(context.client_addr):
            return refusals.too_many_refusals(self.answers.tally.per_minute)
        return refusal

    def observe(self, observer: Callable[[RequestContext], None]) -> None:
        """Call ``observer`` with each request's context once it is answered (metrics)."""
        self._observers.append(observer)

    def _after(self, context: RequestContext) -> None:
        try:
            self.answers.after(context)
        except Exception:
            logger.exception("housekeeping after a request failed (tallies, expired answers)")
        for observer in self._observers:
            try:
                observer(context)
            except Exception:
                logger.exception("a request observer failed")

    def _handle(self, context: RequestContext, body: bytes, content_type: str) -> bytes:
        self.admission.admit(context, body, content_type)
        request = admitted(context)
        service = self.routed.route(request) if self.routed is not None else None
        # A query's random is claimed after it runs (a duplicate claim is caught there and answered
        # with the first response); a write's first answer is looked up now, before any validation,
        # and so is a routed request's: the provider is not asked twice.
        if request.action is not Action.QUERY or service is not None:
            replayed = self.answers.stored_answer(context)
            if replayed is not None:
                return replayed
        self.admission.admit_batch(context, request)
        # A routed request stays on the event loop (``tzsb.inline``): it awaits the provider's answer
        # there. A write goes on in a worker thread (the writers' lock, an insert without the GIL).
        if service is not None and self.routed is not None:
            return self.routed.execute(context, request, service)
        if request.action is not Action.QUERY:
            return inline.in_thread(self.local.write, context, request)
        return self.local.query(context, request)

    def _handle_log(self, context: RequestContext, body: bytes, content_type: str) -> bytes:
        if self.logs is None:
            raise RuntimeError("this exchange was built without the log interface")
        self.admission.admit(context, body, content_type)
        request = admitted(context)
        self.admission.admit_batch(context, request)
        return self.logs.execute(context, request)

    def refuse_unparsable(self, client_addr: str) -> bytes:
        """The refusal of a body the framing could not read (a malformed SOAP envelope: the framing
        answers it itself), counted like an unreadable JSON body."""
        context = RequestContext(client_addr=client_addr, now=self.clock.now())
        return self.answers.refuse(context, self._limited(context, refusals.body_not_json()))

    def refuse_oversized(self, client_addr: str, limit: int) -> bytes:
        """The refusal of a body the HTTP layer would not read past the node's limit (E_LIMIT),
        logged like every other refusal."""
        context = RequestContext(client_addr=client_addr, now=self.clock.now())
        return self.answers.refuse(context, refusals.body_over_node_limit(limit))
