"""Concurrent writers and a puller: the `_since` feed loses nothing and repeats nothing.

Writers commit in an order the database chooses; change sequences must follow commit order, or a
puller that has seen sequence n could miss a row that commits later with a smaller one.
"""

from __future__ import annotations

import threading
from typing import Any

from tests.support import body, call, device, grant
from tzsb.app import Node

WRITERS = 4
BATCHES = 6
PER_BATCH = 20


def test_feed_under_concurrent_writers(node: Node) -> None:
    secret = grant(node)
    failures: list[Any] = []
    done = threading.Event()

    def write(writer: int) -> None:
        for batch in range(BATCHES):
            base = (writer * BATCHES + batch) * PER_BATCH
            records = [device(base + offset) for offset in range(PER_BATCH)]
            answer = call(node, body("hz-city", secret, "140101", "01", records))
            if answer["datalist"]["result"] != "0001":
                failures.append(answer)

    seen: list[str] = []

    def pull(since: str) -> str:
        while True:
            answer = call(node, body("hz-city", secret, "140101", "04", [{"_since": since, "_page_size": 7}]))
            datalist = answer["datalist"]
            assert datalist["result"] == "0001", datalist
            seen.extend(record["EQP_CODE"] for record in datalist["busilist"])
            since = datalist["next_since"]
            if not datalist["has_more"]:
                return since

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(WRITERS)]
    for thread in threads:
        thread.start()
    since = "0"
    while any(thread.is_alive() for thread in threads):
        since = pull(since)
    for thread in threads:
        thread.join()
    done.set()
    pull(since)

    assert failures == []
    expected = {device(number)["EQP_CODE"] for number in range(WRITERS * BATCHES * PER_BATCH)}
    assert len(seen) == len(expected), "a record was pulled twice"
    assert set(seen) == expected, "a record was lost"
