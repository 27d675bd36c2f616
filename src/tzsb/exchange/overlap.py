"""Digest a large request's sign text in a helper thread while its busilist is parsed.

hashlib leaves the GIL, and so do recent versions of cryptography for SM3 and SM4 (an older one
gives the same result without the overlap), so the two overlap on two cores. Only where it pays
and costs a stranger little: see ``DigestPool.parse_ahead``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from tzsb import inline
from tzsb.errors import ExchangeError
from tzsb.protocol import ExchangeRequest, SignAlgorithm, verify_canonical
from tzsb.registry import App

#: From this size of sign text on, the digests are computed in a helper thread while the request's
#: thread parses the busilist; below it, handing them over costs more than it saves.
DIGESTS_ASIDE_BYTES: Final = 64 * 1024
#: Beyond this size a busilist is parsed only once its caller is known and admitted: parsing ahead
#: costs an unauthenticated caller nothing, and the objects weigh several times the text.
PARSE_AHEAD_MAX_BYTES: Final = 4 * 1024 * 1024
#: How long a request's thread (perhaps the event loop's) waits for a helper to start its digests
#: before it parses the busilist: a thread hand-off takes tens of microseconds.
HELPER_START_WAIT_SECONDS: Final = 0.0005


@dataclass(frozen=True, slots=True)
class Digests:
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


class DigestPool:
    """The helper threads that digest sign texts (one per usable CPU, at least two)."""

    def __init__(self) -> None:
        self._helpers = max(2, usable_cpus())
        self._executor = ThreadPoolExecutor(max_workers=self._helpers, thread_name_prefix="tzsb-digest")
        #: Digests submitted and not yet finished: with every helper taken, none can start at once.
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    @staticmethod
    def parse_ahead(request: ExchangeRequest, app: App, has_failures: bool, body_size: int, sign_size: int) -> bool:
        """Whether to parse the busilist while the sign is checked: a large busilist still to be parsed
        (one sent as an array already is), within the app's byte limit, from a caller with no recent
        signature failures."""
        return (
            request.busilist_value is None
            and DIGESTS_ASIDE_BYTES <= sign_size <= PARSE_AHEAD_MAX_BYTES
            and not has_failures
            and (app.max_bytes is None or body_size <= app.max_bytes)
        )

    def digest_while_parsing(
        self, digests: Digests, request: ExchangeRequest
    ) -> tuple[str | None, str, list[dict[str, Any]] | ExchangeError]:
        """The digests, computed in a helper thread while this thread parses the busilist."""
        started = threading.Event()

        def digested() -> tuple[str | None, str]:
            started.set()
            try:
                return digests()
            finally:
                with self._in_flight_lock:
                    self._in_flight -= 1

        with self._in_flight_lock:
            helper_free = self._in_flight < self._helpers
            self._in_flight += 1
        try:
            pending = self._executor.submit(digested)
        except BaseException:
            with self._in_flight_lock:
                self._in_flight -= 1
            raise
        # The helper needs the GIL to reach hashlib, which then leaves it; orjson keeps it for the
        # whole parse. Parsing at once, the helper started only after the parse: the two ran in
        # series (1.9 + 1.4 ms for a 1,000-record add). A short wait lets it start first (this may
        # be the event loop's thread: only when a helper is free, and never long); should it not
        # start in time, the busilist is parsed meanwhile all the same.
        if helper_free:
            started.wait(HELPER_START_WAIT_SECONDS)
        # Parsed before the caller is known to be genuine, but its faults told only after that.
        parsed = parsed_records(request)
        signer, fingerprint = inline.future_result(pending)
        return signer, fingerprint, parsed

    def close(self) -> None:
        self._executor.shutdown()


def parsed_records(request: ExchangeRequest) -> list[dict[str, Any]] | ExchangeError:
    """The busilist's records, or the refusal to raise when its turn comes."""
    try:
        return request.records()
    except ExchangeError as refusal:
        return refusal


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
