"""The circuit breaker of a provider: it opens after repeated failures, refuses while open, lets one
probe through once the pause is over, and never holds its lock while a call is out."""

from __future__ import annotations

import threading

import pytest

from tzsb.exchange.breaker import CLOSED, HALF_OPEN, OPEN, BreakerOpen, CircuitBreaker


class Failure(Exception):
    pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fail() -> None:
    raise Failure("provider down")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def notes() -> list[tuple[str, str | None]]:
    return []


@pytest.fixture
def breaker(clock: Clock, notes: list[tuple[str, str | None]]) -> CircuitBreaker:
    return CircuitBreaker(
        "p", fail_max=3, reset_seconds=30, counted=Failure, clock=clock,
        note=lambda state, error: notes.append((state, error)),
    )  # fmt: skip


def test_it_opens_after_consecutive_failures_only(breaker: CircuitBreaker, notes: list[tuple[str, str | None]]) -> None:
    for _ in range(2):
        with pytest.raises(Failure):
            breaker.call(_fail)
    assert breaker.call(lambda: "ok") == "ok"  # a success starts the count again
    for _ in range(2):
        with pytest.raises(Failure):
            breaker.call(_fail)
    assert (breaker.state, notes) == (CLOSED, [])
    with pytest.raises(Failure):
        breaker.call(_fail)
    assert (breaker.state, notes) == (OPEN, [(OPEN, "provider down")])


def test_while_open_it_refuses_without_calling_and_says_for_how_long(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        with pytest.raises(Failure):
            breaker.call(_fail)
    clock.now += 12
    called: list[int] = []
    with pytest.raises(BreakerOpen) as refused:
        breaker.call(lambda: called.append(1))
    assert called == [] and refused.value.remaining_seconds == 18


def test_after_the_pause_one_probe_goes_and_its_success_closes_it(
    breaker: CircuitBreaker, clock: Clock, notes: list[tuple[str, str | None]]
) -> None:
    for _ in range(3):
        with pytest.raises(Failure):
            breaker.call(_fail)
    clock.now += 30
    probing = threading.Event()
    release = threading.Event()

    def probe() -> str:
        probing.set()
        release.wait(5)
        return "fine"

    results: list[str] = []
    prober = threading.Thread(target=lambda: results.append(breaker.call(probe)))
    prober.start()
    assert probing.wait(5)
    assert breaker.state == HALF_OPEN
    with pytest.raises(BreakerOpen):  # the others wait for the probe's verdict
        breaker.call(lambda: "not asked")
    release.set()
    prober.join(5)
    assert results == ["fine"] and breaker.state == CLOSED
    assert [state for state, _ in notes] == [OPEN, HALF_OPEN, CLOSED]


def test_a_failed_probe_opens_it_for_a_full_pause(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        with pytest.raises(Failure):
            breaker.call(_fail)
    clock.now += 31
    with pytest.raises(Failure):
        breaker.call(_fail)
    assert breaker.state == OPEN
    clock.now += 29
    with pytest.raises(BreakerOpen):
        breaker.call(lambda: "not yet")


def test_an_error_that_is_not_the_providers_is_not_counted(breaker: CircuitBreaker) -> None:
    for _ in range(5):
        with pytest.raises(KeyError):
            breaker.call(lambda: {}["missing"])
    assert breaker.state == CLOSED


def test_calls_run_side_by_side(breaker: CircuitBreaker) -> None:
    """Two calls are out at once: the second does not wait for the first to return (pybreaker's
    breaker held its lock through the call, so a routing node asked each provider one at a time)."""
    together = threading.Barrier(2, timeout=5)
    results: list[str] = []

    def both() -> str:
        together.wait()
        return "met"

    threads = [threading.Thread(target=lambda: results.append(breaker.call(both))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == ["met", "met"]


def test_a_probe_ended_by_an_error_not_the_providers_leaves_the_next_request_to_probe(
    breaker: CircuitBreaker, clock: Clock, notes: list[tuple[str, str | None]]
) -> None:
    for _ in range(3):
        with pytest.raises(Failure):
            breaker.call(_fail)
    clock.now += 31
    with pytest.raises(KeyError):
        breaker.call(lambda: {}["missing"])
    # Noted as open again (the stored state is not left at half-open with no probe out) ...
    assert notes[-2:] == [(HALF_OPEN, "provider down"), (OPEN, "provider down")]
    # ... and open with its pause over: the very next request is the probe.
    assert breaker.call(lambda: "ok") == "ok"
    assert (breaker.state, notes[-1]) == (CLOSED, (CLOSED, "provider down"))
