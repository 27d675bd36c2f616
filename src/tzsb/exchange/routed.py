"""Routed execution (5.2, figure 1): a request answered by the provider registered for its business
type and action, with this node in the middle.

The requester was admitted exactly as for local data. Its request goes on re-signed with the
service's credentials and a fresh ``random`` (the purpose replaced by the service's upstream
purpose where one is set); the provider's answer must be signed, verify, and be in the spec's
shape. Its records are kept to the requester's region and masked per the requester's grants
(5.2.2 c: always for the public purpose), and the answer is signed for the requester, claimed with
its ``random`` (a retry gets this answer; the provider is not asked twice) and logged with the
provider's leg under one correlation id.

A provider that is down, slow past its timeout, unsigned, wrongly signed or out of shape is an
``E_UPSTREAM`` refusal naming the service and the reason — never a hang and never the provider's
body. After repeated failures a circuit breaker stops asking the provider for a while, then lets
one request probe it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from tzsb import inline, refusals
from tzsb.audit import LogEntry
from tzsb.catalog import Catalog
from tzsb.errors import StoreConflict
from tzsb.exchange import writes
from tzsb.exchange.answers import Answers
from tzsb.exchange.breaker import BreakerOpen, CircuitBreaker
from tzsb.exchange.context import Admitted, RequestContext
from tzsb.exchange.masking import masker, receives_masked
from tzsb.exchange.upstream import AnswerTooLarge, UpstreamPool, UpstreamTimeout, UpstreamUnreachable
from tzsb.protocol import RESULT_FAILURE, RESULT_SUCCESS, Action, covers, response_signed_params, sign, verify
from tzsb.registry import Service, ServiceRegistry

logger = logging.getLogger(__name__)

#: An answer larger than this is not read further (the provider's pages are at most a few MB).
MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024
#: A larger answer is read, verified, masked and signed again in a worker thread, not on the event
#: loop (``tzsb.inline``), which would hold up every request of the process meanwhile (a 3.6 MB
#: answer is 42 ms to parse and verify alone); a local page of 100 records is about 65 KB.
ANSWER_ON_LOOP_BYTES: Final = 256 * 1024


class UpstreamFailure(Exception):
    """Why a provider's answer cannot be used (in Chinese and English)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en


