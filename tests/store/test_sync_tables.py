"""The store of sync: leases (one holder at a time, taken over after expiry), link positions and
parked records, region departures, and migration 0006 over a database with rows."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from tzsb.store import Store, leases, links, open_store, records_read, records_written
from tzsb.store.schema import interaction_log


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.dispose()


def test_a_lease_has_one_holder_until_it_expires(store: Store) -> None:
    with store.write() as connection:
        assert leases.take(connection, "sync/up", "host:1:a", now=1000.0, seconds=30)
        assert leases.take(connection, "sync/up", "host:1:a", now=1010.0, seconds=30)  # renewed
        assert not leases.take(connection, "sync/up", "host:2:b", now=1039.0, seconds=30)
        assert leases.holder_of(connection, "sync/up", now=1039.0) == "host:1:a"
        assert leases.take(connection, "sync/up", "host:2:b", now=1041.0, seconds=30)  # expired: taken over
        assert not leases.take(connection, "sync/up", "host:1:a", now=1042.0, seconds=30)
        assert leases.take(connection, "sync/other", "host:1:a", now=1042.0, seconds=30)
        assert not leases.take_over(connection, "sync/up", "host:1:a", "host:3:c", now=1043.0, seconds=30)
        assert leases.take_over(connection, "sync/up", "host:2:b", "host:3:c", now=1043.0, seconds=30)
        leases.release(connection, "sync/up", "host:2:b")  # not the holder: nothing happens
        assert leases.holder_of(connection, "sync/up", now=1044.0) == "host:3:c"
        leases.release(connection, "sync/up", "host:3:c")
        assert leases.holder_of(connection, "sync/up", now=1044.0) is None


def test_positions_and_parked_records_per_link(store: Store) -> None:
    with store.write() as connection:
        links.set_position(connection, "up", "0101", "t1", seq=10)
        links.set_position(connection, "up", "0101", "t2", seq=25)
        links.set_position(connection, "down", "0101", "t2", since_token="abc")
        assert links.positions(connection, "up") == {"0101": links.Position(25, None)}
        assert links.positions(connection, "down") == {"0101": links.Position(0, "abc")}
        links.park(connection, "up", [links.Parked("0101", "K1", 3, "E_VALIDATION", "first", "t1")])
        links.park(connection, "up", [links.Parked("0101", "K1", 7, "E_CONFLICT", "second", "t2")])
        links.park(connection, "up", [links.Parked("0101", "K2", 8, "E_REGION", "third", "t2")])
        assert [(item.key, item.code) for item in links.parked(connection, "up")] == [
            ("K1", "E_CONFLICT"),
            ("K2", "E_REGION"),
        ]
        links.unpark(connection, "up", "0101", ["K1"])
        assert links.parked_counts(connection) == {"up": 1}
        links.reset_positions(connection, "up")
        links.clear_parked(connection, "up")
        assert links.positions(connection, "up") == {}
        assert links.parked_counts(connection) == {}


def test_a_record_leaving_a_region_is_a_departure_in_that_regions_feed(store: Store) -> None:
    with store.write() as connection:
        records_written.note_departures(
            connection,
            [
                ("0101", "K1", "330106", "330108", 5, "2026-12-01 10:00:00"),  # left 330106 for another county
                ("0101", "K2", "330106", "330106", 6, "2026-12-01 10:00:00"),  # not a move
                ("0101", "K3", "330108", "330106", 7, "2026-12-01 10:00:00"),
            ],
        )
    with store.read() as connection:
        assert [
            (row.key, row.region, row.seq, row.departed)
            for row in records_read.departures(connection, "0101", "330106", 0, 10)
        ] == [("K1", "330106", 5, True)]
        # Within the city both moves stay inside: nothing left it.
        assert records_read.departures(connection, "0101", "3301", 0, 10) == []
        assert records_read.departures(connection, "0101", "330106", 5, 10) == []


def test_migration_0006_keeps_the_log_and_marks_its_rows_incoming(database_url: str) -> None:
    old = open_store(database_url, migrate=False)
    try:
        config = Config()
        config.set_main_option("script_location", str(resources.files("tzsb.store").joinpath("migrations")))
        with old.write() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0005")
        with old.write() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO interaction_log (at, appid, busicode, action, random, client_addr, record_count, "
                    "result, code, message, duration_ms) VALUES ('t', 'a', '140101', '01', 'r', '127.0.0.1', 1, "
                    "'0001', '', 'ok', 1.0)"
                )
            )
    finally:
        old.dispose()
    upgraded = open_store(database_url)
    try:
        with upgraded.read() as connection:
            assert connection.execute(sa.select(interaction_log.c.random, interaction_log.c.direction)).all() == [
                ("r", "in")
            ]
            assert connection.execute(sa.text("SELECT count(*) FROM links")).scalar_one() == 0
    finally:
        upgraded.dispose()
