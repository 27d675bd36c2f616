"""The interaction log's hash chain: every entry chained in one order, verification naming the first
entry edited, deleted or reordered, heads kept elsewhere, archives, and the migration that chained
the entries logged before it."""

from __future__ import annotations

import gzip
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import body, call, device, grant, log_rows, snapshot
from tzsb import refusals
from tzsb.app import Node, build_node
from tzsb.audit import ArchiveError, ChainHead, archive, head, verify
from tzsb.audit.log import LogEntry
from tzsb.protocol import failure_datalist
from tzsb.store import Store, log_chain, open_store
from tzsb.store.schema import interaction_log


def _traffic(node: Node, count: int = 6, appid: str = "hz") -> None:
    secret = grant(node, appid=appid, region="330100")
    for number in range(count):
        answer = call(node, body(appid, secret, "140101", "01", [device(number)], random=f"{appid}-req-{number:04d}"))
        assert answer["datalist"]["result"] == "0001", answer


def _rows_by_seq(node: Node) -> list[dict[str, Any]]:
    return sorted(log_rows(node), key=lambda row: row["chain_seq"])


def test_every_entry_is_chained_and_the_chain_verifies(node: Node) -> None:
    _traffic(node)
    refused = call(node, body("hz", "wrong-secret", "140101", "01", [device(9)], random="bad-req-0001"))
    assert refused["datalist"]["code"] == "E_SIGN"

    rows = _rows_by_seq(node)
    assert [row["chain_seq"] for row in rows] == list(range(1, len(rows) + 1))
    previous = log_chain.GENESIS
    for row in rows:
        assert row["digest"] == log_chain.digest_of(previous, row)
        previous = row["digest"]
    report = verify(node.store)
    assert report.ok and report.problem is None
    assert report.entries == len(rows)
    assert report.head == head(node.store) == ChainHead(len(rows), previous)
    # A head kept elsewhere checks out, and so does any earlier entry's.
    assert verify(node.store, kept=ChainHead(len(rows), previous)).ok
    assert verify(node.store, kept=ChainHead(2, rows[1]["digest"])).ok


def _execute(node: Node, *statements: str) -> None:
    with node.store.write() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))


@pytest.mark.parametrize(
    ("tamper", "kind", "seq"),
    [
        (["UPDATE interaction_log SET message = 'nothing happened' WHERE chain_seq = 3"], "edited", 3),
        (["UPDATE interaction_log SET appid = 'someone-else' WHERE chain_seq = 5"], "edited", 5),
        (["UPDATE interaction_log SET duration_ms = duration_ms + 1 WHERE chain_seq = 1"], "edited", 1),
        (["DELETE FROM interaction_log WHERE chain_seq = 4"], "deleted", 4),
        (
            [
                "UPDATE interaction_log SET chain_seq = -1 WHERE chain_seq = 2",
                "UPDATE interaction_log SET chain_seq = 2 WHERE chain_seq = 3",
                "UPDATE interaction_log SET chain_seq = 3 WHERE chain_seq = -1",
            ],
            "reordered",
            2,
        ),
        (["DELETE FROM interaction_log WHERE chain_seq >= 5"], "truncated", 5),
    ],
    ids=["message-edited", "appid-edited", "duration-edited", "deleted", "reordered", "end-removed"],
)
def test_verify_names_the_first_entry_tampered_with(node: Node, tamper: list[str], kind: str, seq: int) -> None:
    _traffic(node)
    _execute(node, *tamper)

    report = verify(node.store)

    assert not report.ok
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == (kind, seq), report.problem
    assert f"entry {seq}" in report.problem.message or f"entries {seq} to" in report.problem.message


def test_entries_removed_from_the_end_with_the_head_rewound_are_caught_by_a_kept_head(node: Node) -> None:
    _traffic(node)
    kept = head(node.store)
    rows = _rows_by_seq(node)
    # An intruder removes the last two entries and rewinds the node's own head to match.
    with node.store.write() as connection:
        connection.execute(sa.text("DELETE FROM interaction_log WHERE chain_seq > :seq"), {"seq": kept.seq - 2})
        connection.execute(
            sa.text("UPDATE log_chain SET head_seq = :seq, head_digest = :digest"),
            {"seq": kept.seq - 2, "digest": rows[kept.seq - 3]["digest"]},
        )

    assert verify(node.store).ok  # the node's own head cannot tell
    report = verify(node.store, kept=kept)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("truncated", kept.seq - 1)
    forged = verify(node.store, kept=ChainHead(3, "f" * 64))
    assert forged.problem is not None and (forged.problem.kind, forged.problem.seq) == ("head", 3)