class RoutedExecution:
    """Carries out admitted requests at the provider registered for them."""

    def __init__(
        self,
        services: ServiceRegistry,
        answers: Answers,
        catalog: Catalog,
        *,
        fail_max: int = 5,
        reset_seconds: float = 30.0,
    ) -> None:
        self.services = services
        self.answers = answers
        self.fail_max = fail_max
        self.reset_seconds = reset_seconds
        self._maskers = {code: masker(catalog[code]) for code in catalog}
        self._upstream = UpstreamPool()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._breakers_lock = threading.Lock()

    def close(self) -> None:
        self._upstream.close()

    def route(self, admitted: Admitted) -> Service | None:
        """The service this request goes to, or None (served locally)."""
        return self.services.route(admitted.business.code, admitted.action.value)

    def _breaker(self, service: Service) -> CircuitBreaker:
        with self._breakers_lock:
            breaker = self._breakers.get(service.name)
            if breaker is None:
                breaker = self._breakers[service.name] = CircuitBreaker(
                    service.name,
                    fail_max=self.fail_max,
                    reset_seconds=self.reset_seconds,
                    counted=UpstreamFailure,
                    note=lambda state, error: self._note_breaker(service.name, state, error),
                )
            return breaker

    def _note_breaker(self, name: str, state: str, error: str | None) -> None:
        """Keep a breaker's new state in the store, for `tzsb service show`."""
        try:
            inline.in_thread(self.services.note_breaker, name, state, error)
        except Exception:
            logger.exception("could not keep the circuit breaker state of service %s", name)

    def execute(self, context: RequestContext, admitted: Admitted, service: Service) -> bytes:
        business, action, app = admitted.business, admitted.action, admitted.app
        if action in (Action.ADD, Action.MODIFY):
            writes.check_regions(context.records, business, app.region)
        outgoing = uuid.uuid4().hex
        context.correlation = outgoing
        params = {
            "appid": service.appid,
            "busicode": (service.upstream_purpose or context.purpose) + business.code,
            "action": action.value,
            "busilist": admitted.request.busilist_text,
            "random": outgoing,
        }
        started = time.perf_counter()
        breaker = self._breaker(service)
        try:
            datalist, size = breaker.call(lambda: self._ask(service, params))
        except BreakerOpen as paused:
            remaining = max(1, round(paused.remaining_seconds))
            self._log_leg(
                self._leg(context, service, params, started, RESULT_FAILURE, "E_UPSTREAM", "paused: not asked")
            )
            raise refusals.upstream_paused(service.name, remaining) from None
        except UpstreamFailure as failure:
            self._log_leg(self._leg(context, service, params, started, RESULT_FAILURE, "E_UPSTREAM", failure.en))
            raise refusals.upstream_failed(service.name, failure.zh, failure.en) from None
        if size > ANSWER_ON_LOOP_BYTES:  # (``_ask``)
            return inline.in_thread(self._answered, context, admitted, service, params, started, datalist)
        return self._answered(context, admitted, service, params, started, datalist)

    def _answered(
        self,
        context: RequestContext,
        admitted: Admitted,
        service: Service,
        params: dict[str, str],
        started: float,
        datalist: dict[str, Any],
    ) -> bytes:
        """The provider's datalist shown to the requester, signed for it, claimed and logged."""
        action = admitted.action
        result, code = str(datalist["result"]), str(datalist.get("code", ""))
        if result == RESULT_SUCCESS and isinstance(datalist.get("busilist"), list):
            datalist = {**datalist, "busilist": self._shown(context, admitted, datalist["busilist"])}
        if action is Action.QUERY and isinstance(datalist.get("busilist"), list):
            context.records_out = len(datalist["busilist"])
        response = self.answers.encode(context, datalist)
        message = f"经 {service.name} 转发 / routed to {service.name}: {str(datalist.get('message', ''))[:300]}"
        leg = self._leg(context, service, params, started, result, code, str(datalist.get("message", ""))[:300])
        try:

            def claim_and_log(connection: Any) -> None:
                self.answers.log.append(connection, leg)
                self.answers.claim_and_log(connection, context, response, message, result=result, code=code)

            self.answers.store.write_grouped(claim_and_log)
        except StoreConflict as conflict:
            return self.answers.first_answer(context, conflict)
        return response

    def _shown(self, context: RequestContext, admitted: Admitted, records: list[Any]) -> list[Any]:
        """The provider's records as the requester may see them: inside its region, masked unless it
        receives the type unmasked."""
        business, app = admitted.business, admitted.app
        region_field = business.region_field
        kept = [
            record
            for record in records
            if isinstance(record, dict) and covers(app.region, str(record.get(region_field, "")))
        ]
        if receives_masked(context, admitted):
            mask = self._maskers[business.code]
            kept = [mask(record) for record in kept]
        return kept

    def _ask(self, service: Service, params: dict[str, str]) -> tuple[dict[str, Any], int]:
        """The provider's verified datalist, and the size of its answer; raises ``UpstreamFailure``
        (counted by the breaker). The answer is awaited on the event loop when the request runs
        there (``tzsb.inline``); a large one is read and verified in a worker thread."""
        body = orjson.dumps({**params, "sign": sign(params, service.secret, service.sign_algorithm)})
        timeout = service.timeout_seconds
        try:
            reply = self._upstream.post(
                service.url,
                body,
                timeout=timeout,
                max_bytes=MAX_ANSWER_BYTES,
                # A query may be asked again on a fresh connection; a write is never sent twice.
                idempotent=params["action"] == Action.QUERY.value,
            )
        except UpstreamTimeout:
            raise UpstreamFailure(f"{timeout:g} 秒内未应答", f"no answer within {timeout:g} s") from None
        except UpstreamUnreachable as exc:
            raise UpstreamFailure(f"无法连接（{exc.kind}）", f"unreachable ({exc.kind})") from None
        except AnswerTooLarge:
            raise UpstreamFailure("应答过大", f"an answer larger than {MAX_ANSWER_BYTES} bytes") from None
        if reply.status != 200:
            raise UpstreamFailure(f"HTTP 状态 {reply.status}", f"HTTP status {reply.status}")
        if len(reply.body) > ANSWER_ON_LOOP_BYTES:
            return inline.in_thread(self._verified, service, params, reply.body), len(reply.body)
        return self._verified(service, params, reply.body), len(reply.body)

    def _verified(self, service: Service, params: dict[str, str], body: bytes) -> dict[str, Any]:
        """The datalist of the provider's answer ``body`` to ``params``, once it is JSON in the
        spec's shape and its signature verifies; raises ``UpstreamFailure``."""
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamFailure("应答不是 JSON", "the answer is not JSON") from None
        if (
            not isinstance(answer, dict)
            or not all(isinstance(answer.get(name), str) for name in ("appid", "busicode", "random", "sign"))
            or not isinstance(answer.get("datalist"), dict)
            or answer["datalist"].get("result") not in (RESULT_SUCCESS, RESULT_FAILURE)
        ):
            raise UpstreamFailure("应答不符合接口规范的格式", "the answer is not in the spec's shape")
        if (answer["appid"], answer["busicode"], answer["random"]) != (
            params["appid"], params["busicode"], params["random"],
        ):  # fmt: skip
            raise UpstreamFailure("应答与请求不对应", "the answer is not the answer to this request")
        if not answer["sign"]:
            raise UpstreamFailure(
                "应答未签名（提供方未认可本节点的凭据？）",
                "the answer is unsigned (did the provider refuse this node's credentials?)",
            )
        if not verify(response_signed_params(answer), service.secret, service.sign_algorithm, answer["sign"]):
            raise UpstreamFailure("应答签名验证失败", "the answer's signature does not verify")
        datalist: dict[str, Any] = answer["datalist"]
        return datalist

    def _leg(
        self,
        context: RequestContext,
        service: Service,
        params: dict[str, str],
        started: float,
        result: str,
        code: str,
        message: str,
    ) -> LogEntry:
        """The log entry of the request sent to the provider (direction "out")."""
        return LogEntry(
            at=context.now.isoformat(timespec="milliseconds"),
            appid=service.appid,
            busicode=params["busicode"],
            action=params["action"],
            random=params["random"],
            client_addr=(urlsplit(service.url).netloc or service.url)[:64],
            record_count=len(context.records),
            result=result,
            code=code,
            message=f"{service.name}: {message}",
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            direction="out",
            region=context.app.region if context.app is not None else "",
            correlation=context.correlation,
        )

    def _log_leg(self, leg: LogEntry) -> None:
        """Log the provider's leg of a request that is refused (in a transaction of its own)."""
        try:
            self.answers.log.record(leg)
        except Exception:
            logger.exception("could not log the provider leg of a routed request")
