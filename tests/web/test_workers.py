"""`tzsb serve --workers 2`: two processes serve one node; writes queue, nothing is lost, and rate
limits hold for the node as a whole, not per process."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support import device
from tests.web.servers import init_province, serving, tzsb
from tzsb.client import build_request
from tzsb.protocol.signing import SignAlgorithm


@dataclass(frozen=True)
class Node:
    url: str
    secrets: dict[str, str]


def create_app(home: Path, appid: str, *extra: str) -> str:
    created = tzsb(
        "app", "create", "--home", str(home), "--appid", appid, "--region", "330100",
        "--busicode", "140101", "--action", "01", "--action", "04", *extra, "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    return str(json.loads(created.stdout)["secret"])


@pytest.fixture
def node(database_url: str, tmp_path: Path) -> Iterator[Node]:
    home = tmp_path / "node"
    init_province(home, database_url)
    secrets = {"busy": create_app(home, "busy"), "limited": create_app(home, "limited", "--rate", "6")}
    with serving(home, tmp_path / "serve.log", {"TZSB_WORKERS": "2"}) as base:
        yield Node(f"{base}/tzsb/exchange", secrets)


def post(url: str, appid: str, secret: str, action: str, busilist: list[dict[str, Any]]) -> dict[str, Any]:
    body = orjson.dumps(build_request(appid, secret, SignAlgorithm.MD5, "140101", action, busilist))
    # A new connection per request, so that the requests spread over both worker processes.
    reply = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)
    datalist: dict[str, Any] = reply.json()["datalist"]
    return datalist


def serving_processes(url: str) -> int:
    port = url.split(":")[2].split("/")[0]
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    inode = next(line.split()[9] for line in listening if line.split()[1].endswith(f":{int(port):04X}"))
    holders = 0
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            if any(f"socket:[{inode}]" == str(fd.readlink()) for fd in (process / "fd").iterdir()):
                holders += 1
        except OSError:
            continue
    return holders


def test_two_workers_serve_concurrent_writers_and_lose_nothing(node: Node) -> None:
    assert serving_processes(node.url) >= 3  # uvicorn's supervisor and two workers hold the socket
    failures: list[dict[str, Any]] = []

    def writer(first: int) -> None:
        for batch in range(5):
            start = first + batch * 40
            answer = post(node.url, "busy", node.secrets["busy"], "01", [device(n) for n in range(start, start + 40)])
            if answer["result"] != "0001":
                failures.append(answer)

    threads = [threading.Thread(target=writer, args=(thread * 1000,)) for thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    found: list[str] = []
    since = "0"
    while True:
        page = post(node.url, "busy", node.secrets["busy"], "04", [{"_since": since, "_page_size": 150}])
        assert page["result"] == "0001", page
        found += [record["EQP_CODE"] for record in page["busilist"]]
        since = page["next_since"]
        if not page["has_more"]:
            break
    expected = {device(thread * 1000 + n)["EQP_CODE"] for thread in range(4) for n in range(200)}
    assert len(found) == len(expected) == 800
    assert set(found) == expected


def test_a_rate_limit_holds_across_workers(node: Node) -> None:
    if time.time() % 60 > 45:  # the limit counts per clock minute: keep the burst inside one
        time.sleep(61 - time.time() % 60)
    # 30 requests on fresh connections: counted per process, two workers would answer up to 12.
    codes = [
        post(node.url, "limited", node.secrets["limited"], "04", [{"_page_size": 1}]).get("code", "") for _ in range(30)
    ]
    assert codes.count("") == 6, codes
    assert codes.count("E_LIMIT") == 24, codes


def test_a_lock_out_set_by_one_worker_holds_in_the_other(node: Node) -> None:
    for _ in range(10):  # both workers have answered (and read the failure table) before the failures
        assert post(node.url, "busy", node.secrets["busy"], "04", [{"_page_size": 1}])["result"] == "0001"
    for _ in range(3):
        wrong = post(node.url, "busy", "0" * 32, "04", [{"_page_size": 1}])
        assert wrong["code"] in ("E_SIGN", "E_LOCKED"), wrong
    # Correctly signed now, on fresh connections that land on either worker: all refused.
    codes = [post(node.url, "busy", node.secrets["busy"], "04", [{"_page_size": 1}])["code"] for _ in range(12)]
    assert codes == ["E_LOCKED"] * 12
