"""The one place where a node's parts are wired together (HTTP and SOAP framings sit on top)."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from tzsb.audit import WITHOUT_LOG_VARIABLE, InteractionLog, RefusalTally
from tzsb.catalog import Catalog, load_catalog
from tzsb.clock import Clock, SystemClock
from tzsb.errors import ConfigurationError
from tzsb.exchange import (
    Admission,
    Answers,
    CursorCodec,
    DigestPool,
    Exchange,
    LocalExecution,
    LogQueries,
    PulledWrites,
    ReadAhead,
    ReplayBounds,
    RoutedExecution,
)
from tzsb.registry import (
    DIRECTIONS_FILE,
    AppRegistry,
    CollisionPolicy,
    Collisions,
    DirectionPolicy,
    Lockouts,
    MasterKey,
    Party,
    RateLimiter,
    ServiceRegistry,
    load_directions,
)
from tzsb.rules import RULES_FILE, RuleBook
from tzsb.settings import Settings
from tzsb.store import Store, natural_keys, open_store
from tzsb.sync import LinkRegistry, SyncRunner

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Node:
    settings: Settings
    store: Store
    catalog: Catalog
    registry: AppRegistry
    rules: RuleBook
    exchange: Exchange
    clock: Clock
    links: LinkRegistry
    sync: SyncRunner
    #: Providers requests are routed to (5.2.2).
    services: ServiceRegistry

    def close(self) -> None:
        self.exchange.close()
        self.store.dispose()


#: glibc's mallopt parameters (malloc.h) and the values a node sets.
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
_MMAP_THRESHOLD_BYTES: Final = 8 << 20
_TRIM_THRESHOLD_BYTES: Final = 32 << 20


def keep_freed_memory() -> bool:
    """Let glibc keep a request's freed buffers for the next request instead of returning them to
    the system; returns whether it was set (glibc only; an operator's own threshold settings win).

    A 1,000-record request holds several buffers of the body's size (the body, the busilist text,
    the sign text, the documents). glibc's default thresholds adapt to about their size, so each
    request's buffers were mapped afresh or the heap trimmed after it: 1,100 page faults per
    request in the worker thread's arena, 2 ms of a 20 ms request (docs/performance.md). Above
    the thresholds set here (8 MiB per allocation, 32 MiB free at the top of a heap) memory still
    goes back to the system.
    """
    if platform.libc_ver()[0] != "glibc" or _operator_tunes_malloc(os.environ):
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES) and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES))


def _operator_tunes_malloc(environment: Mapping[str, str]) -> bool:
    """Whether the environment sets glibc's malloc thresholds (then neither is changed here)."""
    tunables = environment.get("GLIBC_TUNABLES", "")
    return bool({"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(environment)) or any(
        f"glibc.malloc.{name}=" in tunables for name in ("mmap_threshold", "trim_threshold")
    )


def tune_runtime() -> None:
    """Garbage-collector and allocator settings for a long-running node process.

    A 1,000-record request allocates tens of thousands of objects; with the default thresholds the
    collector ran full passes over every long-lived object (the app's modules, SQLAlchemy's caches)
    in the middle of requests — a third of the validation time in bench/validate_cost.py. Objects
    alive after start-up are frozen out of collection, and young collections run less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(200_000, 50, 100)
    keep_freed_memory()


def load_master_key(settings: Settings) -> MasterKey:
    if settings.master_key:
        return MasterKey.from_hex(settings.master_key)
    return MasterKey.read(settings.master_key_path)


def build_node(settings: Settings, clock: Clock | None = None, *, migrate: bool = True) -> Node:
    """Open the store, load catalog and keys, and assemble the exchange pipeline."""
    if not settings.database_url and not (settings.home / "tzsb.toml").exists():
        raise ConfigurationError(
            f"{settings.home} is not a node home; create one with `tzsb init --home {settings.home} ...`"
        )
    clock = clock or SystemClock()
    master_key = load_master_key(settings)
    store = open_store(settings.database, migrate=migrate)
    catalog = load_catalog(settings.catalog_dir)
    registry = AppRegistry(store, master_key, clock, cache_seconds=settings.app_cache_seconds)
    rules = RuleBook(catalog, settings.home / RULES_FILE, clock, check_every=settings.rules_check_seconds)
    if migrate:
        # The store's natural-key indexes follow this node's catalog (a deployment's may differ), and
        # the fields cross-record rules find records by are indexed the same way. A rule added by a
        # reload of rules.json gets its index at the next start.
        matches = {match for validator in rules.current().validators.values() for match in validator.related_matches}
        natural_keys.index_catalog(store, catalog, also=sorted(matches))
    directions = DirectionPolicy(
        Party(settings.level, settings.region), load_directions(settings.home / DIRECTIONS_FILE)
    )
    exchange = build_exchange(settings, store, catalog, registry, rules, master_key, clock, directions)
    links = LinkRegistry(store, master_key, clock, directions.node, directions)
    sync = SyncRunner(
        store,
        catalog,
        links,
        PulledWrites(exchange.local, exchange.answers, rules, clock),
        InteractionLog(store),
        clock,
        attempts=settings.sync_attempts,
        backoff_seconds=settings.sync_backoff_seconds,
        failure_wait_seconds=settings.sync_failure_wait_seconds,
        lease_seconds=settings.sync_lease_seconds,
    )
    assert exchange.routed is not None
    return Node(settings, store, catalog, registry, rules, exchange, clock, links, sync, exchange.routed.services)


def build_exchange(
    settings: Settings,
    store: Store,
    catalog: Catalog,
    registry: AppRegistry,
    rules: RuleBook,
    master_key: MasterKey,
    clock: Clock,
    directions: DirectionPolicy | None = None,
) -> Exchange:
    """The request pipeline and every collaborator of its steps."""
    several_processes = settings.workers > 1
    digests = DigestPool()
    read_ahead = ReadAhead(store, capacity=settings.read_ahead_pages)
    lockouts = Lockouts(store, clock, shared=several_processes)
    admission = Admission(
        catalog,
        registry,
        rules,
        directions
        or DirectionPolicy(Party(settings.level, settings.region), load_directions(settings.home / DIRECTIONS_FILE)),
        lockouts,
        # Several server processes count each app's requests together, in the database.
        RateLimiter(clock, shared=store if several_processes else None),
        digests,
        clock,
        timestamp_window=settings.timestamp_window,
    )
    without_log = os.environ.get(WITHOUT_LOG_VARIABLE) == "1"
    if without_log:
        logger.warning(
            "%s=1: requests are answered WITHOUT writing the interaction log (for bench/audit_cost.py only; "
            "the spec requires every interaction to be logged)",
            WITHOUT_LOG_VARIABLE,
        )
    answers = Answers(
        store,
        InteractionLog(store, writes=not without_log),
        clock,
        RefusalTally(store, clock, per_minute=settings.unidentified_refusals_per_minute),
        ReplayBounds(
            store,
            clock,
            answer_ttl=timedelta(seconds=settings.answer_ttl_seconds),
            quota_bytes=settings.answer_quota_bytes,
        ),
    )
    codec = CursorCodec(master_key.derive("tzsb/cursor"))
    local = LocalExecution(
        store,
        catalog,
        answers,
        codec,
        read_ahead,
        Collisions(store, clock, lockouts, CollisionPolicy(keys=settings.collision_lockout_keys)),
        page_size=settings.page_size,
        max_page_size=settings.max_page_size,
    )
    logs = LogQueries(store, answers, codec, page_size=settings.page_size, max_page_size=settings.max_page_size)
    routed = RoutedExecution(
        ServiceRegistry(store, master_key, clock, frozenset(catalog)),
        answers,
        catalog,
        fail_max=settings.route_failures_to_pause,
        reset_seconds=settings.route_pause_seconds,
    )
    return Exchange(admission, answers, local, clock, read_ahead=read_ahead, digests=digests, logs=logs, routed=routed)