def test_concurrent_requests_of_two_hosts_form_one_chain(
    node: Node, clock: Any, request: pytest.FixtureRequest
) -> None:
    """Two nodes on one database (two hosts sharing PostgreSQL, or two processes on one SQLite
    file), each answering from several threads at once."""
    first = node
    second = build_node(node.settings, clock)
    request.addfinalizer(second.close)
    secrets = {"hz": grant(first, appid="hz", region="330100"), "nb": grant(first, appid="nb", region="330200")}
    failures: list[Any] = []

    def send(node: Node, appid: str, worker: int) -> None:
        for number in range(12):
            conditions = [{"EQP_CODE": device(number)["EQP_CODE"]}]
            answer = call(
                node, body(appid, secrets[appid], "140101", "04", conditions, random=f"worker{worker}-{number:04d}")
            )
            if answer["datalist"]["result"] != "0001":
                failures.append(answer)

    threads = [
        threading.Thread(target=send, args=(node, appid, worker))
        for worker, (node, appid) in enumerate([(first, "hz"), (second, "nb"), (first, "nb"), (second, "hz")])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    rows = _rows_by_seq(first)
    assert len(rows) == 48
    assert [row["chain_seq"] for row in rows] == list(range(1, 49))
    assert verify(first.store).ok and verify(second.store).ok


def test_a_request_whose_entry_cannot_be_chained_is_not_acknowledged(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = grant(node, appid="hz", region="330100")
    before = snapshot(node)

    def broken(connection: Any, rows: Any) -> None:
        raise RuntimeError("the log's chain head cannot be read")

    monkeypatch.setattr(log_chain, "append_chained", broken)
    answer = call(node, body("hz", secret, "140101", "01", [device(1)], random="lost-req-0001"))

    assert answer["datalist"] == failure_datalist(refusals.internal_error())
    assert snapshot(node) == before  # the records, the claim and the change counter: nothing
    monkeypatch.undo()
    assert verify(node.store).ok


def _spread_over_days(node: Node, clock: Any) -> None:
    secret = grant(node, appid="hz", region="330100")
    for day in range(3):
        for number in range(4):
            key = device(day * 10 + number)
            assert (
                call(node, body("hz", secret, "140101", "01", [key], random=f"day{day}-req-{number:04d}"))["datalist"][
                    "result"
                ]
                == "0001"
            )
        clock.advance(timedelta(days=1))


def _dates(node: Node) -> list[str]:
    return sorted({str(row["at"])[:10] for row in log_rows(node)})


def test_archive_moves_old_days_to_files_and_verify_reads_them_with_the_table(
    node: Node, clock: Any, tmp_path: Path
) -> None:
    _spread_over_days(node, clock)
    days = _dates(node)
    assert len(days) == 3
    kept = head(node.store)
    folder = tmp_path / "archive"

    written = archive(node.store, f"{days[2]}T00:00:00", folder)

    assert [item.path.name for item in written] == [
        f"log-{days[0]}-000000000001.jsonl.gz",
        f"log-{days[1]}-{written[0].last_seq + 1:012d}.jsonl.gz",
    ]
    assert sum(item.entries for item in written) == written[-1].last_seq
    assert _dates(node) == [days[2]]
    for item in written:
        assert stat.S_IMODE(os.stat(item.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    report = verify(node.store, folder, kept)
    assert report.ok, report.problem
    assert (report.archive_files, report.archived_entries) == (2, written[-1].last_seq)
    assert report.entries == kept.seq - written[-1].last_seq
    # Without the files, the table's chain starts where the node archived up to.
    assert verify(node.store).ok
    # A second run has nothing more before that day.
    assert archive(node.store, f"{days[2]}T00:00:00", folder) == []
    # New entries keep chaining after the archived ones.
    _traffic(node, 2, appid="nb")
    assert verify(node.store, folder).ok


def _rewrite_archive(path: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    with gzip.open(path, "rb") as handle:
        lines = handle.read().splitlines()
    with gzip.open(path, "wb") as handle:
        handle.write(b"\n".join(change(lines)) + b"\n")


def test_verify_finds_an_archive_edited_cut_short_or_missing(node: Node, clock: Any, tmp_path: Path) -> None:
    _spread_over_days(node, clock)
    days = _dates(node)
    folder = tmp_path / "archive"
    first, second = archive(node.store, f"{days[2]}T00:00:00", folder)

    def edit(lines: list[bytes]) -> list[bytes]:
        entry = orjson.loads(lines[2])
        entry["client_addr"] = "203.0.113.99"
        return [*lines[:2], orjson.dumps(entry), *lines[3:]]

    _rewrite_archive(first.path, edit)
    report = verify(node.store, folder)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq, report.problem.where) == ("edited", 2, str(first.path))

    _rewrite_archive(first.path, lambda lines: [*lines[:2], *lines[3:]])  # the edited entry dropped
    report = verify(node.store, folder)
    assert report.problem is not None and (report.problem.kind, report.problem.seq) == ("deleted", 2)

    first.path.unlink()
    report = verify(node.store, folder)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("archive", 1)
    assert second.path.name in report.problem.message

    second.path.unlink()  # no files at all: the table alone, from the archive boundary
    assert verify(node.store, folder).ok


def test_archive_refuses_a_broken_chain_and_removes_nothing(node: Node, clock: Any, tmp_path: Path) -> None:
    _spread_over_days(node, clock)
    days = _dates(node)
    _execute(node, "UPDATE interaction_log SET result = '0000' WHERE chain_seq = 2")
    rows = len(log_rows(node))

    with pytest.raises(ArchiveError, match="entry 2 was edited"):
        archive(node.store, f"{days[2]}T00:00:00", tmp_path / "archive")

    assert len(log_rows(node)) == rows
    assert list((tmp_path / "archive").iterdir()) == []


def _migrate_to(store: Store, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(resources.files("tzsb.store").joinpath("migrations")))
    with store.write() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_migration_0008_chains_the_entries_logged_before_it(database_url: str) -> None:
    old = open_store(database_url, migrate=False)
    try:
        _migrate_to(old, "0007")
        entries = [
            {"at": f"2026-11-0{number}T10:00:00.000+08:00", "appid": "hz", "busicode": "140101", "action": "01",
             "random": f"r{number}", "client_addr": "10.0.0.1", "record_count": number, "result": "0001", "code": "",
             "message": "ok", "duration_ms": 1.25 * number, "direction": "in", "region": "330100"}
            for number in range(1, 4)
        ]  # fmt: skip
        legacy = sa.table("interaction_log", *(sa.column(name) for name in entries[0]))
        with old.write() as connection:
            connection.execute(sa.insert(legacy), entries)
    finally:
        old.dispose()
    upgraded = open_store(database_url)
    try:
        with upgraded.read() as connection:
            rows = connection.execute(sa.select(interaction_log).order_by(interaction_log.c.id)).all()
        assert [row.chain_seq for row in rows] == [1, 2, 3]
        assert verify(upgraded).ok
        # New entries continue the chain.
        with upgraded.write() as connection:
            connection.execute(sa.text("SELECT 1"))
            from tzsb.store import interaction_log as log

            log.append(connection, {**entries[0], "random": "after-migration"})
        report = verify(upgraded)
        assert report.ok and report.head.seq == 4
    finally:
        upgraded.dispose()


def _query_entry() -> LogEntry:
    """A log entry as a key query leaves it, for appending to the chain directly."""
    return LogEntry(
        at="2026-11-28T09:30:00+08:00", appid="hz", busicode="140101", action="04", random="r" * 32,
        client_addr="127.0.0.1", record_count=1, result="0001", code="", message="", duration_ms=1.0,
    )  # fmt: skip


def test_an_append_on_any_pooled_connection_tries_from_the_head_this_process_last_moved(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests rotate through the pool: an append on a connection other than the last one's must not
    first try a stale head and then read the head under its lock (three round trips on PostgreSQL)."""
    store = open_store(database_url)
    attempts: list[tuple[int, str]] = []
    attempt = log_chain._try_append

    def counted(connection: Any, head: tuple[int, str], rows: Any) -> Any:
        attempts.append(head)
        return attempt(connection, head, rows)

    monkeypatch.setattr(log_chain, "_try_append", counted)
    entry = _query_entry()
    try:
        with store.engine.connect() as first, store.engine.connect() as second:
            for connection in (first, second, first, second):
                with connection.begin():
                    log_chain.append_chained(connection, [entry.values()])
        assert len(attempts) == 4, attempts
        assert verify(store).ok
        assert head(store).seq == 4
    finally:
        store.dispose()


#: Text a log column may hold on either database: anything but NUL (PostgreSQL's text refuses it,
#: whatever carries it) and lone surrogates (not UTF-8).
_LOGGED_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=40)
_BATCHES = st.lists(
    st.lists(
        st.builds(
            LogEntry,
            at=st.just("2026-11-28T09:30:00.000"),
            appid=st.text("abc", min_size=1, max_size=64),
            busicode=st.just("140101"),
            action=st.sampled_from(["01", "04"]),
            random=st.text("0123456789", max_size=64),
            client_addr=st.just("127.0.0.1"),
            record_count=st.integers(min_value=0, max_value=2**31 - 1),
            result=st.sampled_from(["0001", "0002"]),
            code=st.text("E_", max_size=16),
            message=_LOGGED_TEXT,
            duration_ms=st.floats(min_value=0, max_value=1e9, allow_nan=False),
            region=_LOGGED_TEXT,
            correlation=st.one_of(st.just(""), st.text("0123456789abcdef", max_size=64)),
        ),
        min_size=1,
        max_size=12,
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=_BATCHES)
def test_appended_entries_come_back_as_given_and_their_digests_verify(
    database_url: str, batches: list[list[LogEntry]]
) -> None:
    """Entries go to PostgreSQL as one JSON parameter (so that the statement's text does not change
    with their number): text of any kind, floats and counts must come back exactly as digested."""
    store = open_store(database_url)
    try:
        before = head(store).seq
        for batch in batches:
            with store.write() as connection:
                log_chain.append_chained(connection, [entry.values() for entry in batch])
        with store.read() as connection:
            rows = connection.execute(
                sa.select(interaction_log)
                .where(interaction_log.c.chain_seq > before)
                .order_by(interaction_log.c.chain_seq)
            ).all()
        given_rows = [entry.values() for batch in batches for entry in batch]
        assert [tuple(row._mapping[name] for name in log_chain.ENTRY_COLUMNS) for row in rows] == given_rows
        assert verify(store).ok
    finally:
        store.dispose()


def test_a_hint_left_by_a_rolled_back_append_costs_one_attempt_and_no_entry(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rolled-back append had moved the process's hint past the head: the next append tries it,
    then appends from the head as it is (on PostgreSQL the attempt's own answer, no read of its own)."""
    store = open_store(database_url)
    attempts: list[tuple[int, str]] = []
    statements: list[str] = []
    attempt, cursor_of = log_chain._try_append, log_chain.driver_cursor

    def counted(connection: Any, head: tuple[int, str], rows: Any) -> Any:
        attempts.append(head)
        return attempt(connection, head, rows)

    @contextmanager
    def spied(connection: Any) -> Iterator[Any]:
        with cursor_of(connection) as cursor:

            class Spy:
                def __getattr__(self, name: str) -> Any:
                    return getattr(cursor, name)

                def execute(self, statement: str, parameters: Any = ()) -> Any:
                    statements.append(statement)
                    return cursor.execute(statement, parameters)

            yield Spy()

    entry = _query_entry()
    try:
        with store.engine.connect() as connection:
            with connection.begin():
                log_chain.append_chained(connection, [entry.values()])
            rolled_back = connection.begin()
            log_chain.append_chained(connection, [entry.values()])
            rolled_back.rollback()
            monkeypatch.setattr(log_chain, "_try_append", counted)
            monkeypatch.setattr(log_chain, "driver_cursor", spied)
            with connection.begin():
                log_chain.append_chained(connection, [entry.values()])
        head_reads = [statement for statement in statements if statement.startswith(log_chain._READ_HEAD)]
        assert len(attempts) == 2, attempts
        assert attempts[0][0] == 2 and attempts[1][0] == 1  # the stale hint, then the head as it is
        assert len(head_reads) == (1 if store.is_sqlite else 0), statements
        assert verify(store).ok
        assert head(store).seq == 2
    finally:
        store.dispose()


def test_two_processes_appending_the_same_entry_after_the_same_head_both_get_a_place(database_url: str) -> None:
    """Alerts repeat word for word: an append from a stale hint can compute exactly the head another
    process has just moved the chain to. It must not take that place again, nor fail."""
    first, second = open_store(database_url), open_store(database_url)

    def alert(random: str) -> tuple[Any, ...]:
        return replace(
            _query_entry(), appid="(alert)", busicode="", action="", random=random, client_addr="(node)",
            record_count=0, result="0000", code="x", message="m", duration_ms=0.0,
        ).values()  # fmt: skip

    try:
        for store, random in ((second, "first"), (first, ""), (second, "")):
            with store.engine.connect() as connection, connection.begin():
                log_chain.append_chained(connection, [alert(random)])
        assert verify(first).ok
        assert head(first).seq == 3
    finally:
        first.dispose()
        second.dispose()
