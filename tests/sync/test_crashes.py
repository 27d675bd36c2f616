"""Nothing lost, nothing twice, across crashes: the syncing process (a real `tzsb sync run`) is
killed with SIGKILL at each step, restarted, and finishes with the parent holding exactly the
child's records (tombstones included) and having written each change once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.support import body, call, device, grant
from tests.sync.conftest import COUNTY, FLOWING
from tests.sync.nodes import Served, held, last_seq, link_up
from tzsb.app import Node
from tzsb.sync import FAULT_VARIABLE

LOCAL = "county-local"


def _sync(home: Path, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != FAULT_VARIABLE}
    if fault is not None:
        env[FAULT_VARIABLE] = fault
    return subprocess.run(
        [sys.executable, "-m", "tzsb", "sync", "run", "--home", str(home), "--json"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("point", ["before_send", "after_answer", "before_position"])
def test_a_push_killed_at_any_step_finishes_exactly_once(
    point: str, county: Node, city: Served, county_secret: str
) -> None:
    secret = grant(county, appid=LOCAL, region=COUNTY, busicodes=frozenset("11" + code for code in FLOWING))
    answer = call(county, body(LOCAL, secret, "110101", "01", [device(number) for number in range(30)]))
    assert answer["datalist"]["result"] == "0001"
    removed = [{"EQP_CODE": device(number)["EQP_CODE"]} for number in (3, 13, 23)]
    assert call(county, body(LOCAL, secret, "110101", "03", removed))["datalist"]["result"] == "0001"
    link_up(county, city.url, "county-330106", county_secret, ("0101",), max_records=10)
    home = county.settings.home

    killed = _sync(home, point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    finished = _sync(home)

    assert finished.returncode == 0, finished.stderr
    [report] = orjson.loads(finished.stdout)
    assert report["state"] == "ok"
    assert held(city.node, "0101") == held(county, "0101")
    # Each change written once at the parent: 27 live records, and 3 tombstones (each given to the
    # parent as a record, then deleted).
    assert last_seq(city.node) == 27 + 2 * 3
    again = _sync(home)
    assert orjson.loads(again.stdout)[0]["batches"] == 0


@pytest.mark.parametrize("point", ["pull_received", "pull_applied"])
def test_a_pull_killed_at_any_step_finishes_exactly_once(
    point: str, county: Node, city: Served, county_secret: str
) -> None:
    office = grant(city.node, appid="city-office", region="330100", busicodes=frozenset({"110101"}))
    records = [device(number) for number in range(25)]
    assert call(city.node, body("city-office", office, "110101", "01", records))["datalist"]["result"] == "0001"
    gone = [{"EQP_CODE": device(number)["EQP_CODE"]} for number in (2, 12)]
    assert call(city.node, body("city-office", office, "110101", "03", gone))["datalist"]["result"] == "0001"
    link_up(county, city.url, "county-330106", county_secret, ("0101",), name="down", direction="down", max_records=10)
    home = county.settings.home

    killed = _sync(home, point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    finished = _sync(home)

    assert finished.returncode == 0, finished.stderr
    live = {key: value for key, value in held(city.node, "0101").items() if not value[1]}
    assert held(county, "0101") == live
    # Applied once: one change per record here, none for the deleted ones it never held.
    assert last_seq(county) == len(live)
