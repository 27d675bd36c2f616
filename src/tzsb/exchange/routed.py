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
import time
import uuid
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import orjson
import pybreaker

from tzsb import refusals
from tzsb.audit import LogEntry
from tzsb.catalog import Catalog
from tzsb.errors import StoreConflict
from tzsb.exchange import writes
from tzsb.exchange.answers import Answers
from tzsb.exchange.context import Admitted, RequestContext
from tzsb.exchange.masking import masker, receives_masked
from tzsb.protocol import RESULT_FAILURE, RESULT_SUCCESS, Action, covers, response_signed_params, sign, verify
from tzsb.registry import Service, ServiceRegistry

logger = logging.getLogger(__name__)

#: An answer larger than this is not read further (the provider's pages are at most a few MB).
MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024


class UpstreamFailure(Exception):
    """Why a provider's answer cannot be used (in Chinese and English)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en


class _BreakerNotes(pybreaker.CircuitBreakerListener):
    """Keeps each breaker's state changes in the store, for `tzsb service show`."""

    def __init__(self, note: Callable[[str, str, str | None], None]) -> None:
        self.note = note
        self.last_error: dict[str, str] = {}
        #: When each breaker last opened (``time.monotonic()``).
        self.opened_at: dict[str, float] = {}

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        self.last_error[cb.name or ""] = str(exc)

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        name = cb.name or ""
        if str(new_state.name) == "open":
            self.opened_at[name] = time.monotonic()
        try:
            self.note(name, str(new_state.name), self.last_error.get(name))
        except Exception:
            logger.exception("could not keep the circuit breaker state of service %s", name)


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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.services = services
        self.answers = answers
        self.fail_max = fail_max
        self.reset_seconds = reset_seconds
        self._maskers = {code: masker(catalog[code]) for code in catalog}
        # The transport itself, not a Client: no cookies, auth or redirects to handle per request
        # (together a third of the client's time per routed request, profiled).
        self._transport = transport or httpx.HTTPTransport(retries=0)
        self._breakers: dict[str, pybreaker.CircuitBreaker] = {}
        self._notes = _BreakerNotes(services.note_breaker)

    def close(self) -> None:
        self._transport.close()

    def route(self, admitted: Admitted) -> Service | None:
        """The service this request goes to, or None (served locally)."""
        return self.services.route(admitted.business.code, admitted.action.value)

    def _breaker(self, service: Service) -> pybreaker.CircuitBreaker:
        breaker = self._breakers.get(service.name)
        if breaker is None:
            breaker = pybreaker.CircuitBreaker(
                fail_max=self.fail_max,
                reset_timeout=self.reset_seconds,
                listeners=[self._notes],
                name=service.name,
                # The failure that trips the breaker reaches its caller as itself (its reason).
                throw_new_error_on_trip=False,
            )
            self._breakers[service.name] = breaker
        return breaker

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
            datalist = breaker.call(self._ask, service, params)
        except pybreaker.CircuitBreakerError:
            opened = self._notes.opened_at.get(service.name, time.monotonic())
            remaining = max(1, round(self.reset_seconds - (time.monotonic() - opened)))
            self._log_leg(
                self._leg(context, service, params, started, RESULT_FAILURE, "E_UPSTREAM", "paused: not asked")
            )
            raise refusals.upstream_paused(service.name, remaining) from None
        except UpstreamFailure as failure:
            self._log_leg(self._leg(context, service, params, started, RESULT_FAILURE, "E_UPSTREAM", failure.en))
            raise refusals.upstream_failed(service.name, failure.zh, failure.en) from None
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

    def _ask(self, service: Service, params: dict[str, str]) -> dict[str, Any]:
        """The provider's verified datalist; raises ``UpstreamFailure`` (counted by the breaker)."""
        body = orjson.dumps({**params, "sign": sign(params, service.secret, service.sign_algorithm)})
        deadline = time.monotonic() + service.timeout_seconds
        timeout = service.timeout_seconds
        request = httpx.Request(
            "POST",
            service.url,
            content=body,
            headers={"content-type": "application/json; charset=utf-8"},
            extensions={"timeout": httpx.Timeout(timeout).as_dict()},
        )
        try:
            reply = self._transport.handle_request(request)
            try:
                if reply.status_code != 200:
                    raise UpstreamFailure(f"HTTP 状态 {reply.status_code}", f"HTTP status {reply.status_code}")
                chunks: list[bytes] = []
                size = 0
                for chunk in reply.stream:  # type: ignore[union-attr]
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise UpstreamFailure("应答过大", f"an answer larger than {MAX_ANSWER_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("deadline")
                    chunks.append(chunk)
            finally:
                reply.close()
        except httpx.TimeoutException:
            raise UpstreamFailure(f"{timeout:g} 秒内未应答", f"no answer within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise UpstreamFailure(f"无法连接（{type(exc).__name__}）", f"unreachable ({type(exc).__name__})") from None
        try:
            answer = orjson.loads(b"".join(chunks))
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
