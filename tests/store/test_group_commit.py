"""Group commit: the small writes of concurrent callers share transactions; none returns before its
own work committed; a failing unit fails alone."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.errors import StoreConflict
from tzsb.store import Store, interaction_log, log_chain, nonces, open_store

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
    with store.read() as connection:
        assert interaction_log.count(connection) == 200
        assert log_chain.state(connection).head_seq == 200
        seqs = connection.execute(sa.text("SELECT chain_seq FROM interaction_log ORDER BY chain_seq")).scalars().all()
    assert seqs == list(range(1, 201))


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
