"""7.4: failures are retried, three in a row mark the link failed for 24 hours, and nothing is lost
or written twice when an answer goes astray."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import orjson

from tests.support import body, call, device, grant, log_rows
from tests.sync.conftest import COUNTY, FLOWING
from tests.sync.nodes import Served, free_port, held, last_seq, link_up, serve_in_thread
from tzsb.app import Node

LOCAL = "county-local"


def _local_records(county: Node, count: int = 5) -> None:
    secret = grant(county, appid=LOCAL, region=COUNTY, busicodes=frozenset("11" + code for code in FLOWING))
    answer = call(county, body(LOCAL, secret, "110101", "01", [device(number) for number in range(count)]))
    assert answer["datalist"]["result"] == "0001"


class Wrapped(httpx.BaseTransport):
    """A real HTTP transport, reopened after each session closes it (the runner opens one per attempt)."""

    def __init__(self, count: int) -> None:
        self._inner: httpx.HTTPTransport | None = None
        self.count = count

    @property
    def inner(self) -> httpx.HTTPTransport:
        if self._inner is None:
            self._inner = httpx.HTTPTransport()
        return self._inner

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None


class LoseAnswers(Wrapped):
    """Passes each request to the parent, then loses the first ``count`` answers (the parent has
    handled the request; the child never learns how)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        if self.count > 0:
            self.count -= 1
            raise httpx.ReadError("connection reset while reading the answer")
        return response


class AlterSign(Wrapped):
    """Flips a character of the first ``count`` answers' signatures."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        content = response.read()
        if self.count <= 0:
            return response
        self.count -= 1
        answer = orjson.loads(content)
        answer["sign"] = ("0" if answer["sign"][0] != "0" else "1") + answer["sign"][1:]
        return httpx.Response(
            response.status_code, headers={"content-type": "application/json"}, content=orjson.dumps(answer)
        )


def test_a_parent_that_cannot_be_reached_fails_the_link_after_three_attempts(county: Node) -> None:
    _local_records(county)
    link_up(county, f"http://127.0.0.1:{free_port()}/tzsb/exchange", "county-330106", "secret", ("0101",))
    before = county.clock.now()

    [report] = county.sync.run()

    assert (report.state, report.attempts, report.records) == ("failed", 3, 0)
    assert report.error is not None and "could not reach the parent" in report.error
    link = county.links.require("up")
    assert (link.state, link.failures) == ("failed", 3)
    assert link.wait_until is not None
    waits = datetime.fromisoformat(link.wait_until) - before
    assert timedelta(hours=23, minutes=59) < waits <= timedelta(hours=24, seconds=5)
    # Each attempt is a row of the log, going out, with why it failed.
    out = [row for row in log_rows(county) if row["direction"] == "out"]
    assert [(row["result"], row["code"]) for row in out] == [("0000", "network")] * 3
    assert all(row["busicode"] == "140101" and row["record_count"] == 5 for row in out)
    # Until the wait is over (or the operator retries) the link is not run again.
    [waiting] = county.sync.run()
    assert (waiting.state, waiting.attempts) == ("failed", 0)
    assert "tzsb sync retry --link up" in (waiting.error or "")
    [status] = county.sync.status()
    assert (status.link.state, status.lag_changes) == ("failed", 5)
    # Once the wait is over, the link has its three attempts again.
    from tzsb.store import links as stored_links

    with county.store.write() as connection:
        stored_links.update(connection, "up", wait_until=(before - timedelta(seconds=1)).isoformat())
    [after_wait] = county.sync.run()
    assert (after_wait.state, after_wait.attempts) == ("failed", 3)


def test_retry_ends_the_wait_and_the_next_pass_delivers(open_node: Callable[..., Node], county: Node) -> None:
    _local_records(county)
    port = free_port()
    city = open_node("city", "city", "330100")
    secret = grant(
        city, appid="county-330106", region=COUNTY, busicodes=frozenset({"140101"}), actions=frozenset({"01", "03"})
    )
    link_up(county, f"http://127.0.0.1:{port}/tzsb/exchange", "county-330106", secret, ("0101",))
    [failed] = county.sync.run()
    assert failed.state == "failed"
    with serve_in_thread(city, port):
        retried = county.sync.retry("up")
        assert (retried.state, retried.failures, retried.wait_until) == ("idle", 0, None)
        [report] = county.sync.run()
    assert (report.state, report.records) == ("ok", 5)
    assert held(city, "0101") == held(county, "0101")
    link = county.links.require("up")
    assert (link.state, link.failures, link.last_error, link.wait_until) == ("ok", 0, None, None)


def test_a_lost_answer_is_sent_again_and_the_parent_replays_instead_of_writing_twice(
    county: Node, city: Served, county_secret: str
) -> None:
    _local_records(county, 8)
    link_up(county, city.url, "county-330106", county_secret, ("0101",))
    county.sync.transport = LoseAnswers(1)

    [report] = county.sync.run()

    assert (report.state, report.attempts, report.records) == ("ok", 2, 8)
    assert held(city.node, "0101") == held(county, "0101")
    # The parent wrote the batch once: the second request was its replay, answered from the first answer.
    assert last_seq(city.node) == 8
    rows = [row for row in log_rows(city.node) if row["appid"] == "county-330106"]
    assert len(rows) == 2 and rows[0]["random"] == rows[1]["random"]
    assert rows[1]["message"].startswith("重复请求")


def test_an_answer_whose_signature_was_altered_is_not_believed(county: Node, city: Served, county_secret: str) -> None:
    _local_records(county, 3)
    link_up(county, city.url, "county-330106", county_secret, ("0101",))
    county.sync.transport = AlterSign(2)

    [report] = county.sync.run()

    assert (report.state, report.attempts) == ("ok", 3)
    out = [row for row in log_rows(county) if row["direction"] == "out"]
    assert [row["code"] for row in out] == ["answer-sign", "answer-sign", ""]
    assert held(city.node, "0101") == held(county, "0101")
    assert last_seq(city.node) == 3


def test_a_wrong_secret_fails_the_link_with_the_parents_reason(county: Node, city: Served, county_secret: str) -> None:
    _local_records(county, 2)
    link_up(county, city.url, "county-330106", "not-the-secret", ("0101",))

    [report] = county.sync.run()

    assert (report.state, report.attempts) == ("failed", 3)
    out = [row["code"] for row in log_rows(county) if row["direction"] == "out"]
    # Three signature failures lock the county's address out at the parent (7.4 on its side too).
    assert out[0] == "E_SIGN"
    assert set(out) <= {"E_SIGN", "E_LOCKED"}
    assert held(city.node) == {}
