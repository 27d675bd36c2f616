"""Refusals of unidentified callers, added up per client address and minute instead of logged one by one.

A caller that never proved who it is — no known app, no valid signature yet — could otherwise
grow the database by a log row per junk request (3,000 rows and 35 MB in seconds, measured). Its
refusals are counted in memory and written as one row per address and minute; past a limit within
a minute, an address's requests that fail to identify themselves get a short "too many" refusal
(a caller that signs correctly is still served: many callers may share one address).

An IPv6 caller is counted by its /64 (one host can use a whole /64), and at most ``max_sources``
addresses are counted apart in a minute; the rest share one ``*`` row, so that neither memory
nor the rows written at a minute's end grow with the number of source addresses.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Final

from tzsb import inline
from tzsb.clock import Clock
from tzsb.store import Store, refusal_tallies

#: The source of addresses counted beyond ``max_sources`` in one minute.
OTHERS: Final = "*"


def source_of(client_addr: str) -> str:
    """What one caller is counted as: its IPv4 address, or its IPv6 /64 (as ``2001:db8:1:2::/64``)."""
    try:
        address = ipaddress.ip_address(client_addr)
    except ValueError:
        return client_addr[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RefusalTally:
    def __init__(self, store: Store, clock: Clock, per_minute: int = 60, max_sources: int = 10_000) -> None:
        self.store = store
        self.clock = clock
        self.per_minute = per_minute
        self.max_sources = max_sources
        self._lock = threading.Lock()
        #: (source, minute) -> [count not yet written, last code, count in all this minute]
        self._counts: dict[tuple[str, int], list[int | str]] = {}
        #: The oldest minute still in ``_counts`` (a minute's end is noticed without scanning).
        self._oldest_minute: int | None = None

    def _minute(self) -> int:
        return int(self.clock.now().timestamp() // 60)

    def over_limit(self, client_addr: str) -> bool:
        """Whether this caller has had more unidentified refusals this minute than the limit."""
        minute = self._minute()
        entry = self._counts.get((source_of(client_addr), minute)) or self._counts.get((OTHERS, minute))
        return entry is not None and int(entry[2]) >= self.per_minute

    def count(self, client_addr: str, code: str) -> None:
        """Count one refusal; written later, with the others of its source and minute."""
        minute = self._minute()
        source = source_of(client_addr)
        with self._lock:
            if (source, minute) not in self._counts and len(self._counts) >= self.max_sources:
                source = OTHERS
            entry = self._counts.setdefault((source, minute), [0, code, 0])
            entry[0] = int(entry[0]) + 1
            entry[1] = code
            entry[2] = int(entry[2]) + 1
            if self._oldest_minute is None:
                self._oldest_minute = minute
            ended = self._oldest_minute < minute
        if ended:
            self.flush()

    def tick(self) -> None:
        """Write the counts of a minute that has ended, if one has (a comparison when none has)."""
        oldest = self._oldest_minute
        if oldest is not None and oldest < self._minute():
            # Up to thousands of rows: a handler on the event loop has them written in a thread.
            inline.in_thread(self.flush)

    def flush(self, *, everything: bool = False) -> int:
        """Write the counts of ended minutes (all counts: ``everything``); returns rows written."""
        minute = self._minute()
        with self._lock:
            due = {
                key: entry for key, entry in self._counts.items() if int(entry[0]) and (everything or key[1] < minute)
            }
            # Ended minutes leave memory whether or not they had counts still to write.
            for key in [key for key in self._counts if key[1] < minute]:
                del self._counts[key]
            for key, entry in due.items():
                if key[1] >= minute:
                    self._counts[key] = [0, entry[1], entry[2]]
            self._oldest_minute = min((key[1] for key in self._counts), default=None)
        tallies = [
            refusal_tallies.Tally(address, key_minute, int(entry[0]), str(entry[1]))
            for (address, key_minute), entry in due.items()
        ]
        if tallies:
            with self.store.write() as connection:
                refusal_tallies.add(connection, tallies)
        return len(tallies)

    def listing(self, limit: int = 100) -> list[refusal_tallies.Tally]:
        """The newest tallies (what is still in memory is written first)."""
        self.flush(everything=True)
        with self.store.read() as connection:
            return refusal_tallies.listing(connection, limit=limit)
