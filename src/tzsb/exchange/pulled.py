"""Records pulled from the parent over a sync link, written here as a caller's writes would be.

A pulled page is not a request: nobody signed it to this node, so there is nothing to admit. Its
records still go through everything else a caller's add or delete goes through — the rules in
force, the plan against the stored records (upsert by timestamp, one source per record), the
change counter, the claim of its ``random`` and a log row, all in one transaction — under the
link's own identity (``link:<name>``), which is the records' source and their last writer. That
identity is how the upward feed knows not to send them back up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from tzsb.catalog import BusinessType
from tzsb.clock import Clock
from tzsb.errors import ExchangeError
from tzsb.exchange.answers import Answers
from tzsb.exchange.context import Admitted, RequestContext
from tzsb.exchange.local import LocalExecution
from tzsb.protocol import RESULT_FAILURE, Action, ExchangeRequest, failure_datalist
from tzsb.registry import App
from tzsb.rules import RuleBook


class PulledWrites:
    """Applies pulled records to the node's own store under a link's identity."""

    def __init__(self, local: LocalExecution, answers: Answers, rules: RuleBook, clock: Clock) -> None:
        self.local = local
        self.answers = answers
        self.rules = rules
        self.clock = clock

    def apply(
        self,
        identity: App,
        purpose: str,
        business: BusinessType,
        action: Action,
        records: Sequence[dict[str, Any]],
        random: str,
        origin: str,
    ) -> dict[str, Any]:
        """Write ``records`` (01: add or newer; 03: delete by key) as ``identity``; returns the
        datalist a caller would have received (success, or the refusal with its per-record
        details). ``origin`` names where they came from in the log row (the link)."""
        busicode = purpose + business.code
        busilist_text = orjson.dumps(list(records)).decode("utf-8")
        context = RequestContext(client_addr=origin[:64], now=self.clock.now())
        request = ExchangeRequest(
            appid=identity.appid,
            busicode=busicode,
            action=action.value,
            busilist_text=busilist_text,
            random=random,
            sign="",
            signed_params={},
        )
        context.received(request)
        context.app = identity
        context.purpose = purpose
        context.business = business
        context.action = action
        context.fingerprint = hashlib.sha256(f"{busicode}|{action.value}|{busilist_text}".encode()).hexdigest()
        context.records = list(records)
        rules = self.rules.current()
        context.rules = rules
        try:
            stored = self.answers.stored_answer(context)
            answer = stored or self.local.execute(context, Admitted(request, identity, business, action, rules))
        except ExchangeError as refusal:
            self.answers.log.record(self.answers.entry(context, RESULT_FAILURE, refusal.code.value, refusal.message))
            return failure_datalist(refusal)
        finally:
            self.answers.after(context)
        datalist: dict[str, Any] = orjson.loads(answer)["datalist"]
        return datalist
