"""Handlers on the event loop's thread (``tzsb.inline``): they wait only through the loop, which serves
others meanwhile; off the loop every helper is a plain call."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tzsb import inline


def _ticking(stop: asyncio.Event, ticks: list[float]) -> asyncio.Task[None]:
    """A task that counts the loop's turns while a handler waits: it starves if the handler blocks."""

    async def tick() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.005)

    return asyncio.ensure_future(tick())


async def _on_loop_while_ticking(function: Callable[[], Any]) -> tuple[Any, int]:
    """``function`` run on the loop beside a ticking task: its result and the ticks seen meanwhile."""
    stop, ticks = asyncio.Event(), []
    ticker = _ticking(stop, ticks)
    await asyncio.sleep(0)
    try:
        result = await inline.run_on_loop(function)
    finally:
        stop.set()
        await ticker
    return result, len(ticks)


def test_a_handler_runs_on_the_loops_thread_and_returns_or_raises_as_called() -> None:
    async def main() -> None:
        loop_thread = threading.get_ident()
        assert await inline.run_on_loop(lambda a, b: (a + b, threading.get_ident(), inline.on_loop()), 2, 3) == (
            5,
            loop_thread,
            True,
        )
        with pytest.raises(ZeroDivisionError):
            await inline.run_on_loop(lambda: 1 / 0)
        assert not inline.on_loop()

    asyncio.run(main())


def test_handlers_interleave_at_their_waits() -> None:
    # The first waits for what only the second gives: with a blocking wait they would never finish.
    async def main() -> list[str]:
        handed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        order: list[str] = []

        def waiting() -> str:
            order.append("first waits")
            value = inline.wait_for(handed)
            order.append("first resumes")
            return value

        def giving() -> str:
            order.append("second gives")
            handed.set_result("given")
            return "done"

        results = await asyncio.gather(inline.run_on_loop(waiting), inline.run_on_loop(giving))
        assert results == ["given", "done"]
        return order

    assert asyncio.run(main()) == ["first waits", "second gives", "first resumes"]


def test_an_exception_of_the_awaited_is_raised_at_the_handlers_wait() -> None:
    async def main() -> str:
        failing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        failing.set_exception(LookupError("gone"))

        def handler() -> str:
            try:
                inline.wait_for(failing)
            except LookupError as error:
                return f"caught {error}"
            return "not raised"

        return await inline.run_on_loop(handler)

    assert asyncio.run(main()) == "caught gone"


class _Never:
    def __await__(self) -> Any:
        raise AssertionError("not to be awaited")


def test_waiting_is_only_for_handlers_on_the_loop() -> None:
    with pytest.raises(RuntimeError, match="only for handlers run by run_on_loop"):
        inline.wait_for(_Never())


def test_blocking_work_goes_to_a_worker_thread_on_the_loop_and_runs_in_place_elsewhere() -> None:
    def blocking() -> int:
        time.sleep(0.1)
        return threading.get_ident()

    async def main() -> tuple[int, int, int]:
        ran_in, ticks = await _on_loop_while_ticking(lambda: inline.in_thread(blocking))
        return threading.get_ident(), ran_in, ticks

    loop_thread, ran_in, ticks = asyncio.run(main())
    assert ran_in != loop_thread
    assert ticks >= 5  # the loop went on while the work slept
    assert inline.in_thread(threading.get_ident) == threading.get_ident()


def test_a_futures_result_is_awaited_and_its_timeout_leaves_it_running() -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        release = threading.Event()
        slow = pool.submit(lambda: release.wait(5) and "late")

        async def main() -> tuple[str, int]:
            def handler() -> str:
                with pytest.raises(TimeoutError):
                    inline.future_result(slow, timeout=0.1)
                assert not slow.cancelled()
                release.set()
                return inline.future_result(slow)

            result: str
            result, ticks = await _on_loop_while_ticking(handler)
            return result, ticks

        result, ticks = asyncio.run(main())
    assert result == "late"
    assert ticks >= 5
    done: concurrent.futures.Future[str] = concurrent.futures.Future()
    done.set_result("here")
    assert inline.future_result(done) == "here"


def test_a_lock_another_thread_holds_is_waited_for_off_the_loop() -> None:
    lock = threading.Lock()
    lock.acquire()
    threading.Timer(0.15, lock.release).start()

    async def main() -> int:
        _result, ticks = await _on_loop_while_ticking(lambda: inline.take(lock.acquire, lock.release))
        return ticks

    assert asyncio.run(main()) >= 5
    assert lock.locked()  # held by the handler, now done with it
    lock.release()


def test_a_lock_taken_for_a_cancelled_handler_is_released() -> None:
    lock = threading.Lock()
    lock.acquire()

    async def main() -> None:
        waiting = asyncio.ensure_future(inline.run_on_loop(lambda: inline.take(lock.acquire, lock.release)))
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.sleep(0.05)
        lock.release()  # the worker thread takes it now, for a handler that was cancelled
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(main())
    # The waiting thread took the lock after the handler was cancelled, and gives it back on its own time.
    assert lock.acquire(timeout=5)


def test_a_wake_given_after_the_loop_closed_is_dropped() -> None:
    async def make() -> inline.Wake:
        return inline.Wake()

    wake = asyncio.run(make())
    wake.set()  # no loop to wake: nothing raised
    inline.Wake.set_all([wake])


def test_wakes_set_together_resume_every_handler_with_one_call_into_their_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch's handlers on the loop are woken by one call from the committing thread, not one each."""
    gone = asyncio.run(_make_wake())  # a wake of a loop closed since

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        calls: list[object] = []
        original = loop.call_soon_threadsafe

        def counted(*args: Any) -> Any:
            calls.append(args[0])
            return original(*args)

        monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
        wakes: list[inline.Wake] = []
        made = asyncio.Event()

        def handler(name: str) -> str:
            wakes.append(inline.Wake())
            if len(wakes) == 3:
                made.set()
            wakes[-1].wait()
            return name

        handlers = [asyncio.ensure_future(inline.run_on_loop(handler, name)) for name in "abc"]
        await made.wait()
        threading.Thread(target=inline.Wake.set_all, args=([*wakes, gone],)).start()
        done = await asyncio.gather(*handlers)
        assert len(calls) == 1  # (the closed loop's wake is dropped)
        return list(done)

    assert asyncio.run(main()) == ["a", "b", "c"]


async def _make_wake() -> inline.Wake:
    return inline.Wake()


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def test_a_handler_sees_its_tasks_context_variables() -> None:
    async def main() -> str:
        REQUEST_ID.set("the task's")
        return await inline.run_on_loop(REQUEST_ID.get)

    assert asyncio.run(main()) == "the task's"
