"""Who is late to report (5.4): county and city daily, a province every two days, or as the
operator set per app; judged by the last accepted write in the log, with an injected clock."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

from tests.support import body, call, device, grant
from tzsb.app import Node
from tzsb.clock import FixedClock
from tzsb.monitor import reporters


def _apps(node: Node) -> dict[str, str]:
    return {
        "xihu": grant(node, appid="xihu", region="330106"),  # a county: daily
        "hz": grant(node, appid="hz", region="330100"),  # a city: daily
        "reader": grant(node, appid="reader", region="330106", actions=frozenset({"04"})),  # reads only
        "national": grant(node, appid="national", region="100000", busicodes=frozenset({"130101"})),  # above
        "partner": grant(
            node,
            appid="partner",
            region="330000",
            level="external",
            busicodes=frozenset({"210101"}),
            report_every_seconds=12 * 3600,
        ),
    }


def _states(node: Node) -> dict[str, tuple[str, str | None]]:
    return {item.appid: ("overdue" if item.overdue else "on time", item.last_data) for item in reporters(node)}


def test_overdue_reporters_by_level_and_by_the_operators_interval(node: Node, clock: FixedClock) -> None:
    secrets = _apps(node)
    start = clock.now()
    assert set(_states(node)) == {"xihu", "hz", "partner"}  # not a reader, not the level above
    assert {item.appid: item.every_seconds for item in reporters(node)} == {
        "xihu": 86400, "hz": 86400, "partner": 43200,
    }  # fmt: skip
    assert all(state == "on time" for state, _ in _states(node).values())

    clock.advance(timedelta(hours=2))
    assert call(node, body("xihu", secrets["xihu"], "140101", "01", [device(1)]))["datalist"]["result"] == "0001"
    refused = call(node, body("hz", secrets["hz"], "140101", "01", [device(2, AREA_CODE="330205")]))
    assert refused["datalist"]["code"] == "E_REGION"  # a refused write is no data
    delivered = (start + timedelta(hours=2)).isoformat(timespec="milliseconds")

    clock.advance(timedelta(hours=11))
    assert _states(node) == {"xihu": ("on time", delivered), "hz": ("on time", None), "partner": ("overdue", None)}
    clock.advance(timedelta(hours=12))  # 25 h after the apps were created, 23 h after xihu's data
    assert _states(node) == {"xihu": ("on time", delivered), "hz": ("overdue", None), "partner": ("overdue", None)}
    clock.advance(timedelta(hours=2))
    assert _states(node)["xihu"] == ("overdue", delivered)
    [xihu] = [item for item in reporters(node) if item.appid == "xihu"]
    assert xihu.due_at == (start + timedelta(hours=26)).isoformat(timespec="seconds")


def test_monitor_status_prints_and_exits_non_zero_when_one_is_overdue(node: Node) -> None:
    grant(node, appid="xihu", region="330106")
    created = subprocess.run(
        [sys.executable, "-m", "tzsb", "app", "create", "--home", str(node.settings.home), "--appid", "weekly",
         "--region", "330106", "--busicode", "140101", "--action", "01", "--report-every", "7d", "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["report_every_seconds"] == 7 * 86400
    done = subprocess.run(
        [sys.executable, "-m", "tzsb", "monitor", "status", "--home", str(node.settings.home), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # The test node's apps were made a week ago by its fixed clock; the command reads the real one.
    assert done.returncode == 1, done.stderr
    states = {item["appid"]: item["state"] for item in json.loads(done.stdout)}
    assert states == {"xihu": "overdue", "weekly": "on time"}
    bad = subprocess.run(
        [sys.executable, "-m", "tzsb", "app", "create", "--home", str(node.settings.home), "--appid", "x",
         "--region", "330106", "--busicode", "140101", "--action", "01", "--report-every", "often"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "--report-every 'often': give a number and a unit" in bad.stderr
