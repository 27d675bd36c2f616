"""Small interface requests of a SQLite node are answered on the event loop's thread (``tzsb.inline``):
while one of them waits for the database, the served node goes on answering, and with
``inline_requests`` off it answers the same through worker threads."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support import device
from tests.web.servers import init_province, serving, tzsb
from tzsb.client import build_request
from tzsb.protocol.signing import SignAlgorithm
from tzsb.store import interaction_log, open_store


def _create_app(home: Path) -> str:
    created = tzsb(
        "app", "create", "--home", str(home), "--appid", "viewer", "--region", "330100",
        "--busicode", "140101", "--action", "01", "--action", "04", "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    return str(json.loads(created.stdout)["secret"])


def _post(url: str, secret: str, action: str, busilist: list[dict[str, Any]]) -> dict[str, Any]:
    body = orjson.dumps(build_request("viewer", secret, SignAlgorithm.MD5, "140101", action, busilist))
    reply = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)
    datalist: dict[str, Any] = reply.json()["datalist"]
    return datalist


@pytest.mark.parametrize("inline_requests", ["true", "false"])
def test_the_node_answers_others_while_a_query_waits_for_the_writers_lock(tmp_path: Path, inline_requests: str) -> None:
    home = tmp_path / "node"
    init_province(home, "")
    secret = _create_app(home)
    environment = {"TZSB_INLINE_REQUESTS": inline_requests}
    with serving(home, tmp_path / "serve.log", environment) as base:
        url = f"{base}/tzsb/exchange"
        assert _post(url, secret, "01", [device(1), device(2)])["result"] == "0001"
        # A writer of another process (a CLI command, another worker) holds the database's writers' lock.
        other = open_store(f"sqlite:///{home / 'tzsb.db'}")
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            with other.write() as connection:
                interaction_log.append(connection, {
                    "at": "2026-12-05T10:00:00.000+08:00", "appid": "cli", "busicode": "", "action": "",
                    "random": "held", "client_addr": "", "record_count": 0, "result": "0001", "code": "",
                    "message": "held", "duration_ms": 0.0,
                })  # fmt: skip
                holding.set()
                release.wait(20)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert holding.wait(10)
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                key = device(1)["EQP_CODE"]
                queries = [pool.submit(_post, url, secret, "04", [{"EQP_CODE": key}]) for _ in range(3)]
                time.sleep(0.3)
                assert not any(query.done() for query in queries)  # their claims wait for the lock
                started = time.monotonic()
                assert httpx.get(f"{base}/healthz", timeout=5).json()["status"] == "ok"
                assert time.monotonic() - started < 2
                release.set()
                answers = [query.result(timeout=30) for query in queries]
        finally:
            release.set()
            holder.join()
            other.dispose()
        assert [answer["result"] for answer in answers] == ["0001"] * 3
        assert [answer["busilist"][0]["EQP_CODE"] for answer in answers] == [key] * 3
