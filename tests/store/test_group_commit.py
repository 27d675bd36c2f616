"""Group commit: the small writes of concurrent callers share transactions; none returns before its
own work committed; a failing unit fails alone. Request handlers on the event loop's thread
(``tzsb.inline``) never make the loop wait for the database: their batches are committed at the
loop's next turn when they can start at once, else led by another thread, and the writers' lock is
waited for in one."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb import inline
from tzsb.errors import StoreConflict
from tzsb.store import Store, interaction_log, log_chain, nonces, open_store
from tzsb.store import group_commit as group_commit_module

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.dispose()


def _entry(random: str) -> dict[str, Any]:
    return {
        "at": "2026-12-05T10:00:00.000+08:00", "appid": "app", "busicode": "140101", "action": "04",
        "random": random, "client_addr": "10.0.0.1", "record_count": 1, "result": "0001", "code": "",
        "message": "ok", "duration_ms": 1.0,
    }  # fmt: skip


def _claimed(store: Store, random: str) -> bool:
    with store.read() as connection:
        return nonces.find(connection, "app", random) is not None


def _assert_chained(store: Store, count: int) -> None:
    """``count`` log entries, chained 1 … ``count`` with no gap."""
    with store.read() as connection:
        assert interaction_log.count(connection) == count
        assert log_chain.state(connection).head_seq == count
        seqs = connection.execute(sa.text("SELECT chain_seq FROM interaction_log ORDER BY chain_seq")).scalars().all()
    assert seqs == list(range(1, count + 1))


def test_concurrent_units_share_transactions_and_each_is_durable_when_it_returns(store: Store) -> None:
    seen_after_return: list[bool] = []
    gate = threading.Barrier(8)

    def claim_and_log(connection: Connection, random: str) -> str:
        nonces.claim(connection, "app", random, "f" * 64, b"{}", NOW)
        interaction_log.append(connection, _entry(random))
        return random

    def unit(caller: str) -> None:
        gate.wait()
        for number in range(25):
            random = f"{caller}-{number:03d}"
            assert store.write_grouped(functools.partial(claim_and_log, random=random)) == random
            seen_after_return.append(_claimed(store, random))

    threads = [threading.Thread(target=unit, args=(f"caller{index}",)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert seen_after_return == [True] * 200
    grouped = store.group_commit
    assert grouped.units == 200
    assert grouped.batches < 200  # some commits carried several callers' units
    _assert_chained(store, 200)


def test_a_unit_that_fails_fails_alone(store: Store) -> None:
    with store.write() as connection:
        nonces.claim(connection, "app", "taken-random", "f" * 64, b"{}", NOW)
    outcomes: dict[str, object] = {}
    gate = threading.Barrier(6)

    def unit(random: str) -> None:
        def work(connection: Connection) -> str:
            nonces.claim(connection, "app", random, "f" * 64, b"{}", NOW)
            interaction_log.append(connection, _entry(random))
            return random

        gate.wait()
        try:
            outcomes[random] = store.write_grouped(work)
        except StoreConflict as exc:
            outcomes[random] = exc

    randoms = ["taken-random", *(f"fresh-random-{index}" for index in range(5))]
    threads = [threading.Thread(target=unit, args=(random,)) for random in randoms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert isinstance(outcomes["taken-random"], StoreConflict)
    assert {random: outcomes[random] for random in randoms[1:]} == {random: random for random in randoms[1:]}
    with store.read() as connection:
        logged = connection.execute(sa.text("SELECT random FROM interaction_log")).scalars().all()
    assert sorted(logged) == sorted(randoms[1:])  # the failed unit's entry was rolled back with its claim


def test_a_unit_alone_runs_in_its_own_transaction(store: Store) -> None:
    def fails(connection: Connection) -> None:
        interaction_log.append(connection, _entry("rolled-back"))
        raise ValueError("refused by the unit itself")

    with pytest.raises(ValueError, match="refused by the unit itself"):
        store.write_grouped(fails)
    with store.read() as connection:
        assert interaction_log.count(connection) == 0
        assert log_chain.state(connection).head_seq == 0
    assert store.write_grouped(lambda connection: 42) == 42


def test_the_claims_of_a_transaction_go_in_together_at_its_end(store: Store) -> None:
    """Claims made in one write transaction are inserted in one statement as it ends (a batch's
    claims: one round trip on PostgreSQL); a random claimed twice among them fails all of them."""
    with store.write() as connection:
        for random in ("one", "two", "three"):
            nonces.claim(connection, "app", random, "f" * 64, b"{}", NOW)
    assert [_claimed(store, random) for random in ("one", "two", "three")] == [True, True, True]

    taken = "one of the randoms four of app app, two of app app is claimed already"
    with pytest.raises(StoreConflict, match=taken), store.write() as connection:
        nonces.claim(connection, "app", "four", "f" * 64, b"{}", NOW)
        nonces.claim(connection, "app", "two", "f" * 64, b"{}", NOW)
    assert not _claimed(store, "four")
    with pytest.raises(StoreConflict, match=r"^random one of app app is claimed already$"), store.write() as connection:
        nonces.claim(connection, "app", "one", "f" * 64, b"{}", NOW)


# -- handlers on the event loop's thread (tzsb.inline) ----------------------------------------------


def test_handlers_on_the_loop_and_threads_share_batches_that_no_handler_commits(store: Store) -> None:
    """Units of handlers on the loop and of threads go in the same batches. On a SQLite file the
    loop may commit a batch itself, between handlers, never inside one (``on_loop`` is False)."""
    committed_on: set[tuple[int, bool]] = set()
    seen_after_return: list[bool] = []

    def claim_and_log(connection: Connection, random: str) -> str:
        committed_on.add((threading.get_ident(), inline.on_loop()))
        nonces.claim(connection, "app", random, "f" * 64, b"{}", NOW)
        interaction_log.append(connection, _entry(random))
        return random

    def handler(caller: str) -> None:
        for number in range(10):
            random = f"{caller}-{number:02d}"
            assert store.write_grouped(lambda connection, random=random: claim_and_log(connection, random)) == random
            seen_after_return.append(_claimed(store, random))

    async def main() -> int:
        threads = [threading.Thread(target=handler, args=(f"thread{index}",)) for index in range(4)]
        for thread in threads:
            thread.start()
        await asyncio.gather(*(inline.run_on_loop(handler, f"loop{index}") for index in range(16)))
        for thread in threads:
            thread.join()
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert (loop_thread, True) not in committed_on
    assert seen_after_return == [True] * 200
    grouped = store.group_commit
    assert grouped.units == 200
    assert grouped.batches < 100  # the loop's handlers queued together while a batch committed
    _assert_chained(store, 200)


def test_the_handlers_of_one_loop_turn_share_one_batch_committed_at_its_next(store: Store) -> None:
    """Eight handlers that run in the same turn of the loop queue a unit each: one batch of eight,
    committed by the loop between turns on a SQLite file (else by the committer thread)."""
    answered, committed_on, loop_thread = _batch_of_the_loop(store, [f"turn-{index}" for index in range(8)])
    assert answered == [f"turn-{index}" for index in range(8)]
    grouped = store.group_commit
    if store.suits_loop_handlers:
        assert (grouped.batches, grouped.units, committed_on) == (1, 8, {loop_thread})
    else:  # PostgreSQL: the committer thread leads at once, with the units queued by then
        assert grouped.units == 8 and loop_thread not in committed_on
    _assert_chained(store, 8)


@pytest.mark.parametrize("held_by", ["a thread of this process", "another process"])
def test_a_batch_of_the_loop_waits_for_the_writers_lock_in_the_committer(tmp_path: Path, held_by: str) -> None:
    """The writers' lock is held elsewhere when the loop would commit its batch: the committer thread
    takes it over and waits, while the loop keeps turning; the batch commits once the lock is free."""
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    other = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}") if held_by == "another process" else store
    committed_on: list[int] = []
    try:

        def handler(random: str) -> str:
            def work(connection: Connection) -> str:
                committed_on.append(threading.get_ident())
                interaction_log.append(connection, _entry(random))
                return random

            return store.write_grouped(work)

        async def main(release: threading.Event) -> tuple[int, int]:
            waiting = asyncio.gather(*(inline.run_on_loop(handler, f"loop-{index}") for index in range(3)))
            ticks = await _turns_while_held(waiting, release)
            assert await waiting == ["loop-0", "loop-1", "loop-2"]
            return ticks, threading.get_ident()

        with _writing_elsewhere(store, other) as release:
            ticks, loop_thread = asyncio.run(main(release))
        assert ticks >= 10 and committed_on and loop_thread not in committed_on
        assert _logged(store) == ["elsewhere", "loop-0", "loop-1", "loop-2"]
    finally:
        if other is not store:
            other.dispose()
        store.dispose()


def test_a_failing_unit_of_a_handler_on_the_loop_fails_alone(store: Store) -> None:
    with store.write() as connection:
        nonces.claim(connection, "app", "taken-random", "f" * 64, b"{}", NOW)
    randoms = ["taken-random", *(f"fresh-random-{index}" for index in range(5))]
    outcomes, _, _ = _batch_of_the_loop(store, randoms)
    assert isinstance(outcomes[0], StoreConflict)
    assert outcomes[1:] == randoms[1:]
    with store.read() as connection:
        logged = connection.execute(sa.text("SELECT random FROM interaction_log")).scalars().all()
    assert sorted(logged) == sorted(randoms[1:])


@contextmanager
def _writing_elsewhere(store: Store, writer: Store) -> Iterator[threading.Event]:
    """``writer`` (``store`` itself, or another Store on its file: another process, as far as the lock
    file knows) holds a write transaction, with an entry "elsewhere", until the event yielded is set."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writer.write() as connection:
            interaction_log.append(connection, _entry("elsewhere"))
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    try:
        yield release
    finally:
        release.set()
        holder.join()


