"""Lock-out behind a reverse proxy (spec 7.4): with ``tzsb serve --trusted-proxy``, callers behind the
proxy are told apart by ``X-Forwarded-For``, so one caller's forged signatures lock out only that
caller; without it the header is ignored and every caller is the TCP peer.

The test plays the proxy: it connects from 127.0.0.1 and writes the header a proxy would write.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import pytest

from tests.web.servers import init_province, serving, tzsb
from tzsb.client import build_request
from tzsb.protocol.signing import SignAlgorithm

ALICE: Final = "203.0.113.7"
BOB: Final = "203.0.113.8"
PROXY: Final = "127.0.0.1"


@dataclass(frozen=True)
class Node:
    base: str
    secret: str
    home: Path
    log: Path

    def post(self, forwarded_for: str | None, *, forged: bool = False) -> dict[str, Any]:
        secret = "0" * 32 if forged else self.secret
        body = orjson.dumps(build_request("hz-city", secret, SignAlgorithm.MD5, "140101", "04", [{"_page_size": 1}]))
        headers = {"content-type": "application/json"}
        if forwarded_for is not None:
            headers["x-forwarded-for"] = forwarded_for
        reply = httpx.post(f"{self.base}/tzsb/exchange", content=body, headers=headers, timeout=30)
        datalist: dict[str, Any] = reply.json()["datalist"]
        return datalist

    def health(self, forwarded_for: str | None = None) -> dict[str, Any]:
        headers = {"x-forwarded-for": forwarded_for} if forwarded_for is not None else {}
        reply = httpx.get(f"{self.base}/healthz", headers=headers, timeout=5)
        assert reply.status_code == 200
        answer: dict[str, Any] = reply.json()
        return answer

    def logged_addresses(self) -> list[str]:
        shown = tzsb("log", "--home", str(self.home), "--json", "--limit", "100")
        assert shown.returncode == 0, shown.stderr
        return [row["client_addr"] for row in reversed(json.loads(shown.stdout))]


Start = Callable[..., AbstractContextManager[Node]]


@pytest.fixture
def start(database_url: str, tmp_path: Path) -> Start:
    """Serve a province node with one app (query of 140101), with extra `tzsb serve` arguments."""

    @contextmanager
    def started(*args: str) -> Iterator[Node]:
        home = tmp_path / "node"
        init_province(home, database_url)
        created = tzsb(
            "app", "create", "--home", str(home), "--appid", "hz-city", "--region", "330100",
            "--busicode", "140101", "--action", "04", "--json",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        secret = json.loads(created.stdout)["secret"]
        log = tmp_path / "serve.log"
        with serving(home, log, args=args) as base:
            yield Node(base, secret, home, log)

    return started


def lock_out(node: Node, forwarded_for: str) -> dict[str, Any]:
    """Three forged signatures (7.4); the answer to the third, which sets the lock."""
    for _ in range(2):
        assert node.post(forwarded_for, forged=True)["code"] == "E_SIGN"
    third = node.post(forwarded_for, forged=True)
    assert third["code"] == "E_LOCKED", third
    return third


def test_behind_a_trusted_proxy_one_caller_is_locked_out_and_another_gets_in(start: Start) -> None:
    with start("--trusted-proxy", "127.0.0.0/8", "--trusted-proxy", "::1/128") as node:
        locked = lock_out(node, ALICE)
        assert f"自地址 {ALICE} " in locked["message"] and f"from {ALICE} " in locked["message"]
        assert PROXY not in locked["message"]

        assert node.post(BOB)["result"] == "0001"  # another caller behind the same proxy
        assert node.post(None)["result"] == "0001"  # the proxy itself (no header)
        again = node.post(ALICE)  # correctly signed now, and still refused: the lock is Alice's
        assert again["code"] == "E_LOCKED" and ALICE in again["message"]
        # Alice writes an address of her own left of what the proxy appended: she is still Alice.
        dodged = node.post(f"198.51.100.1, {ALICE}")
        assert dodged["code"] == "E_LOCKED" and ALICE in dodged["message"]
        # A second proxy of ours between Alice and the node is skipped.
        assert node.post(f"{ALICE}, 127.0.0.9")["code"] == "E_LOCKED"

        # One row per failed signature and per success; the lock-out refusals are tallied, not logged.
        assert node.logged_addresses() == [ALICE, ALICE, BOB, PROXY]


def test_a_malformed_forwarded_for_means_the_proxy_address_and_one_warning(start: Start) -> None:
    with start("--trusted-proxy", "127.0.0.0/8") as node:
        for _ in range(3):
            assert node.post(f"{ALICE}, unknown")["result"] == "0001"
        assert node.logged_addresses() == [PROXY] * 3
        warnings = [line for line in node.log.read_text().splitlines() if "not an IP address" in line]
        assert len(warnings) == 1, node.log.read_text()
        assert PROXY in warnings[0]


def test_without_trusted_proxies_the_header_is_ignored_and_callers_share_the_peer(start: Start) -> None:
    with start() as node:
        locked = lock_out(node, ALICE)
        assert f"自地址 {PROXY} " in locked["message"] and f"from {PROXY} " in locked["message"]
        assert ALICE not in locked["message"]
        # Bob names another address: it is not believed, so he shares the peer and its lock.
        shared = node.post(BOB)
        assert shared["code"] == "E_LOCKED" and f"from {PROXY} " in shared["message"]
        assert node.logged_addresses() == [PROXY, PROXY]  # the two failed signatures, Alice's


def test_health_details_follow_the_resolved_address(start: Start) -> None:
    with start("--trusted-proxy", "127.0.0.0/8") as node:
        assert node.health()["region"] == "330000"  # the proxy host itself is loopback: listed
        assert node.health(ALICE) == {"status": "ok"}  # a caller behind the proxy is a stranger
        # A caller cannot claim loopback: our proxy appends the address it saw.
        assert node.health(f"127.0.0.1, {ALICE}") == {"status": "ok"}
