"""The exchange run by a handler on the event loop's thread (``tzsb.inline``): a query is answered
there, a write goes on in a worker thread (it waits on the writers' lock and on an insert that runs
without the GIL), and both answer exactly as from a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.support import body, call, device, grant
from tzsb import inline
from tzsb.app import Node


def _on_loop(node: Node, payload: bytes) -> tuple[dict[str, Any], int]:
    async def main() -> tuple[bytes, int]:
        return await inline.run_on_loop(node.exchange.handle, payload, "application/json", "127.0.0.1"), (
            threading.get_ident()
        )

    answer, loop_thread = asyncio.run(main())
    return orjson.loads(answer), loop_thread


def _spy(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, threads: list[int]) -> None:
    original: Callable[..., bytes] = getattr(owner, name)

    def recorded(*args: Any, **options: Any) -> bytes:
        threads.append(threading.get_ident())
        return original(*args, **options)

    monkeypatch.setattr(owner, name, recorded)


def test_a_query_runs_on_the_loop_and_writes_in_a_worker_thread(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = grant(node)
    written_on: list[int] = []
    queried_on: list[int] = []
    _spy(monkeypatch, node.exchange.local, "write", written_on)
    _spy(monkeypatch, node.exchange.local, "query", queried_on)

    added, loop_thread = _on_loop(node, body("hz-city", secret, "140101", "01", [device(1), device(2)]))
    assert added["datalist"]["result"] == "0001", added
    assert written_on and loop_thread not in written_on

    key = device(1)["EQP_CODE"]
    found, loop_thread = _on_loop(node, body("hz-city", secret, "140101", "04", [{"EQP_CODE": key}]))
    assert found["datalist"]["result"] == "0001", found
    assert [record["EQP_CODE"] for record in found["datalist"]["busilist"]] == [key]
    assert queried_on == [loop_thread]

    deleted, loop_thread = _on_loop(node, body("hz-city", secret, "140101", "03", [{"EQP_CODE": key}]))
    assert deleted["datalist"]["result"] == "0001", deleted
    assert loop_thread not in written_on[1:]
    # From a thread, the same node answers as before: the record is gone.
    again = call(node, body("hz-city", secret, "140101", "04", [{"EQP_CODE": key}]))
    assert again["datalist"]["busilist"] == []


def test_a_replayed_query_on_the_loop_gets_its_first_answer(node: Node) -> None:
    secret = grant(node)
    assert call(node, body("hz-city", secret, "140101", "01", [device(1)]))["datalist"]["result"] == "0001"
    asked = body("hz-city", secret, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}], random="loop-query-0001")

    async def main() -> list[bytes]:
        return await asyncio.gather(
            *(inline.run_on_loop(node.exchange.handle, asked, "application/json", "127.0.0.1") for _ in range(4))
        )

    answers = asyncio.run(main())
    assert len(set(answers)) == 1  # one claim; the other three answered with its answer
    assert orjson.loads(answers[0])["datalist"]["result"] == "0001"


def test_a_query_that_filters_what_it_walks_reads_in_a_worker_thread(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key look-up or a region page walks about the rows it returns; a field condition may walk the
    whole region, and on the loop's thread every request would wait for it."""
    secret = grant(node)
    assert call(node, body("hz-city", secret, "140101", "01", [device(1), device(2)]))["datalist"]["result"] == "0001"
    read_on: list[int] = []
    _spy(monkeypatch, node.exchange.local.read_ahead, "page", read_on)

    by_key, loop_thread = _on_loop(node, body("hz-city", secret, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}]))
    assert len(by_key["datalist"]["busilist"]) == 1
    assert read_on == [loop_thread]

    by_region, loop_thread = _on_loop(node, body("hz-city", secret, "140101", "04", [{"_region": "330106"}]))
    assert len(by_region["datalist"]["busilist"]) == 2
    assert read_on[1:] == [loop_thread]

    filtered, loop_thread = _on_loop(node, body("hz-city", secret, "140101", "04", [{"USE_STATUS": "2"}]))
    assert len(filtered["datalist"]["busilist"]) == 2, filtered
    assert len(read_on) == 3 and read_on[2] != loop_thread