async def _turns_while_held(waiting: asyncio.Future[Any], release: threading.Event) -> int:
    """The loop's turns in 0.2 s while ``waiting`` waits for the lock held elsewhere; then it is released."""
    ticks = 0
    started = time.monotonic()
    while time.monotonic() - started < 0.2:
        await asyncio.sleep(0.005)
        ticks += 1
    assert not waiting.done()
    release.set()
    return ticks


def _logged(store: Store) -> list[str]:
    with store.read() as connection:
        return list(connection.execute(sa.text("SELECT random FROM interaction_log ORDER BY chain_seq")).scalars())


@pytest.mark.parametrize("held_by", ["a thread of this process", "another process"])
def test_a_handler_on_the_loop_waits_for_the_writers_lock_without_stopping_the_loop(
    tmp_path: Path, held_by: str
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    other = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}") if held_by == "another process" else store
    try:

        def handler() -> None:
            with store.write() as connection:
                interaction_log.append(connection, _entry("handler on the loop"))

        async def main(release: threading.Event) -> int:
            waiting = asyncio.ensure_future(inline.run_on_loop(handler))
            ticks = await _turns_while_held(waiting, release)
            await waiting
            return ticks

        with _writing_elsewhere(store, other) as release:
            assert asyncio.run(main(release)) >= 10
        assert _logged(store) == ["elsewhere", "handler on the loop"]
    finally:
        if other is not store:
            other.dispose()
        store.dispose()


