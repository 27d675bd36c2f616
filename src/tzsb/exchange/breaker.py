"""A circuit breaker per provider: after repeated failures the provider is not asked for a while,
then one request probes it.

Our own rather than pybreaker's: pybreaker holds its breaker's lock for the whole of the guarded
call, so every routed request to one provider waited for the one before it (a routing node asked
each provider one request at a time, and one slow provider held all its requesters in line for
its timeout). Here the lock guards only the state; the calls themselves run side by side.

States: ``closed`` (asked; consecutive failures counted), ``open`` (not asked until the pause is
over), ``half-open`` (the pause is over: one request probes the provider while the others are still
refused; its success closes the breaker, its failure opens it again for a full pause).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final, TypeVar

from tzsb import inline

Result = TypeVar("Result")

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half-open"


class BreakerOpen(Exception):
    """The provider is not asked: the breaker is open (or another request is probing it)."""

    def __init__(self, name: str, remaining_seconds: float) -> None:
        super().__init__(f"the circuit breaker of {name} is open for {remaining_seconds:.1f} s more")
        self.remaining_seconds = remaining_seconds


class CircuitBreaker:
    """Counts the failures of calls to one provider and refuses calls while it is open.

    ``counted``: the exception type that is a failure of the provider (others pass through without
    being counted). ``note(state, error)`` is called after each change of state, one at a time and
    with the state as it then is, so that the last note kept is the current state.
    """

    def __init__(
        self,
        name: str,
        *,
        fail_max: int,
        reset_seconds: float,
        counted: type[BaseException],
        note: Callable[[str, str | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fail_max < 1:
            raise ValueError("fail_max must be at least 1")
        self.name = name
        self.fail_max = fail_max
        self.reset_seconds = reset_seconds
        self._counted = counted
        self._note = note
        self._clock = clock
        self._lock = threading.Lock()
        self._note_lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._last_error: str | None = None

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def call(self, function: Callable[[], Result]) -> Result:
        """``function()``'s result; raises ``BreakerOpen`` without calling it while the breaker is open."""
        probing = self._admit()
        try:
            result = function()
        except self._counted as failure:
            self._failed(failure, probing)
            raise
        except BaseException:
            if probing:  # not the provider's failure: let the next request probe instead
                with self._lock:
                    self._state, self._opened_at = OPEN, self._clock() - self.reset_seconds
                self._noted()
            raise
        self._succeeded(probing)
        return result

    def _admit(self) -> bool:
        """Whether this call is the half-open probe; raises ``BreakerOpen`` if it may not be made."""
        with self._lock:
            if self._state == CLOSED:
                return False
            remaining = self._opened_at + self.reset_seconds - self._clock()
            if self._state == OPEN and remaining <= 0:
                self._state = HALF_OPEN
                changed = True
            else:
                # Open, or half-open with the probe still out: refused, told when to come back.
                raise BreakerOpen(self.name, max(remaining, 1.0))
        if changed:
            self._noted()
        return True

    def _failed(self, failure: BaseException, probing: bool) -> None:
        with self._lock:
            self._last_error = str(failure)
            self._failures += 1
            opens = probing or (self._state == CLOSED and self._failures >= self.fail_max)
            if opens:
                self._state, self._opened_at = OPEN, self._clock()
        if opens:
            self._noted()

    def _succeeded(self, probing: bool) -> None:
        with self._lock:
            self._failures = 0
            closes = probing and self._state == HALF_OPEN
            if closes:
                self._state = CLOSED
        if closes:
            self._noted()

    def _noted(self) -> None:
        if self._note is None:
            return
        # Taken through ``inline``: a note may wait (it writes to the store), and a handler on the
        # event loop that waited holding this lock would block the loop for the next one to want it.
        inline.take(self._note_lock.acquire, self._note_lock.release)
        try:
            with self._lock:
                state, error = self._state, self._last_error
            self._note(state, error)
        finally:
            self._note_lock.release()
