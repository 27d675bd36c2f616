"""The one per-request object: what is known of a request so far, handed from step to step.

Steps read and fill it instead of passing each other the request, the app, the fingerprint and
the trace one argument at a time; its log row and its answer are made from it whatever step
refused it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tzsb.catalog import BusinessType
from tzsb.clock import business_timestamp
from tzsb.errors import ExchangeError
from tzsb.protocol import Action, ExchangeRequest, SignAlgorithm
from tzsb.registry import App
from tzsb.rules import CompiledRules


@dataclass(slots=True)
class RequestContext:
    """One request on its way through the node."""

    #: The TCP peer's address.
    client_addr: str
    #: The node's one clock reading for this request: timestamp window, business "now", claims.
    now: datetime
    #: SHA-256 of a verified TLS client certificate, if one was presented.
    client_cert: str | None = None
    #: ``time.perf_counter()`` when the request arrived (the log row's duration).
    started: float = field(default_factory=time.perf_counter)
    body_size: int = 0

    # -- the envelope, once parsed (also what the log row and answer name) ---------------------
    request: ExchangeRequest | None = None
    appid: str = ""
    busicode: str = ""
    action_code: str = ""
    random: str = ""

    #: Shared with the log entry of the leg sent to a provider, for a routed request ("" otherwise).
    correlation: str = ""

    # -- the caller, once identified and authenticated ------------------------------------------
    app: App | None = None
    #: The secret the caller proved to hold; the answer is signed with it. None: answer unsigned.
    secret: str | None = field(default=None, repr=False)
    algorithm: SignAlgorithm = SignAlgorithm.MD5
    #: SHA-256 of the sign text: tells a retry of this request from another reusing its random.
    fingerprint: str = ""

    # -- what it asks for, once authorised ------------------------------------------------------
    purpose: str = ""
    business: BusinessType | None = None
    action: Action | None = None
    #: One generation of the rules for the whole request, even if the file is reloaded meanwhile.
    rules: CompiledRules | None = None

    # -- its batch ------------------------------------------------------------------------------
    #: The busilist parsed while the sign was checked (or the refusal to raise when its turn comes).
    parsed_ahead: list[dict[str, Any]] | ExchangeError | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    #: Bytes of the answer its random's claim keeps (counted toward the app's quota afterwards).
    kept_bytes: int = 0

    # -- how it ended (for monitoring) ----------------------------------------------------------
    #: (result, code) of the answer: ("0001", "") or ("0000", "E_…").
    outcome: tuple[str, str] | None = None
    #: Records a query answered.
    records_out: int = 0

    def received(self, request: ExchangeRequest) -> None:
        """Note the parsed envelope (from here on the log row and the answer name the caller's ids)."""
        self.request = request
        self.appid, self.busicode, self.action_code, self.random = (
            request.appid,
            request.busicode,
            request.action,
            request.random,
        )

    @property
    def business_now(self) -> str:
        """The clock reading as a business timestamp (``YYYY-MM-DD HH:MM:SS``, Beijing time)."""
        return business_timestamp(self.now)

    @property
    def duration_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request past admission: its caller known, authenticated and allowed what it asks for."""

    request: ExchangeRequest
    app: App
    business: BusinessType
    action: Action
    rules: CompiledRules


def admitted(context: RequestContext) -> Admitted:
    """The admitted parts of ``context`` (only after admission succeeded)."""
    request, app, business, action, rules = (
        context.request,
        context.app,
        context.business,
        context.action,
        context.rules,
    )
    if request is None or app is None or business is None or action is None or rules is None:
        raise RuntimeError("the request has not been admitted")
    return Admitted(request, app, business, action, rules)
