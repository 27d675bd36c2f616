"""Synchronous request handlers run on the event loop's own thread, inside a greenlet.

A key query does about 0.3 ms of Python and a dozen calls into SQLite of a few microseconds each.
Handed to a worker thread, as Starlette does with synchronous code, each of those calls releases the
GIL and the thread queues to take it back behind the other request threads: with 16 connections a
served key query made about 35 voluntary context switches and a fifth of its CPU was system time.
Run on the loop's thread instead, the same code holds the GIL from start to end, and only its real
waits leave the thread: the group commit of its claim and log row, a page read ahead by another
thread, a lock another writer holds, a call to another node. At each of them the handler's greenlet
hands an awaitable to the loop (the pattern of SQLAlchemy's asyncio layer) and the loop serves
other requests meanwhile.

Code that may wait asks ``on_loop()`` and, there, waits through ``wait_for`` (or ``future_result``,
``Wake``, ``awaited``) or runs the blocking part through ``in_thread``; called from any other thread,
all of them are plain calls (``awaited``: the coroutine runs on ``inline``'s own loop). Whatever runs
on the loop must never block otherwise: every request of the process waits while it does. So only
handlers whose work is all in this process, or awaited, run here (a SQLite node's interface;
``web.server`` decides): they hand writes to a thread, and await a routed request's provider.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import anyio.to_thread
import greenlet

Result = TypeVar("Result")


class _LoopGreenlet(greenlet.greenlet):  # type: ignore[misc]  # greenlet ships no types
    """A handler's greenlet; ``driver`` is the loop's greenlet that awaits on its behalf."""

    def __init__(self, run: Callable[..., Any], driver: greenlet.greenlet) -> None:
        super().__init__(run, driver)
        self.driver = driver


def on_loop() -> bool:
    """Whether the caller runs inside ``run_on_loop`` (on the event loop's thread)."""
    return isinstance(greenlet.getcurrent(), _LoopGreenlet)


async def run_on_loop(function: Callable[..., Result], *args: Any) -> Result:
    """``function(*args)`` on this thread, each of its waits (``wait_for``) awaited by the loop; what
    it raises is raised here, and what the await raises (a cancellation) is raised at its wait."""
    handler = _LoopGreenlet(function, greenlet.getcurrent())
    # The handler sees the task's context variables, as a worker thread started by anyio would.
    handler.gr_context = contextvars.copy_context()
    step = handler.switch(*args)
    while not handler.dead:
        try:
            value = await step
        except GeneratorExit:  # this coroutine is being closed unrun: nothing is left to resume the handler
            raise
        except BaseException:  # raised in the handler, at the wait that handed the awaitable over
            step = handler.throw(*sys.exc_info())
        else:
            step = handler.switch(value)
    result: Result = step
    return result


def wait_for(awaitable: Awaitable[Result]) -> Result:
    """Inside ``run_on_loop``: suspend this handler until the loop has awaited ``awaitable``."""
    current = greenlet.getcurrent()
    if not isinstance(current, _LoopGreenlet):
        raise RuntimeError("wait_for is only for handlers run by run_on_loop")
    result: Result = current.driver.switch(awaitable)
    return result


def awaited(make: Callable[[], Coroutine[Any, Any, Result]], timeout: float | None = None) -> Result:
    """The result of the coroutine ``make()`` returns: on the loop, awaited by it (``wait_for``); in
    any other thread, run on ``inline``'s own event loop, in a thread of its own, while this thread
    waits, at most ``timeout`` seconds (then the coroutine is cancelled and ``TimeoutError`` raised).
    What such coroutines keep between calls (a provider's connections) is kept per loop."""
    if on_loop():
        return wait_for(make())
    future = asyncio.run_coroutine_threadsafe(make(), _own_loop())
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise


_own_loop_lock = threading.Lock()
_own_loop_running: asyncio.AbstractEventLoop | None = None


def _own_loop() -> asyncio.AbstractEventLoop:
    """``inline``'s own event loop, started on first use in a daemon thread that runs it for the
    life of the process (a coroutine's connections outlive the call that made them)."""
    global _own_loop_running
    loop = _own_loop_running
    if loop is not None:
        return loop
    with _own_loop_lock:
        if _own_loop_running is None:
            started = asyncio.new_event_loop()
            threading.Thread(target=started.run_forever, name="tzsb-inline-loop", daemon=True).start()
            _own_loop_running = started
        return _own_loop_running


def in_thread(function: Callable[..., Result], *args: Any) -> Result:
    """``function(*args)``: in a worker thread when called on the loop (it may block), else right here."""
    if not on_loop():
        return function(*args)
    return wait_for(anyio.to_thread.run_sync(function, *args))


def future_result(future: concurrent.futures.Future[Result], timeout: float | None = None) -> Result:
    """``future.result(timeout)``, waited for by the loop when called on it: past ``timeout`` it
    raises ``TimeoutError`` and leaves ``future`` running, as ``Future.result`` does."""
    if not on_loop() or future.done():
        return future.result(timeout)
    wait_for(asyncio.wait((asyncio.wrap_future(future),), timeout=timeout))
    if not future.done():
        raise TimeoutError
    return future.result()


#: The threads that wait for locks on behalf of handlers on the loop: apart from the worker threads
#: of requests, so that a lock's holder never waits for one of them to come free.
_lock_waiters = concurrent.futures.ThreadPoolExecutor(64, thread_name_prefix="tzsb-lock-wait")


def take(acquire: Callable[[], object], release: Callable[[], object]) -> None:
    """``acquire()``, which blocks until it holds a lock (never an ``RLock``: the lock is taken in
    one thread and released in another): on the loop, in a thread of its own. Should the handler
    stop waiting (cancelled) before or after that thread took the lock, the lock is released
    again, since no one would ever release it."""
    if not on_loop():
        acquire()
        return
    decided = threading.Lock()
    wanted, taken = True, False

    def acquire_in_thread() -> None:
        nonlocal taken
        acquire()
        with decided:
            taken = wanted
        if not taken:
            release()

    try:
        wait_for(asyncio.wrap_future(_lock_waiters.submit(acquire_in_thread)))
    except BaseException:
        with decided:
            wanted = False
            release_now = taken
        if release_now:
            release()
        raise


class Wake:
    """A one-shot signal from any thread to a handler on the loop (made on the loop, by the handler)."""

    __slots__ = ("_future", "_loop")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._future: asyncio.Future[None] = self._loop.create_future()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the handler waits on."""
        return self._loop

    def set(self) -> None:
        """Let the handler resume (from any thread; after the loop stopped there is no one to wake)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: its handlers are gone
            self._loop.call_soon_threadsafe(self._resolve)

    @staticmethod
    def set_all(wakes: list[Wake]) -> None:
        """``set`` each of ``wakes``, with one call into each loop rather than one per handler (each
        call from another thread writes to the loop's wake-up pipe)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for wake in wakes:
            by_loop.setdefault(wake._loop, []).append(wake._future)
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for loop, futures in by_loop.items():
            if loop is here:  # (a batch committed on the loop itself)
                _resolve_all(futures)
                continue
            with contextlib.suppress(RuntimeError):  # the loop is closed: its handlers are gone
                loop.call_soon_threadsafe(_resolve_all, futures)

    def _resolve(self) -> None:
        if not self._future.done():
            self._future.set_result(None)

    def wait(self) -> None:
        wait_for(self._future)


def _resolve_all(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)