def test_a_handler_on_the_loop_never_holds_the_writers_lock_while_it_waits(tmp_path: Path) -> None:
    """Holding this process's lock while a thread waits for the lock between processes on its
    behalf would deadlock once the worker threads all wait for the first: here the one worker
    thread anyio may run."""
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    other = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    try:
        handler_waits = threading.Event()

        def thread_write() -> None:
            handler_waits.wait(5)
            with store.write() as connection:
                interaction_log.append(connection, _entry("worker thread"))

        def loop_write() -> None:
            with store.write() as connection:
                interaction_log.append(connection, _entry("handler on the loop"))

        async def main(release: threading.Event) -> int:
            anyio.to_thread.current_default_thread_limiter().total_tokens = 1
            worker = asyncio.ensure_future(anyio.to_thread.run_sync(thread_write))
            await asyncio.sleep(0.05)  # the worker thread holds anyio's one token
            handler = asyncio.ensure_future(inline.run_on_loop(loop_write))
            await asyncio.sleep(0.05)
            handler_waits.set()
            release.set()
            _done, pending = await asyncio.wait([worker, handler], timeout=10)
            return len(pending)

        with _writing_elsewhere(store, other) as release:
            assert asyncio.run(main(release)) == 0
        assert sorted(_logged(store)) == ["elsewhere", "handler on the loop", "worker thread"]
    finally:
        other.dispose()
        store.dispose()


