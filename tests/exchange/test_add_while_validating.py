"""An add inserts its new records while its batch is validated, only when that can change nothing
a caller sees: the writers' lock is free at once, and validation needs no other connection."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

import tzsb.app
from tests.support import body, call, device, grant, log_rows, snapshot
from tzsb import refusals
from tzsb.app import Node, build_node
from tzsb.clock import FixedClock
from tzsb.protocol.signing import SignAlgorithm, sign
from tzsb.registry import MasterKey
from tzsb.rules.ruleset import RULES_FILE, shipped_rule_sets
from tzsb.settings import load_settings, write_config
from tzsb.store import engine, open_store
from tzsb.store.schema import change_counter

#: The refusal of an add whose one record fails validation.
ONE_INVALID = refusals.records_invalid((), 1)


@contextmanager
def writer_holding_the_lock(database_url: str, seconds: float = 30) -> Iterator[None]:
    """Another writer (another process's store on SQLite, another transaction on PostgreSQL) holds
    the writers' lock until the block ends or ``seconds`` have passed."""
    other = open_store(database_url, migrate=False)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with other.write() as connection:
            connection.execute(sa.select(change_counter.c.last_seq).with_for_update())
            holding.set()
            release.wait(seconds)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join()
        other.dispose()


def test_an_invalid_add_is_refused_for_what_it_is_while_another_writer_holds_the_lock(
    node: Node, database_url: str
) -> None:
    """Validated before it queues for the lock: neither timed out behind it (SQLite, whose wait is cut
    to 0.3 s here) nor kept waiting for it (PostgreSQL)."""
    secret = grant(node)
    assert call(node, body("hz-city", secret, "140101", "01", [device(2)]))["datalist"]["result"] == "0001"
    if node.store.is_sqlite:
        process_lock = node.store._process_lock
        assert process_lock is not None
        process_lock._timeout = 0.3
    before = snapshot(node)
    with writer_holding_the_lock(database_url, seconds=1.5):
        began = time.monotonic()
        refused = call(node, body("hz-city", secret, "140101", "01", [device(1, EQP_TYPE="bad")]))["datalist"]
        waited = time.monotonic() - began
    assert (refused["code"], refused["message"]) == (ONE_INVALID.code.value, ONE_INVALID.message)
    assert refused["busilist"][0]["errors"][0]["field"] == "EQP_TYPE"
    assert snapshot(node)["records"] == before["records"]
    if not node.store.is_sqlite:  # on SQLite the refusal's log row itself waits for the lock
        assert waited < 1
        assert [(row["result"], row["code"]) for row in log_rows(node)][-1] == ("0000", "E_VALIDATION")


def test_a_valid_add_queued_behind_another_writer_is_stored_when_it_lets_go(node: Node, database_url: str) -> None:
    secret = grant(node)
    answers: list[dict[str, Any]] = []
    with writer_holding_the_lock(database_url):
        sender = threading.Thread(
            target=lambda: answers.append(call(node, body("hz-city", secret, "140101", "01", [device(1)]))["datalist"])
        )
        sender.start()
        time.sleep(0.3)
        assert answers == []  # waiting for the lock
    sender.join()
    assert answers[0]["result"] == "0001"
    assert [row[1] for row in snapshot(node)["records"]] == [device(1)["EQP_CODE"]]


def test_adds_checked_against_stored_records_never_run_the_pool_dry(
    make_node: Callable[..., Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reference rule looks records up on a second connection: such adds validate before they take
    the writers' lock, so writers queued on the lock (each holding a connection) cannot starve it."""
    small_pool = {"pool_size": 2, "max_overflow": 0, "pool_timeout": 5}
    monkeypatch.setattr(
        tzsb.app, "open_store", lambda url, migrate=True: open_store(url, migrate=migrate, **small_pool)
    )
    node = make_node(rules_check_seconds=0)
    secret = grant(node, busicodes=frozenset({"140101", "140401"}))
    shipped = next(rule for rule in shipped_rule_sets()["0401"].rules if rule["id"] == "eqp-code-held")
    (node.settings.home / RULES_FILE).write_bytes(orjson.dumps({"0401": {"rules": [dict(shipped, enabled=True)]}}))
    assert call(node, body("hz-city", secret, "140101", "01", [device(9)]))["datalist"]["result"] == "0001"
    inspection = dict(shipped_rule_sets()["0401"].valid_cases[0], EQP_CODE=device(9)["EQP_CODE"], AREA_CODE="330106")
    answers: list[str] = []

    def send(sender: int) -> None:
        batch = [dict(inspection, REPORT_NO=f"R{sender:02d}-{number:04d}") for number in range(300)]
        datalist = call(node, body("hz-city", secret, "140401", "01", batch))["datalist"]
        answers.append(datalist.get("code") or datalist["result"])

    senders = [threading.Thread(target=send, args=(number,)) for number in range(4)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert answers == ["0001"] * 4


def test_a_record_at_the_depth_limit_is_stored(make_node: Callable[..., Node]) -> None:
    """One level deeper than orjson writes inside the batch's JSON array: stored row by row instead."""
    node = make_node(rules_check_seconds=0)
    (node.settings.home / RULES_FILE).write_bytes(orjson.dumps({"0101": {"severity": {"unknown_field": "warning"}}}))
    secret = grant(node)
    nested: Any = "x"
    for _ in range(253):
        nested = [nested]
    record = device(1, EXTRA=nested)
    # orjson refuses to write the busilist (one level deeper still); Python's json does not.
    text = json.dumps([record], ensure_ascii=False, separators=(",", ":"))
    params = {"appid": "hz-city", "busicode": "140101", "action": "01", "busilist": text, "random": "deep-0001"}
    answer = call(node, orjson.dumps({**params, "sign": sign(params, secret, SignAlgorithm.MD5)}))["datalist"]
    assert answer["result"] == "0001", answer
    assert len(snapshot(node)["records"]) == 1


@pytest.mark.parametrize("name", ["uri", "symlink"])
def test_an_invalid_add_is_refused_for_what_it_is_while_a_writer_past_the_file_lock_holds_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FixedClock, name: str
) -> None:
    """A SQLite URI name has no file lock, and a symlink is another name of the file: the writer
    there is seen by SQLite's own lock, which the add tries without waiting."""
    monkeypatch.setattr(engine, "BUSY_TIMEOUT_SECONDS", 1.0)  # the queued path's wait, cut from 10 s
    path = tmp_path / "tzsb.db"
    url = other_url = f"sqlite:///file:{path}?uri=true" if name == "uri" else f"sqlite:///{path}"
    if name == "symlink":
        (tmp_path / "link.db").symlink_to(path)
        url = f"sqlite:///{tmp_path / 'link.db'}"
    home = tmp_path / "home"
    home.mkdir()
    settings = load_settings(home, environ={}, level="province", region="330000", database_url=url)
    MasterKey.generate().write(settings.master_key_path)
    write_config(settings)
    node = build_node(settings, clock)
    try:
        secret = grant(node)
        assert call(node, body("hz-city", secret, "140101", "01", [device(5)]))["datalist"]["result"] == "0001"
        with writer_holding_the_lock(other_url, seconds=3):
            refused = call(node, body("hz-city", secret, "140101", "01", [device(1, EQP_TYPE="bad")]))["datalist"]
        assert (refused["code"], refused["message"]) == (ONE_INVALID.code.value, ONE_INVALID.message)
        assert [row[1] for row in snapshot(node)["records"]] == [device(5)["EQP_CODE"]]
    finally:
        node.close()
