"""`tzsb serve` runs the links' schedule itself; with two worker processes exactly one runs a link
at a time (a lease in the database), so the parent receives each batch once."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support import body, call, device, grant, log_rows
from tests.sync.conftest import COUNTY
from tests.sync.nodes import Served, held, link_up
from tests.web.servers import serving
from tzsb.app import Node


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_served_node_sends_its_changes_on_schedule(
    workers: str, county: Node, city: Served, county_secret: str, tmp_path: Path
) -> None:
    local = grant(county, appid="county-local", region=COUNTY, busicodes=frozenset({"110101"}))
    link_up(county, city.url, "county-330106", county_secret, ("0101",), every_seconds=1, max_records=7)
    environment = {"TZSB_SYNC_TICK_SECONDS": "0.2", "TZSB_WORKERS": workers}
    with serving(county.settings.home, tmp_path / "county.log", environment) as base:
        for round_number in range(3):
            records = [device(round_number * 10 + n) for n in range(10)]
            assert call(county, body("county-local", local, "110101", "01", records))["datalist"]["result"] == "0001"
            deadline = time.monotonic() + 30
            while len(held(city.node, "0101")) < (round_number + 1) * 10:
                assert time.monotonic() < deadline, (tmp_path / "county.log").read_text()
                time.sleep(0.1)
        assert base

    assert held(city.node, "0101") == held(county, "0101")
    sent = [row["random"] for row in log_rows(city.node) if row["appid"] == "county-330106"]
    # Each batch reached the parent once: no process sent a batch another had sent.
    assert all(count == 1 for count in Counter(sent).values()), Counter(sent)
    assert county.links.require("up").state == "ok"