def test_a_closed_group_commit_still_commits_whoever_comes(store: Store) -> None:
    """Closing stops the committer thread; a unit queued after that is led by its own caller, on the
    loop too (the node is stopping), and the next caller finds no leader left behind."""
    store.group_commit.close()
    results: list[int] = []

    def callers() -> None:
        results.append(store.write_grouped(lambda connection: 1))

        async def on_loop() -> int:
            return await inline.run_on_loop(store.write_grouped, lambda connection: 2)

        results.append(asyncio.run(on_loop()))
        results.append(store.write_grouped(lambda connection: 3))

    caller = threading.Thread(target=callers, daemon=True)
    caller.start()
    caller.join(10)
    assert results == [1, 2, 3]


def _batch_of_the_loop(store: Store, randoms: list[str]) -> tuple[list[object], set[int], int]:
    """Handlers of one loop turn each claim one of ``randoms``: their outcomes (a StoreConflict for a
    random taken), the threads their units ran on, and the loop's thread."""
    ran_on: set[int] = set()

    def handler(random: str) -> object:
        def work(connection: Connection) -> str:
            ran_on.add(threading.get_ident())
            nonces.claim(connection, "app", random, "f" * 64, b"{}", NOW)
            interaction_log.append(connection, _entry(random))
            return random

        try:
            return store.write_grouped(work)
        except StoreConflict as conflict:
            return conflict

    async def main() -> tuple[list[object], int]:
        outcomes = await asyncio.gather(*(inline.run_on_loop(handler, random) for random in randoms))
        return outcomes, threading.get_ident()

    outcomes, loop_thread = asyncio.run(main())
    return outcomes, ran_on, loop_thread


def test_the_loop_commits_its_next_batch_after_one_that_failed(tmp_path: Path) -> None:
    """A loop batch with a random claimed before fails as a whole and goes to the committer, where
    that unit alone fails; the connection kept for the loop is fine for the next batch."""
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    try:
        with store.write() as connection:
            nonces.claim(connection, "app", "taken", "f" * 64, b"{}", NOW)
        outcomes, ran_on, loop_thread = _batch_of_the_loop(store, ["taken", "a1", "a2"])
        assert isinstance(outcomes[0], StoreConflict) and outcomes[1:] == ["a1", "a2"]
        assert ran_on - {loop_thread}  # (the committer reran them)
        outcomes, ran_on, loop_thread = _batch_of_the_loop(store, ["b1", "b2"])
        assert outcomes == ["b1", "b2"] and ran_on == {loop_thread}
        assert _logged(store) == ["a1", "a2", "b1", "b2"]
    finally:
        store.dispose()


def test_a_batch_of_the_loop_goes_to_the_committer_while_another_program_writes(tmp_path: Path) -> None:
    """Another program (the sqlite3 shell) holds SQLite's write lock, which the lock between this
    node's processes does not know of: the loop's BEGIN is refused at once (no busy wait on the
    loop), the committer waits its turn, and once the program is done the loop commits again."""
    path = tmp_path / "tzsb.db"
    store = open_store(f"sqlite:///{path}")
    program = sqlite3.connect(path, isolation_level=None)
    try:
        program.execute("BEGIN IMMEDIATE")
        done: list[tuple[list[object], set[int], int]] = []
        asking = threading.Thread(target=lambda: done.append(_batch_of_the_loop(store, ["c1", "c2"])))
        asking.start()
        time.sleep(0.3)
        assert not done  # waiting for the program, in the committer
        program.execute("COMMIT")
        asking.join(10)
        [(outcomes, ran_on, loop_thread)] = done
        assert outcomes == ["c1", "c2"] and loop_thread not in ran_on
        outcomes, ran_on, loop_thread = _batch_of_the_loop(store, ["d1"])
        assert outcomes == ["d1"] and ran_on == {loop_thread}
    finally:
        program.close()
        store.dispose()


