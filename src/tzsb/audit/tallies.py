"""Refusals of unidentified callers, added up per client address and minute instead of logged one by one.

A caller that never proved who it is — no known app, no valid signature yet — could otherwise
grow the database by a log row per junk request (3,000 rows and 35 MB in seconds, measured). Its
refusals are counted in memory and written as one row per address and minute; an address whose
unidentified refusals pass a limit within a minute is refused at once, before its body is read
for anything, until the minute ends.
"""

from __future__ import annotations

import threading

from tzsb.clock import Clock
from tzsb.store import Store, refusal_tallies


class RefusalTally:
    def __init__(self, store: Store, clock: Clock, per_minute: int = 60) -> None:
        self.store = store
        self.clock = clock
        self.per_minute = per_minute
        self._lock = threading.Lock()
        #: (address, minute) -> [count not yet written, last code, count in all this minute]
        self._counts: dict[tuple[str, int], list[int | str]] = {}

    def _minute(self) -> int:
        return int(self.clock.now().timestamp() // 60)

    def over_limit(self, client_addr: str) -> bool:
        """Whether this address has had more unidentified refusals this minute than the limit."""
        entry = self._counts.get((client_addr, self._minute()))
        return entry is not None and int(entry[2]) >= self.per_minute

    def count(self, client_addr: str, code: str) -> None:
        """Count one refusal; written later, with the others of its address and minute."""
        minute = self._minute()
        with self._lock:
            entry = self._counts.setdefault((client_addr, minute), [0, code, 0])
            entry[0] = int(entry[0]) + 1
            entry[1] = code
            entry[2] = int(entry[2]) + 1
        if any(key[1] < minute for key in list(self._counts)):
            self.flush()

    def flush(self, *, everything: bool = False) -> int:
        """Write the counts of ended minutes (all counts: ``everything``); returns rows written."""
        minute = self._minute()
        with self._lock:
            due = {
                key: entry for key, entry in self._counts.items() if int(entry[0]) and (everything or key[1] < minute)
            }
            for key in due:
                if key[1] < minute:
                    del self._counts[key]
                else:
                    self._counts[key] = [0, due[key][1], due[key][2]]
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
