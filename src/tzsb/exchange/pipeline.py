"""One request, start to finish: parse → authenticate → authorise → validate → execute → answer → log.

Every request leaves exactly one interaction-log row. A request that is refused writes nothing
but that row; one that succeeds writes its records, its ``random`` claim (with the answer, for
idempotent retries) and its log row in a single transaction.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tzsb.audit import InteractionLog, LogEntry
from tzsb.catalog import BusinessType, Catalog
from tzsb.clock import Clock, business_timestamp
from tzsb.errors import ErrorCode, ExchangeError
from tzsb.exchange import query as query_planning
from tzsb.exchange import writes
from tzsb.exchange.cursors import CursorCodec
from tzsb.exchange.masking import masker
from tzsb.exchange.readahead import ReadAhead
from tzsb.protocol.codes import (
    BUSINESS_TYPES,
    PUBLIC_PURPOSE,
    PURPOSES,
    RESULT_FAILURE,
    RESULT_SUCCESS,
    Action,
    split_busicode,
)
from tzsb.protocol.messages import (
    ExchangeRequest,
    encode_response,
    failure_datalist,
    parse_request,
    success_datalist,
)
from tzsb.protocol.regions import region_prefix
from tzsb.protocol.signing import SignAlgorithm, canonical_params, verify_canonical
from tzsb.registry import App, AppRegistry
from tzsb.registry.access import DirectionPolicy, Party
from tzsb.registry.lockout import Lockouts
from tzsb.registry.ratelimit import RateLimiter
from tzsb.rules import RecordValidator
from tzsb.rules.ruleset import CompiledRules, RuleBook
from tzsb.store import Store
from tzsb.store import records as record_store
from tzsb.store.engine import driver_sql
from tzsb.store.schema import nonces

logger = logging.getLogger(__name__)


#: Built once: SQLAlchemy then reuses its compiled form instead of building a statement per request.
_CLAIM: Final = sa.insert(nonces)
#: Straight to the driver: SQLAlchemy's statement building and result processing cost more than the
#: look-up, once per write.
_FIND_CLAIM: Final = "SELECT fingerprint, response FROM nonces WHERE appid = ? AND random = ?"
#: From this size of sign text on, the digests are computed in a helper thread while the request's
#: thread parses the busilist (hashlib leaves the GIL, and so do recent versions of cryptography for
#: SM3 and SM4; an older one gives the same result without the overlap); below it, handing them
#: over costs more than it saves.
_DIGESTS_ASIDE_BYTES: Final = 64 * 1024
#: Beyond this size a busilist is parsed only once its caller is known and admitted: parsing ahead
#: costs an unauthenticated caller nothing, and the objects weigh several times the text.
_PARSE_AHEAD_MAX_BYTES: Final = 4 * 1024 * 1024


@dataclass(slots=True)
class _Trace:
    """What is known about the request so far, for its log row and its answer."""

    appid: str = ""
    busicode: str = ""
    action: str = ""
    random: str = ""
    record_count: int = 0
    #: The secret the caller proved to hold; the answer is signed with it. None: answer unsigned.
    secret: str | None = None
    algorithm: SignAlgorithm = SignAlgorithm.MD5
    client_cert: str | None = None
    #: The TCP peer's address.
    client_addr: str = ""
    #: ``time.perf_counter()`` when the request arrived (the log row's duration).
    started: float = 0.0


@dataclass(frozen=True, slots=True)
class _Digests:
    """The digests of a request's sign text: which live secret of its app signed it, and the
    fingerprint that tells a retry of the request from another request reusing its random."""

    canonical: bytes = field(repr=False)
    secrets: Sequence[str] = field(repr=False)
    algorithm: SignAlgorithm
    received_sign: str

    def __call__(self) -> tuple[str | None, str]:
        signed = (
            secret
            for secret in self.secrets
            if verify_canonical(self.canonical, secret, self.algorithm, self.received_sign)
        )
        return next(signed, None), hashlib.sha256(self.canonical).hexdigest()


@dataclass(frozen=True, slots=True)
class _Claim:
    fingerprint: str
    response: bytes | None


class Exchange:
    """The node's interface logic, independent of HTTP or SOAP framing."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        registry: AppRegistry,
        rules: RuleBook,
        clock: Clock,
        cursor_key: bytes,
        directions: DirectionPolicy,
        page_size: int = 100,
        max_page_size: int = 1000,
        timestamp_window: int = 300,
        read_ahead_pages: int = 16,
        several_processes: bool = False,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.registry = registry
        self.rules = rules
        self.clock = clock
        self.directions = directions
        self.lockouts = Lockouts(store, clock, shared=several_processes)
        # Several server processes count each app's requests together, in the database.
        self.rate_limiter = RateLimiter(clock, shared=store if several_processes else None)
        self.timestamp_window = timestamp_window
        self._maskers = {code: masker(catalog[code]) for code in catalog}
        self.log = InteractionLog(store)
        self.codec = CursorCodec(cursor_key)
        self.page_size = page_size
        self.max_page_size = max_page_size
        self.read_ahead = ReadAhead(store, capacity=read_ahead_pages)
        self._digester = ThreadPoolExecutor(max_workers=max(2, _usable_cpus()), thread_name_prefix="tzsb-digest")

    def close(self) -> None:
        try:
            self.read_ahead.close()
        finally:
            self._digester.shutdown()

    def handle(self, body: bytes, content_type: str, client_addr: str, client_cert: str | None = None) -> bytes:
        """Answer one request body; never raises. ``client_cert``: SHA-256 of a verified TLS client certificate."""
        trace = _Trace(client_cert=client_cert, client_addr=client_addr, started=time.perf_counter())
        try:
            return self._handle(body, content_type, trace)
        except ExchangeError as error:
            return self._refuse(error, trace)
        except Exception:
            logger.exception("internal error while handling a request from %s", client_addr)
            internal = ExchangeError(
                ErrorCode.INTERNAL,
                "节点内部错误，数据未写入，请稍后重试；如持续出现请联系节点管理员",
                "Internal error in the node; nothing was written. Retry later, and tell the node operator "
                "if it persists",
            )
            return self._refuse(internal, trace)

    # -- steps -----------------------------------------------------------------------------

    def _handle(self, body: bytes, content_type: str, trace: _Trace) -> bytes:
        request = parse_request(body, content_type)
        trace.appid, trace.busicode, trace.action, trace.random = (
            request.appid,
            request.busicode,
            request.action,
            request.random,
        )
        canonical = canonical_params(request.signed_params).encode("utf-8")
        app, has_failures = self._identify(request, trace)
        digests = _Digests(canonical, app.secrets, app.sign_algorithm, request.sign)
        parsed: list[dict[str, Any]] | ExchangeError | None = None
        if _parse_ahead(request, app, has_failures, len(body), len(canonical)):
            pending = self._digester.submit(digests)
            # Parsed before the caller is known to be genuine, but its faults told only after that.
            parsed = _parsed_records(request)
            signer, fingerprint = pending.result()
        else:
            signer, fingerprint = digests()
        self._authenticate(app, signer, has_failures, trace)
        self._admit(request, app, len(body))
        # One generation of the rules for the whole request, even if the file is reloaded meanwhile.
        rules = self.rules.current()
        business, action = self._authorise(request, app, rules)
        # A query's random is claimed after it runs (a duplicate claim is caught there and answered
        # with the first response); a write's first answer is looked up now, before any validation.
        claim = self._find_claim(app.appid, request.random) if action is not Action.QUERY else None
        if claim is not None:
            if claim.fingerprint != fingerprint:
                raise _replay_error()
            if claim.response is not None:
                self._log(trace, RESULT_SUCCESS, "", "重复请求，返回首次响应 / replayed")
                return claim.response
        if parsed is None:
            parsed = _parsed_records(request)
        if isinstance(parsed, ExchangeError):
            raise parsed
        records = parsed
        trace.record_count = len(records)
        if "\\u0000" in request.busilist_text and _holds_nul(records):
            raise ExchangeError(
                ErrorCode.PARAM,
                "busilist 含有 NUL 字符（\\u0000），请去掉后重发",
                "busilist contains NUL characters (\\u0000); remove them and resend",
            )
        if not records:
            raise ExchangeError(
                ErrorCode.PARAM,
                "busilist 为空，请至少提供一条记录（查询时提供一个条件对象，可为 {}）",
                "busilist is empty; send at least one record (for a query, one condition object, may be {})",
            )
        if len(records) > app.max_records:
            raise ExchangeError(
                ErrorCode.LIMIT,
                f"单次请求最多 {app.max_records} 条记录，本次 {len(records)} 条，请分批发送",
                f"At most {app.max_records} records per request, got {len(records)}; split the batch",
            )
        if action is Action.QUERY:
            return self._query(request, app, business, records, fingerprint, trace)
        validator = rules.validators[business.code]
        return self._write(request, app, business, action, records, validator, fingerprint, trace)

    def _identify(self, request: ExchangeRequest, trace: _Trace) -> tuple[App, bool]:
        """The app a request names, if it may call from here and now (not yet whether it signed the
        request); also whether its caller has recent signature failures."""
        client_addr = trace.client_addr
        app = self.registry.get(request.appid)
        if app is None or not app.enabled:
            raise ExchangeError(
                ErrorCode.APPID,
                f"应用账号 {request.appid} 不存在或已停用，请向节点管理员确认 appid",
                f"App {request.appid} is unknown or disabled; check the appid with the node operator",
            )
        if app.ip_allow and not _address_allowed(client_addr, app.ip_allow):
            raise ExchangeError(
                ErrorCode.FORBIDDEN,
                f"应用 {app.appid} 不允许从地址 {client_addr} 访问，请向节点管理员登记访问地址",
                f"App {app.appid} may not call from {client_addr}; ask the node operator to allow that address",
            )
        if app.cert_fingerprints and trace.client_cert not in app.cert_fingerprints:
            raise ExchangeError(
                ErrorCode.FORBIDDEN,
                f"应用 {app.appid} 须使用已绑定的客户端证书（CA 认证）访问，本次"
                + ("未提供证书" if trace.client_cert is None else "证书未绑定到该应用"),
                f"App {app.appid} must present its bound client certificate (mutual TLS); this request "
                + ("had none" if trace.client_cert is None else "presented a certificate not bound to it"),
            )
        has_failures, locked_until = self.lockouts.status(app.appid, client_addr)
        if locked_until is not None:
            raise _locked_error(app.appid, client_addr, locked_until)
        return app, has_failures

    def _authenticate(self, app: App, signer: str | None, has_failures: bool, trace: _Trace) -> None:
        """Accept the request signed with ``signer`` (a live secret of ``app``), or count the failure."""
        client_addr = trace.client_addr
        if signer is not None:
            trace.secret, trace.algorithm = signer, app.sign_algorithm
            if has_failures:
                self.lockouts.clear(app.appid, client_addr)
            return
        locked_now = self.lockouts.record_failure(app.appid, client_addr)
        if locked_now is not None:
            raise _locked_error(app.appid, client_addr, locked_now)
        raise ExchangeError(
            ErrorCode.SIGN,
            f"签名校验失败（{app.sign_algorithm.value}）：请按规范 6.5 重算 sign——除 sign 外的非空参数按参数名 ASCII "
            "排序，以 name=value 用 & 连接，末尾加 &key=密钥，再计算并转大写",
            f"Signature mismatch ({app.sign_algorithm.value}): rebuild it as in spec 6.5 — every non-empty parameter "
            "but sign, sorted by name (ASCII), joined as name=value with &, then &key=<secret>; digest, upper case",
        )

    def _admit(self, request: ExchangeRequest, app: App, body_size: int) -> None:
        """Checks on an identified caller: timestamp window, request rate, request size (7.3)."""
        if request.timestamp is None:
            if app.require_timestamp:
                raise ExchangeError(
                    ErrorCode.PARAM,
                    "本应用须在请求中携带参与签名的 timestamp（Unix 秒）",
                    "This app must send the signed parameter 'timestamp' (Unix seconds)",
                )
        else:
            skew = request.timestamp - self.clock.now().timestamp()
            if abs(skew) > self.timestamp_window:
                raise ExchangeError(
                    ErrorCode.REPLAY,
                    f"timestamp 与节点时间相差 {abs(skew):.0f} 秒，超过 ±{self.timestamp_window} 秒："
                    "请校准时钟并以当前时间重新签名发送",
                    f"timestamp is {abs(skew):.0f} s off the node's clock, beyond ±{self.timestamp_window} s; "
                    "correct the clock and sign the request again with the current time",
                )
        if not self.rate_limiter.allow(app.appid, app.rate_per_minute):
            raise ExchangeError(
                ErrorCode.LIMIT,
                f"应用 {app.appid} 每分钟最多 {app.rate_per_minute} 次请求，请稍后重试",
                f"App {app.appid} may send at most {app.rate_per_minute} requests per minute; retry later",
            )
        if app.max_bytes is not None and body_size > app.max_bytes:
            raise ExchangeError(
                ErrorCode.LIMIT,
                f"请求体 {body_size} 字节，超过本应用上限 {app.max_bytes} 字节，请分批发送",
                f"The request has {body_size} bytes, over this app's limit of {app.max_bytes}; split the batch",
            )

    def _authorise(self, request: ExchangeRequest, app: App, rules: CompiledRules) -> tuple[BusinessType, Action]:
        purpose, business_code = split_busicode(request.busicode)
        if purpose not in PURPOSES or business_code not in BUSINESS_TYPES:
            raise ExchangeError(
                ErrorCode.BUSICODE,
                f"业务分类代码 {request.busicode} 无效：前 2 位须为表 6 的用途代码，后 4 位须为表 7 的业务代码",
                f"busicode {request.busicode} is not a purpose code of table 6 followed by a business code of table 7",
            )
        try:
            action = Action(request.action)
        except ValueError:
            raise ExchangeError(
                ErrorCode.PARAM,
                f"请求动作代码 {request.action} 无效，应为 01 新增、02 修改、03 删除、04 查询",
                f"action {request.action} is not valid; use 01 add, 02 modify, 03 delete or 04 query",
            ) from None
        if request.busicode not in app.busicodes or action.value not in app.actions:
            raise ExchangeError(
                ErrorCode.FORBIDDEN,
                f"应用 {app.appid} 未被授权对 {request.busicode} 执行 {action.value}（{action.label}），"
                "请向节点管理员申请授权",
                f"App {app.appid} is not granted action {action.value} on {request.busicode}; ask the node operator",
            )
        business = self.catalog.get(business_code)
        if business is None:
            raise ExchangeError(
                ErrorCode.BUSICODE,
                f"本节点未提供业务类型 {business_code}（{BUSINESS_TYPES[business_code]}）的数据接口",
                f"This node does not serve business type {business_code}",
            )
        self.directions.check(purpose, business_code, action, Party(app.level, app.region))
        failures = rules.failures(business_code)
        if failures:
            listed = "; ".join(result.detail for result in failures)
            raise ExchangeError(
                ErrorCode.DISABLED,
                f"业务类型 {business_code} 的数据校验规则测试未全部通过，接口暂未启用（规范 6.1 c），"
                f"请节点管理员运行 tzsb rules test 修正：{listed}",
                f"The interface for {business_code} is not enabled: its rule tests fail (spec 6.1 c). "
                f"The node operator should run `tzsb rules test`: {listed}",
            )
        return business, action

    def _find_claim(self, appid: str, random: str) -> _Claim | None:
        with self.store.read() as connection:
            row = connection.exec_driver_sql(driver_sql(connection, _FIND_CLAIM), (appid, random)).first()
        if row is None:
            return None
        fingerprint, response = row
        return _Claim(fingerprint, None if response is None else bytes(response))

    def _write(
        self,
        request: ExchangeRequest,
        app: App,
        business: BusinessType,
        action: Action,
        records: list[dict[str, Any]],
        validator: RecordValidator,
        fingerprint: str,
        trace: _Trace,
    ) -> bytes:
        context = writes.WriteContext(business, validator, app, business_timestamp(self.clock.now()))
        if action is Action.ADD and not validator.reads_store and writes.plannable(records, business):
            answer = self._add_while_validating(request, app, records, validator, context, fingerprint, trace)
            if answer is not None:
                return answer
        warnings = self._checked(action, records, business, validator, app)
        try:
            with self.store.write() as connection:
                outcome = writes.apply(connection, action, records, context)
                return self._written(connection, outcome, warnings, app, request, fingerprint, trace)
        except IntegrityError as conflict:
            # Another request with the same random committed first: answer as a retry of it would be.
            return self._first_answer(conflict, app, request, fingerprint, trace)

    def _add_while_validating(
        self,
        request: ExchangeRequest,
        app: App,
        records: list[dict[str, Any]],
        validator: RecordValidator,
        context: writes.WriteContext,
        fingerprint: str,
        trace: _Trace,
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
        business = context.business
        try:
            with self.store.write_if_free() as connection:
                last_seq = None if connection is None else record_store.try_lock_change_counter(connection)
                if connection is None or last_seq is None:
                    return None
                planned = writes.plan(connection, Action.ADD, records, context, last_seq)
                inserting = record_store.inserting(connection, planned.new) if planned.error is None else None
                with inserting or nullcontext():
                    warnings = self._checked(Action.ADD, records, business, validator, app)
                if planned.error is not None:
                    raise planned.error
                writes.finish(connection, planned)
                return self._written(connection, planned.outcome, warnings, app, request, fingerprint, trace)
        except IntegrityError as conflict:
            return self._first_answer(conflict, app, request, fingerprint, trace)

    def _written(
        self,
        connection: Connection,
        outcome: writes.WriteOutcome,
        warnings: list[dict[str, Any]],
        app: App,
        request: ExchangeRequest,
        fingerprint: str,
        trace: _Trace,
    ) -> bytes:
        """The success answer of a write, claimed with the request's random and logged in its transaction."""
        message = outcome.message()
        extra: dict[str, Any] = {"counts": outcome.counts(), "skipped_keys": outcome.skipped_keys}
        if warnings:
            message += f"；数据质量警告 {len(warnings)} 条 / {len(warnings)} record(s) with warnings"
            extra["warnings"] = warnings
        response = self._encode(trace, success_datalist(message, [], **extra))
        self._claim_and_log(connection, app, request, fingerprint, response, trace, message)
        return response

    def _checked(
        self,
        action: Action,
        records: list[dict[str, Any]],
        business: BusinessType,
        validator: RecordValidator,
        app: App,
    ) -> list[dict[str, Any]]:
        """Validate a write's batch and check its regions; returns the warnings, raises on errors."""
        warnings: list[dict[str, Any]] = []
        if action is Action.ADD:
            report = validator.check_batch(
                records, lookup=lambda business_code, keys: self._live_keys(business_code, keys, app.region)
            )
            details, warnings = report.errors, report.warnings
        elif action is Action.MODIFY:
            details = validator.validate_batch(records, partial=True)
            details = _require_key(records, business, details)
        else:
            details = _delete_shape(records, business)
        if details:
            raise ExchangeError(
                ErrorCode.VALIDATION,
                f"有 {len(details)} 条记录未通过数据校验，整批未写入，请按 busilist 中的明细修正后重发",
                f"{len(details)} record(s) failed validation; nothing was written. Fix them as listed in busilist "
                "and resend",
                _capped(details),
            )
        if action is not Action.DELETE:
            writes.check_regions(records, business, app.region)
        return warnings

    def _query(
        self,
        request: ExchangeRequest,
        app: App,
        business: BusinessType,
        records: list[dict[str, Any]],
        fingerprint: str,
        trace: _Trace,
    ) -> bytes:
        if len(records) != 1:
            raise ExchangeError(
                ErrorCode.PARAM,
                "查询时 busilist 只能包含一个条件对象",
                "A query's busilist must hold exactly one condition object",
            )
        purpose = request.busicode[:2]
        masked = purpose == PUBLIC_PURPOSE or business.code not in app.unmasked
        plan = query_planning.plan_query(
            records[0], business, app.region, self.codec, self.page_size, self.max_page_size, masked=masked
        )
        raw = self.store.is_sqlite and not masked
        rows = self.read_ahead.page(app.appid, plan.query, raw=raw)
        following = query_planning.next_query(plan, rows)
        if following is not None:
            self.read_ahead.prepare(app.appid, following, raw=raw)
        busilist = query_planning.render(rows, plan)
        if masked:
            mask = self._maskers[business.code]
            busilist = [mask(record) for record in busilist]
        message = f"查询成功，返回 {len(busilist)} 条 / OK: {len(busilist)} record(s)"
        datalist = success_datalist(message, busilist, **query_planning.page_extras(plan, rows, self.codec))
        response = self._encode(trace, datalist)
        try:
            with self.store.write() as connection:
                self._claim_and_log(connection, app, request, fingerprint, response, trace, message)
        except IntegrityError as conflict:
            # The random was claimed before: a retry of the same query gets the first answer.
            return self._first_answer(conflict, app, request, fingerprint, trace)
        return response

    def _claim_and_log(
        self,
        connection: Connection,
        app: App,
        request: ExchangeRequest,
        fingerprint: str,
        response: bytes,
        trace: _Trace,
        message: str,
    ) -> None:
        """Claim the request's random with its answer and log the success, in the caller's transaction
        (a duplicate claim fails it)."""
        connection.execute(
            _CLAIM,
            {
                "appid": app.appid,
                "random": request.random,
                "fingerprint": fingerprint,
                "response": response,
                "created_at": self.clock.now().isoformat(),
            },
        )
        InteractionLog.append(connection, self._entry(trace, RESULT_SUCCESS, "", message))

    def _first_answer(
        self,
        conflict: IntegrityError,
        app: App,
        request: ExchangeRequest,
        fingerprint: str,
        trace: _Trace,
    ) -> bytes:
        """The stored answer of the request that claimed this random first (E_REPLAY if it differed);
        ``conflict`` again when no claim explains it."""
        claim = self._find_claim(app.appid, request.random)
        if claim is None:
            raise conflict
        if claim.fingerprint != fingerprint or claim.response is None:
            raise _replay_error()
        self._log(trace, RESULT_SUCCESS, "", "重复请求，返回首次响应 / replayed")
        return claim.response

    def _live_keys(self, business: str, keys: Collection[str], scope: str) -> set[str]:
        """Referenced keys the caller may see: a reference must not reveal records outside its region."""
        with self.store.read() as connection:
            return record_store.live_keys(connection, business, keys, region_prefix(scope))

    def record_oversized(self, client_addr: str, declared_or_read: int, limit: int) -> None:
        """Log a body refused by the HTTP layer before it could be parsed (every refusal leaves a row)."""
        trace = _Trace(client_addr=client_addr, started=time.perf_counter())
        message = (
            f"请求体超过节点上限 {limit} 字节（收到至少 {declared_or_read} 字节），未处理 / "
            f"Request body over the node's limit of {limit} bytes (at least {declared_or_read}); not processed"
        )
        self._log(trace, RESULT_FAILURE, ErrorCode.LIMIT.value, message)

    # -- answers and log -------------------------------------------------------------------

    def _encode(self, trace: _Trace, datalist: dict[str, Any]) -> bytes:
        return encode_response(trace.appid, trace.busicode, trace.random, datalist, trace.secret, trace.algorithm)

    def _refuse(self, error: ExchangeError, trace: _Trace) -> bytes:
        response = self._encode(trace, failure_datalist(error))
        try:
            self._log(trace, RESULT_FAILURE, error.code.value, error.message)
        except Exception:
            logger.exception("could not write the interaction log row for a refused request")
        return response

    def _entry(self, trace: _Trace, result: str, code: str, message: str) -> LogEntry:
        return LogEntry(
            at=self.clock.now().isoformat(timespec="milliseconds"),
            appid=trace.appid,
            busicode=trace.busicode,
            action=trace.action,
            random=trace.random,
            client_addr=trace.client_addr,
            record_count=trace.record_count,
            result=result,
            code=code,
            message=message,
            duration_ms=round((time.perf_counter() - trace.started) * 1000, 3),
        )

    def _log(self, trace: _Trace, result: str, code: str, message: str) -> None:
        self.log.record(self._entry(trace, result, code, message))


#: An answer lists at most this many faulty records, and this many faults of each (the message counts all).
MAX_DETAILED_RECORDS = 100
MAX_FAULTS_PER_RECORD = 20


def _capped(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Details small enough to answer: a request full of junk must not make a huge answer."""
    capped = []
    for detail in details[:MAX_DETAILED_RECORDS]:
        faults = [
            {**fault, "field": str(fault["field"])[:64], "message": str(fault["message"])[:300]}
            for fault in detail["errors"][:MAX_FAULTS_PER_RECORD]
        ]
        key = detail.get("key")
        capped.append({**detail, "key": key[:64] if isinstance(key, str) else key, "errors": faults})
    return capped


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _parse_ahead(request: ExchangeRequest, app: App, has_failures: bool, body_size: int, sign_size: int) -> bool:
    """Whether to parse the busilist while the sign is checked: a large busilist still to be parsed
    (one sent as an array already is), within the app's byte limit, from a caller with no recent
    signature failures."""
    return (
        request.busilist_value is None
        and _DIGESTS_ASIDE_BYTES <= sign_size <= _PARSE_AHEAD_MAX_BYTES
        and not has_failures
        and (app.max_bytes is None or body_size <= app.max_bytes)
    )


def _parsed_records(request: ExchangeRequest) -> list[dict[str, Any]] | ExchangeError:
    """The busilist's records, or the refusal to raise when its turn comes."""
    try:
        return request.records()
    except ExchangeError as refusal:
        return refusal


def _holds_nul(value: Any) -> bool:
    """Whether a NUL character is in any key or string (PostgreSQL cannot store one).

    Iterative: JSON may nest deeper than Python's recursion limit.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _address_allowed(client_addr: str, networks: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(client_addr)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in networks)


def _locked_error(appid: str, client_addr: str, until: datetime) -> ExchangeError:
    return ExchangeError(
        ErrorCode.LOCKED,
        f"应用 {appid} 自地址 {client_addr} 多次签名校验失败，已暂停至 {until.isoformat(timespec='seconds')}"
        "（规范 7.4）；请核对密钥，或请节点管理员解除（tzsb app unlock）",
        f"App {appid} failed signature checks repeatedly from {client_addr} and is locked out until "
        f"{until.isoformat(timespec='seconds')} (spec 7.4); check the secret, or ask the node operator to unlock",
    )


def _replay_error() -> ExchangeError:
    return ExchangeError(
        ErrorCode.REPLAY,
        "random 已被本应用的另一个请求使用，请为每个新请求生成新的 random（建议 UUID）",
        "This random was already used by a different request of this app; generate a new random "
        "(a UUID) for every new request",
    )


def _require_key(
    records: list[dict[str, Any]], business: BusinessType, details: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A 02 modify names its record by primary key; add a ``required`` error where it is missing."""
    key_field = business.primary_key
    by_index = {detail["index"]: detail for detail in details}
    spec = business.field(key_field)
    name = spec.name if spec is not None else key_field
    for index, record in enumerate(records):
        key = record.get(key_field)
        if isinstance(key, str) and key.strip():
            continue
        error = {
            "field": key_field,
            "rule": "required",
            "message": f"{name}（{key_field}）为必填项：修改须按主键指定记录 / "
            f"{key_field} is required to name the record",
        }
        if index in by_index:
            if not any(item["field"] == key_field for item in by_index[index]["errors"]):
                by_index[index]["errors"].insert(0, error)
        else:
            by_index[index] = {"index": index, "key": None, "errors": [error]}
    return [by_index[index] for index in sorted(by_index)]


def _delete_shape(records: list[dict[str, Any]], business: BusinessType) -> list[dict[str, Any]]:
    """A 03 delete names each record by its primary key and nothing else."""
    key_field = business.primary_key
    details: list[dict[str, Any]] = []
    first_index: dict[str, int] = {}
    for index, record in enumerate(records):
        errors: list[dict[str, str]] = []
        key = record.get(key_field)
        if isinstance(key, str) and key in first_index:
            errors.append(
                {
                    "field": key_field,
                    "rule": "duplicate_key",
                    "message": f"主键 {key} 与第 {first_index[key]} 条重复，同一批次中每条记录只能出现一次 / "
                    f"primary key {key} repeats record {first_index[key]}; send each record once per batch",
                }
            )
        elif isinstance(key, str):
            first_index[key] = index
        if not isinstance(key, str) or not key.strip():
            errors.append(
                {
                    "field": key_field,
                    "rule": "required",
                    "message": f"删除须按主键 {key_field} 指定记录 / "
                    f"{key_field} is required to name the record to delete",
                }
            )
        for name in record:
            if name != key_field:
                errors.append(
                    {
                        "field": name,
                        "rule": "unknown_field",
                        "message": f"删除只接受主键 {key_field}，请去掉 {name} / "
                        f"a delete takes only {key_field}; remove {name}",
                    }
                )
        if errors:
            details.append({"index": index, "key": key if isinstance(key, str) else None, "errors": errors})
    return details