def test_a_thread_s_unit_is_committed_on_the_loop_serving_requests(tmp_path: Path) -> None:
    """While a loop serves handlers, another thread's unit (a refusal's log row, answers dropped under
    a quota) is led on that loop: led in the thread, its batch held the loop's units up for the GIL
    hand-offs of every call into SQLite, and under load the lead then stayed off the loop."""
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    ran_on: list[int] = []

    def from_a_thread(connection: Connection) -> str:
        ran_on.append(threading.get_ident())
        interaction_log.append(connection, _entry("from-a-thread"))
        return "from-a-thread"

    async def main() -> tuple[str, int]:
        await inline.run_on_loop(store.write_grouped, lambda connection: None)  # the loop serves
        answer = await asyncio.to_thread(store.write_grouped, from_a_thread)
        return answer, threading.get_ident()

    try:
        answer, loop_thread = asyncio.run(main())
        assert answer == "from-a-thread"
        assert ran_on == [loop_thread]
        assert _logged(store) == ["from-a-thread"]
    finally:
        store.dispose()


def test_a_thread_s_unit_is_committed_when_the_loop_that_served_stops_turning(tmp_path: Path) -> None:
    """A loop that stopped (between runs, or shutting down) never runs a lead handed to it: the
    committer takes it over, and the thread's unit is committed all the same."""
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(inline.run_on_loop(store.write_grouped, lambda connection: None))
        running = threading.Event()
        blocked = threading.Event()

        def stall() -> None:  # the loop "runs" but turns no more: its thread is blocked
            running.set()
            blocked.wait(10)

        loop.call_soon(stall)
        turning = threading.Thread(target=loop.run_forever)
        turning.start()
        assert running.wait(10)
        assert store.write_grouped(lambda connection: interaction_log.append(connection, _entry("late"))) is None
        assert _logged(store) == ["late"]
        blocked.set()
        loop.call_soon_threadsafe(loop.stop)
        turning.join(10)
    finally:
        loop.close()
        store.dispose()


def test_a_handler_s_batch_whose_loop_stopped_goes_to_the_committer(store: Store) -> None:
    """A lead handed to a handler's loop that no longer runs would never be taken up there."""
    grouped = store.group_commit
    loop = asyncio.new_event_loop()

    async def wake() -> inline.Wake:
        return inline.Wake()

    try:
        stopped = loop.run_until_complete(wake())  # the loop made it, then stopped (not closed)
        to_committer: list[bool] = []
        handed: list[bool] = []
        monkeypatched = pytest.MonkeyPatch()
        monkeypatched.setattr(grouped, "_lead_in_committer", lambda: to_committer.append(True))
        monkeypatched.setattr(grouped, "_lead_at_next_turn", lambda _loop: handed.append(True))
        try:
            grouped._hand_lead(group_commit_module._Unit(lambda connection: None, stopped))
        finally:
            monkeypatched.undo()
        assert to_committer == [True] and handed == []
    finally:
        loop.close()


def test_a_plain_call_on_the_serving_loop_s_thread_leads_its_own_batch(tmp_path: Path) -> None:
    """Not a handler's (no greenlet): handed to its own loop, it would wait for a turn that cannot
    come before it returns."""
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    handed: list[object] = []

    async def main() -> tuple[int, int]:
        await inline.run_on_loop(store.write_grouped, lambda connection: None)  # the loop serves
        lead_at_next_turn = store.group_commit._lead_at_next_turn
        store.group_commit._lead_at_next_turn = lambda loop: (handed.append(loop), lead_at_next_turn(loop))  # type: ignore[method-assign]
        ran_on = store.write_grouped(lambda connection: threading.get_ident())
        return ran_on, threading.get_ident()

    try:
        ran_on, loop_thread = asyncio.run(main())
        assert ran_on == loop_thread and handed == []
    finally:
        store.dispose()


def test_a_thread_s_unit_next_in_line_after_a_batch_of_the_loop_is_led_on_the_loop(tmp_path: Path) -> None:
    """The batch before it was committed on the loop's thread, which hands the lead on: the thread's
    unit must not lead its batch itself there (a key query's p99 went from 10 to 35 ms when it did)."""
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    grouped = store.group_commit
    handed: list[object] = []
    waiting = group_commit_module._Unit(lambda connection: None, threading.Event())

    async def main() -> asyncio.AbstractEventLoop:
        await inline.run_on_loop(store.write_grouped, lambda connection: None)  # the loop serves
        grouped._lead_at_next_turn = handed.append  # type: ignore[method-assign]
        grouped._hand_lead(waiting)  # as a batch committed on the loop hands the lead on
        return asyncio.get_running_loop()

    try:
        loop = asyncio.run(main())
        assert handed == [loop] and not waiting.lead
    finally:
        store.dispose()
