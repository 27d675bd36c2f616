"""Bad networks between a county and its city (a fault proxy on loopback): connections reset before
and after the city handled a batch, stalled past the timeout, answers cut short or with an altered
signature, a 503. The end state is always the same — the city holds exactly the county's records,
each change written once — and nothing hangs."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from tests.support import body, call, device, grant, log_rows
from tests.sync.conftest import COUNTY
from tests.sync.nodes import Served, held, last_seq, link_up
from tests.sync.proxy import FaultProxy
from tzsb.app import Node


def _proxied(city: Served) -> FaultProxy:
    address = urlsplit(city.url)
    assert address.hostname is not None and address.port is not None
    return FaultProxy(address.hostname, address.port)


def _county_records(county: Node, count: int) -> None:
    secret = grant(county, appid="county-local", region=COUNTY, busicodes=frozenset({"110101"}))
    records = [device(number) for number in range(count)]
    assert call(county, body("county-local", secret, "110101", "01", records))["datalist"]["result"] == "0001"
    gone = [{"EQP_CODE": device(number)["EQP_CODE"]} for number in (1, 8)]
    assert call(county, body("county-local", secret, "110101", "03", gone))["datalist"]["result"] == "0001"


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("reset", "network"),
        ("reset_after_forward", "network"),
        ("stall", "timeout"),
        ("truncate", "network"),
        ("alter_sign", "answer-sign"),
        ("http_503", "http"),
    ],
)
def test_a_fault_twice_in_a_row_then_the_pass_finishes_exactly_once(
    fault: str, code: str, county: Node, city: Served, county_secret: str
) -> None:
    _county_records(county, 12)
    with _proxied(city) as proxy:
        link_up(
            county, proxy.url(urlsplit(city.url).path), "county-330106", county_secret, ("0101",),
            max_records=5, timeout_seconds=1.0,
        )  # fmt: skip
        proxy.plan(fault, fault)
        began = time.monotonic()
        [report] = county.sync.run()
        spent = time.monotonic() - began

    assert (report.state, report.attempts) == ("ok", 3)
    assert proxy.faults_applied == [fault, fault]
    assert spent < 10  # a stall costs its timeout, never a hang
    assert held(city.node, "0101") == held(county, "0101")
    # 10 live records, and 2 tombstones each given to the city then deleted: every change once.
    assert last_seq(city.node) == 10 + 2 * 2
    failed = [row["code"] for row in log_rows(county) if row["direction"] == "out" and row["result"] == "0000"]
    assert failed[:2] == [code, code]


def test_every_fault_across_passes_ends_in_the_same_state(county: Node, city: Served, county_secret: str) -> None:
    _county_records(county, 30)
    faults = ["reset", "truncate", "alter_sign", "reset_after_forward", "http_503", "stall", "reset_after_forward"]
    with _proxied(city) as proxy:
        link_up(
            county, proxy.url(urlsplit(city.url).path), "county-330106", county_secret, ("0101",),
            max_records=4, timeout_seconds=1.0,
        )  # fmt: skip
        proxy.plan(*faults)
        for _ in range(len(faults)):
            [report] = county.sync.run()
            if report.state == "ok":
                break
            county.sync.retry("up")
        assert report.state == "ok"
        assert proxy.faults_applied == faults

    assert held(city.node, "0101") == held(county, "0101")
    assert last_seq(city.node) == 28 + 2 * 2
