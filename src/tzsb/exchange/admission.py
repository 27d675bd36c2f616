"""Admission: who calls, whether they signed it, and whether they may ask this, here and now.

The steps every way into the node shares before anything is executed — local execution now;
routing to a provider, SOAP framing and log queries next — so that each admits a caller exactly
alike: parse the envelope, identify the app (enabled, address, client certificate, lock-out),
authenticate its signature (counting failures toward the 7.4 lock-out), admit the request
(timestamp window, rate, size) and authorise what it asks (busicode, action, grants, direction
between levels, the business type's rules enabled). Then its batch: parsed, not empty, within
the app's record limit.
"""

from __future__ import annotations

import ipaddress

from tzsb import refusals
from tzsb.catalog import Catalog
from tzsb.clock import Clock
from tzsb.exchange.context import Admitted, RequestContext
from tzsb.exchange.overlap import DigestPool, Digests, parsed_records
from tzsb.protocol import (
    BUSINESS_TYPES,
    PURPOSES,
    Action,
    ExchangeRequest,
    canonical_params,
    parse_request,
    split_busicode,
)
from tzsb.registry import App, AppRegistry, DirectionPolicy, Lockouts, Party, RateLimiter
from tzsb.rules import RuleBook


class Admission:
    """Admits requests for a node: its apps, lock-outs, rate limits, direction policy and rules."""

    def __init__(
        self,
        catalog: Catalog,
        registry: AppRegistry,
        rules: RuleBook,
        directions: DirectionPolicy,
        lockouts: Lockouts,
        rate_limiter: RateLimiter,
        digests: DigestPool,
        clock: Clock,
        timestamp_window: int = 300,
    ) -> None:
        self.catalog = catalog
        self.registry = registry
        self.rules = rules
        self.directions = directions
        self.lockouts = lockouts
        self.rate_limiter = rate_limiter
        self.digests = digests
        self.clock = clock
        self.timestamp_window = timestamp_window

    def admit(self, context: RequestContext, body: bytes, content_type: str) -> None:
        """Parse, identify, authenticate, admit and authorise a request; fills ``context`` or raises
        the refusal (a signature failure is counted before it is raised)."""
        request = parse_request(body, content_type)
        context.received(request)
        context.body_size = len(body)
        canonical = canonical_params(request.signed_params).encode("utf-8")
        app, has_failures = self._identify(request, context)
        digests = Digests(canonical, app.secrets, app.sign_algorithm, request.sign)
        if self.digests.parse_ahead(request, app, has_failures, len(body), len(canonical)):
            signer, context.fingerprint, context.parsed_ahead = self.digests.digest_while_parsing(digests, request)
        else:
            signer, context.fingerprint = digests()
        self._authenticate(app, signer, has_failures, context)
        self._admit(request, app, context)
        context.rules = self.rules.current()
        self._authorise(request, app, context)

    def admit_batch(self, context: RequestContext, admitted: Admitted) -> None:
        """The request's records: parsed (faults told only now, after the caller is known), free of
        NUL characters, not empty, and no more than the app may send at once (7.3)."""
        request, app = admitted.request, admitted.app
        parsed = context.parsed_ahead if context.parsed_ahead is not None else parsed_records(request)
        if not isinstance(parsed, list):
            raise parsed
        context.records = parsed
        if "\\u0000" in request.busilist_text and _holds_nul(parsed):
            raise refusals.busilist_holds_nul()
        if not parsed:
            raise refusals.busilist_empty()
        if len(parsed) > app.max_records:
            raise refusals.too_many_records(app.max_records, len(parsed))

    def _identify(self, request: ExchangeRequest, context: RequestContext) -> tuple[App, bool]:
        """The app a request names, if it may call from here and now (not yet whether it signed the
        request); also whether its caller has recent signature failures."""
        client_addr = context.client_addr
        app = self.registry.get(request.appid)
        if app is None or not app.enabled:
            raise refusals.unknown_app(request.appid)
        if app.ip_allow and not _address_allowed(client_addr, app.ip_allow):
            raise refusals.address_not_allowed(app.appid, client_addr)
        if app.cert_fingerprints and context.client_cert not in app.cert_fingerprints:
            raise refusals.certificate_required(app.appid, presented=context.client_cert is not None)
        locks = self.lockouts.locks(app.appid, client_addr)
        if locks.app_locked_until is not None:
            raise refusals.locked_out_for_collisions(app.appid, locks.app_locked_until)
        if locks.locked_until is not None:
            raise refusals.locked_out(app.appid, client_addr, locks.locked_until)
        return app, locks.has_failures

    def _authenticate(self, app: App, signer: str | None, has_failures: bool, context: RequestContext) -> None:
        """Accept the request signed with ``signer`` (a live secret of ``app``), or count the failure."""
        client_addr = context.client_addr
        if signer is not None:
            context.app, context.secret, context.algorithm = app, signer, app.sign_algorithm
            if has_failures:
                self.lockouts.clear(app.appid, client_addr)
            return
        locked_now = self.lockouts.record_failure(app.appid, client_addr)
        if locked_now is not None:
            raise refusals.locked_out(app.appid, client_addr, locked_now)
        raise refusals.signature_mismatch(app.sign_algorithm.value)

    def _admit(self, request: ExchangeRequest, app: App, context: RequestContext) -> None:
        """Checks on an identified caller: timestamp window, request rate, request size (7.3)."""
        if request.timestamp is None:
            if app.require_timestamp:
                raise refusals.timestamp_required()
        else:
            skew = request.timestamp - context.now.timestamp()
            if abs(skew) > self.timestamp_window:
                raise refusals.timestamp_off(abs(skew), self.timestamp_window)
        if not self.rate_limiter.allow(app.appid, app.rate_per_minute):
            raise refusals.rate_exceeded(app.appid, app.rate_per_minute)
        if app.max_bytes is not None and context.body_size > app.max_bytes:
            raise refusals.body_over_app_limit(context.body_size, app.max_bytes)

    def _authorise(self, request: ExchangeRequest, app: App, context: RequestContext) -> None:
        """What the request asks — purpose, business type, action — against the app's grants, the
        direction between levels, and the business type's rules (an interface whose rule tests fail
        is not enabled, spec 6.1 c)."""
        purpose, business_code = split_busicode(request.busicode)
        if purpose not in PURPOSES or business_code not in BUSINESS_TYPES:
            raise refusals.busicode_unknown(request.busicode)
        try:
            action = Action(request.action)
        except ValueError:
            raise refusals.action_unknown(request.action) from None
        if request.busicode not in app.busicodes or action.value not in app.actions:
            raise refusals.not_granted(app.appid, request.busicode, action.value, action.label)
        business = self.catalog.get(business_code)
        if business is None:
            raise refusals.business_not_served(business_code, BUSINESS_TYPES[business_code])
        self.directions.check(purpose, business_code, action, Party(app.level, app.region))
        assert context.rules is not None
        failures = context.rules.failures(business_code)
        if failures:
            raise refusals.interface_disabled(business_code, "; ".join(result.detail for result in failures))
        context.purpose, context.business, context.action = purpose, business, action


def _holds_nul(value: object) -> bool:
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
