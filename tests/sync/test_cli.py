"""`tzsb link …` and `tzsb sync …` as an operator types them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from tests.support import body, call, device, grant
from tests.sync.conftest import COUNTY
from tests.sync.nodes import Served, held
from tzsb.app import Node


def tzsb(*args: str, secret: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("TZSB_LINK_SECRET", None)
    if secret is not None:
        env["TZSB_LINK_SECRET"] = secret
    return subprocess.run(
        [sys.executable, "-m", "tzsb", *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def _records(county: Node, count: int) -> None:
    secret = grant(county, appid="county-local", region=COUNTY, busicodes=frozenset({"110101"}))
    assert (
        call(county, body("county-local", secret, "110101", "01", [device(n) for n in range(count)]))["datalist"][
            "result"
        ]
        == "0001"
    )


def _records_more(county: Node) -> None:
    secret = grant(county, appid="county-more", region=COUNTY, busicodes=frozenset({"110101"}))
    more = [device(n) for n in (100, 101)]
    assert call(county, body("county-more", secret, "110101", "01", more))["datalist"]["result"] == "0001"


def test_an_operator_links_a_county_to_its_city_and_syncs(county: Node, city: Served, county_secret: str) -> None:
    home = str(county.settings.home)
    _records(county, 6)

    added = tzsb(
        "link", "add", "up", "--home", home, "--url", city.url, "--appid", "county-330106", "--direction", "up",
        "--business", "0101", "--every", "6h", "--json", secret=county_secret,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    shown = orjson.loads(added.stdout)
    assert (shown["purpose"], shown["every"], shown["state"], shown["sign"]) == ("14", "6h", "idle", "MD5")
    assert county_secret not in added.stdout and "secret" not in shown
    listed = orjson.loads(tzsb("link", "list", "--home", home, "--json").stdout)
    assert [item["name"] for item in listed] == ["up"]
    assert county_secret not in tzsb("link", "show", "up", "--home", home).stdout

    ran = tzsb("sync", "run", "--home", home, "--json")
    assert ran.returncode == 0, ran.stderr
    [report] = orjson.loads(ran.stdout)
    assert (report["link"], report["state"], report["records"], report["parked"]) == ("up", "ok", 6, 0)
    assert held(city.node, "0101") == held(county, "0101")

    # Without --json and outside a terminal: a plain progress line per page on stderr, the summary on stdout.
    _records_more(county)
    plain = tzsb("sync", "run", "--home", home)
    assert plain.returncode == 0, plain.stderr
    assert "up 0101: 2/2" in plain.stderr.splitlines()
    assert plain.stdout.startswith("up (up): ok, 2 record(s), 0 parked, 1 request(s)")
    status = orjson.loads(tzsb("sync", "status", "--home", home, "--json").stdout)
    assert [(item["name"], item["state"], item["lag_changes"], item["parked"]) for item in status] == [
        ("up", "ok", 0, 0)
    ]
    assert status[0]["last_success_at"] is not None
    # A full upload sends everything again; the parent keeps what it has (nothing newer).
    full = tzsb("sync", "full", "--link", "up", "--home", home, "--json")
    assert full.returncode == 0, full.stderr
    assert orjson.loads(full.stdout)[0]["records"] == 8
    assert held(city.node, "0101") == held(county, "0101")

    assert tzsb("link", "disable", "up", "--home", home).returncode == 0
    assert orjson.loads(tzsb("sync", "run", "--home", home, "--json").stdout) == []
    assert tzsb("link", "enable", "up", "--home", home).returncode == 0
    assert tzsb("sync", "retry", "--link", "up", "--home", home).returncode == 0
    assert tzsb("link", "remove", "up", "--home", home).returncode == 0
    assert orjson.loads(tzsb("link", "list", "--home", home, "--json").stdout) == []


def test_a_link_the_matrix_forbids_is_refused_at_the_command(county: Node, tmp_path: Path) -> None:
    refused = tzsb(
        "link", "add", "up", "--home", str(county.settings.home), "--url", "http://127.0.0.1:9/tzsb/exchange",
        "--appid", "county-330106", "--direction", "up", "--business", "0201", secret="s",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "up link for 0201 with purpose 14 (county 330106 → city 330100)" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_failed_pass_exits_non_zero_and_says_why(county: Node) -> None:
    home = str(county.settings.home)
    _records(county, 1)
    added = tzsb(
        "link", "add", "up", "--home", home, "--url", "http://127.0.0.1:9/tzsb/exchange", "--appid", "county-330106",
        "--direction", "up", "--business", "0101", secret="s",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    env_backoff = {"TZSB_SYNC_BACKOFF_SECONDS": "0"}
    ran = subprocess.run(
        [sys.executable, "-m", "tzsb", "sync", "run", "--home", home],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env_backoff}, check=False,
    )  # fmt: skip
    assert ran.returncode == 1
    assert "up (up): failed" in ran.stdout and "could not reach the parent" in ran.stdout
    status = tzsb("sync", "status", "--home", home)
    assert "failed" in status.stdout


def test_the_secret_may_be_typed_at_a_prompt_and_is_never_shown(county: Node) -> None:
    home = str(county.settings.home)
    typed = subprocess.run(
        [sys.executable, "-m", "tzsb", "link", "add", "up", "--home", home, "--url", "http://127.0.0.1:9/x",
         "--appid", "county-330106", "--direction", "up", "--business", "0101"],
        input="typed-secret-value\n", capture_output=True, text=True, timeout=120,
        env={key: value for key, value in os.environ.items() if key != "TZSB_LINK_SECRET"}, check=False,
    )  # fmt: skip
    assert typed.returncode == 0, typed.stderr
    assert "typed-secret-value" not in typed.stdout + typed.stderr
    assert county.links.require("up").secret == "typed-secret-value"
