"""``/metrics`` in the Prometheus text format (6.3.3: real-time monitoring of the interfaces).

Per business code and action: requests by result and code, records in (writes) and out (query
answers), and a latency histogram — counted as each request is answered (``Exchange.observe``).
At each scrape, from the node's own state: interfaces disabled by failing rule tests, rules.json
reloads and rejections, the store's size, and each sync link's state, lag and parked records.

Labels take only values from the spec's tables (a caller's malformed busicode or action counts as
``other``): a stranger must not be able to grow the metrics without bound.

With several worker processes (``tzsb serve --workers N`` sets ``PROMETHEUS_MULTIPROC_DIR``) each
counts in its own files of that folder and a scrape, whichever worker answers it, adds them all up
(prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from tzsb.app import Node
from tzsb.errors import ErrorCode
from tzsb.exchange import RequestContext
from tzsb.protocol import BUSINESS_TYPES, PURPOSES, Action

#: Seconds: a key query takes milliseconds, a 1,000-record add tens of them, a slow parent seconds.
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_ACTIONS: Final = frozenset(action.value for action in Action)
_CODES: Final = frozenset(code.value for code in ErrorCode)
MULTIPROCESS_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"


def _busicode(value: str) -> str:
    return value if len(value) == 6 and value[:2] in PURPOSES and value[2:] in BUSINESS_TYPES else "other"


class NodeMetrics:
    """The metrics of one node process."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("busicode", "action")
        self.requests = Counter(
            "tzsb_requests", "Requests answered, by busicode, action, result and code.",
            (*labels, "result", "code"), registry=self.registry,
        )  # fmt: skip
        self.records_in = Counter(
            "tzsb_records_in", "Records received in write requests (01, 02, 03).", labels, registry=self.registry
        )
        self.records_out = Counter(
            "tzsb_records_out", "Records answered to queries (04).", labels, registry=self.registry
        )
        self.latency = Histogram(
            "tzsb_request_duration_seconds", "Time from a request's arrival to its answer.", labels,
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.state = NodeStateCollector(node)
        #: The labelled series of each label combination met so far (``labels()`` builds and looks up
        #: its key under a lock on every call: a fifth of the request thread's time outside the
        #: exchange). Bounded, since labels take only values from the spec's tables.
        self._series: dict[tuple[str, str, str, str], _Series] = {}

    def observe(self, context: RequestContext) -> None:
        """Count one answered request (``Exchange.observe``)."""
        result, code = context.outcome or ("0000", "")
        # Only values of the spec's tables become labels (and keys here): see the module's docstring.
        labels = (
            _busicode(context.busicode),
            context.action_code if context.action_code in _ACTIONS else "other",
            result if result in ("0000", "0001") else "0000",
            code if code in _CODES else "",
        )
        series = self._series.get(labels)
        if series is None:
            series = self._series.setdefault(labels, self._labelled(*labels))
        series.requests.inc()
        if series.counts_records_in:
            series.records_in.inc(len(context.records))
        if context.records_out:
            series.records_out.inc(context.records_out)
        series.latency.observe(context.duration_ms / 1000)

    def _labelled(self, busicode: str, action: str, result: str, code: str) -> _Series:
        return _Series(
            requests=self.requests.labels(busicode, action, result, code),
            records_in=self.records_in.labels(busicode, action),
            records_out=self.records_out.labels(busicode, action),
            latency=self.latency.labels(busicode, action),
            counts_records_in=result == "0001" and action in ("01", "02", "03"),
        )

    def exposition(self) -> bytes:
        """The text a scrape receives: this process's counters (or, with several workers, all of
        theirs added up) and the node's state now."""
        registry = CollectorRegistry()
        if os.environ.get(MULTIPROCESS_VARIABLE):
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Counted(self.registry))
        registry.register(self.state)
        return generate_latest(registry)


@dataclass(frozen=True, slots=True)
class _Series:
    """The series one answered request moves, for one combination of its labels."""

    requests: Counter
    records_in: Counter
    records_out: Counter
    latency: Histogram
    counts_records_in: bool


class _Counted(Collector):
    """This process's own counters, as one collector of the scrape's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


class NodeStateCollector(Collector):
    """Gauges read from the node when scraped."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        rules = self.node.rules
        compiled = rules.current()
        disabled = GaugeMetricFamily(
            "tzsb_interface_disabled", "1 for a business type whose rule tests fail (not served).", labels=["business"]
        )
        for business in sorted(compiled.disabled):
            disabled.add_metric([business], 1)
        yield disabled
        yield GaugeMetricFamily(
            "tzsb_rules_error", "1 while rules.json is rejected.", value=1 if rules.last_error else 0
        )
        yield GaugeMetricFamily("tzsb_rule_reloads", "rules.json reloads in this process.", value=rules.reloads)
        yield GaugeMetricFamily("tzsb_rule_rejections", "rules.json rejections in this process.", value=rules.rejected)
        yield GaugeMetricFamily("tzsb_store_bytes", "The database's size on disk.", value=self.node.store.size_bytes())
        state = GaugeMetricFamily("tzsb_link_state", "1 for each sync link's current state.", labels=["link", "state"])
        lag_changes = GaugeMetricFamily(
            "tzsb_link_lag_changes", "Changes a sync link has still to send.", labels=["link"]
        )
        lag_seconds = GaugeMetricFamily(
            "tzsb_link_lag_seconds", "Age of the oldest change still to send (up) or of the last success (down).",
            labels=["link"],
        )  # fmt: skip
        parked = GaugeMetricFamily("tzsb_link_parked", "Records the other side refused.", labels=["link"])
        for status in self.node.sync.status():
            name = status.link.name
            state.add_metric([name, status.link.state], 1)
            if status.lag_changes is not None:
                lag_changes.add_metric([name], status.lag_changes)
            if status.lag_seconds is not None:
                lag_seconds.add_metric([name], status.lag_seconds)
            parked.add_metric([name], status.parked)
        yield from (state, lag_changes, lag_seconds, parked)
