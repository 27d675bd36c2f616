"""A four-level chain as operators would run it: two counties → city → province → national, each a
real `tzsb serve` process with its own home, set up with the `tzsb` command, on loopback.

10,000 devices (and units and people) are created at the two counties through their own
interfaces, some modified and deleted, one refused by the city's stricter rule and then corrected,
one moved between the counties by the city. After `tzsb sync run` at each level every node holds
exactly what it should, by region, with equal digests; a second pass sends nothing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.support import device
from tests.sync.nodes import Databases, free_port, make_home, open_home
from tests.web.servers import serving
from tzsb.app import Node
from tzsb.catalog.samples import sample_records
from tzsb.client import ExchangeClient
from tzsb.protocol import SignAlgorithm
from tzsb.registry import AppSpec
from tzsb.settings import load_settings
from tzsb.store.schema import records
from tzsb.sync import LinkSpec

A, B = "330106", "330108"
LEVELS = {"national": "100000", "province": "330000", "city": "330100", "county-a": A, "county-b": B}
FLOWING = ("0101", "0102", "0103")
DEVICES_PER_COUNTY = 5000


def tzsb(*args: str, secret: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TZSB_SYNC_BACKOFF_SECONDS": "0"}
    if secret is not None:
        env["TZSB_LINK_SECRET"] = secret
    done = subprocess.run(
        [sys.executable, "-m", "tzsb", *args], capture_output=True, text=True, timeout=600, env=env, check=False
    )
    assert done.returncode == 0, f"tzsb {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


def app(node: Node, appid: str, region: str, purpose: str, *actions: str, **options: Any) -> str:
    _, secret = node.registry.create(
        AppSpec(
            appid=appid,
            region=region,
            busicodes=frozenset(purpose + code for code in FLOWING),
            actions=frozenset(actions),
            **options,
        )
    )
    return secret


def link(node: Node, name: str, url: str, appid: str, secret: str, direction: str, *businesses: str) -> None:
    node.links.add(LinkSpec(name=name, url=url, appid=appid, secret=secret, direction=direction, businesses=businesses))


def sync(home: Path) -> list[dict[str, Any]]:
    reports: list[dict[str, Any]] = orjson.loads(tzsb("sync", "run", "--home", str(home), "--json").stdout)
    assert all(report["state"] == "ok" for report in reports), reports
    return reports


def held(home: Path) -> dict[tuple[str, str], tuple[str, str, bool]]:
    """(business, key) → (region, digest, deleted) of every record the node in ``home`` holds."""
    engine = sa.create_engine(
        load_settings(home, environ={}).database.replace("postgresql://", "postgresql+psycopg://", 1)
    )
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(records.c.business, records.c.record_key, records.c.region, records.c.data, records.c.deleted)
            ).all()
    finally:
        engine.dispose()
    found: dict[tuple[str, str], tuple[str, str, bool]] = {}
    for business, key, region, data, deleted in rows:
        document = orjson.loads(data) if isinstance(data, str | bytes) else data
        digest = hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()
        found[(business, key)] = (region, digest, bool(deleted))
    return found


def in_region(found: dict[tuple[str, str], tuple[str, str, bool]], prefix: str) -> dict[Any, Any]:
    return {key: value for key, value in found.items() if value[0].startswith(prefix)}


def devices_of(county: str) -> list[dict[str, Any]]:
    return [
        device(number, AREA_CODE=county, EQP_CODE=f"3110{county}2015{number:05d}")
        for number in range(DEVICES_PER_COUNTY)
    ]


@pytest.fixture
def chain(databases: Databases, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The five homes, set up as their operators would (apps issued by each parent, links added by
    each child; in-process here: the commands themselves are tested in test_cli), then served."""
    homes = {
        name: make_home(tmp_path, name, name.split("-")[0], region, databases.url(name))
        for name, region in LEVELS.items()
    }
    # The city's rule is stricter than the counties': a bad USCC check digit is an error there.
    (homes["city"] / "rules.json").write_text('{"0101": {"severity": {"use-unit-code-check-digit": "error"}}}')
    ports = {name: free_port() for name in LEVELS}
    urls = {name: f"http://127.0.0.1:{port}/tzsb/exchange" for name, port in ports.items()}
    nodes = {name: open_home(home) for name, home in homes.items()}
    try:
        for county, region in (("county-a", A), ("county-b", B)):
            secret = app(
                nodes["city"], f"county-{region}", region, "14", "01", "03", "04", unmasked=frozenset({"0101"})
            )
            link(nodes[county], "up", urls["city"], f"county-{region}", secret, "up", *FLOWING)
            link(nodes[county], "down", urls["city"], f"county-{region}", secret, "down", "0101")
        secret = app(nodes["province"], "city-330100", "330100", "14", "01", "03")
        link(nodes["city"], "up", urls["province"], "city-330100", secret, "up", *FLOWING)
        secret = app(nodes["national"], "province-330000", "330000", "12", "01", "03")
        link(nodes["province"], "up", urls["national"], "province-330000", secret, "up", *FLOWING)
        locals_ = {
            county: app(nodes[county], "county-local", region, "11", "01", "02", "03")
            for county, region in (("county-a", A), ("county-b", B))
        }
        city_office = app(nodes["city"], "city-office", "330100", "11", "01", "02", overrides=frozenset({"0101"}))
    finally:
        for node in nodes.values():
            node.close()
    with ExitStack() as stack:
        for name in LEVELS:
            log = tmp_path / f"{name}.log"
            stack.enter_context(serving(homes[name], log, {"TZSB_SYNC_SCHEDULE": "false"}, port=ports[name]))
        yield {"homes": homes, "urls": urls, "locals": locals_, "city_office": city_office}


def send(url: str, appid: str, secret: str, busicode: str, action: str, batch: list[dict[str, Any]]) -> None:
    with ExchangeClient(url, appid, secret, SignAlgorithm.MD5) as client:
        for start in range(0, len(batch), 1000):
            answer = client.send(busicode, action, batch[start : start + 1000])
            assert answer.ok, answer.datalist


def test_a_four_level_chain_ends_with_every_node_holding_what_it_should(chain: dict[str, Any]) -> None:
    homes, urls, locals_ = chain["homes"], chain["urls"], chain["locals"]
    samples = sample_records()
    send(urls["county-a"], "county-local", locals_["county-a"], "110102", "01", samples["0102"])
    send(urls["county-a"], "county-local", locals_["county-a"], "110103", "01", samples["0103"])
    devices = {county: devices_of(region) for county, region in (("county-a", A), ("county-b", B))}
    refused = devices["county-a"][17] | {"USE_UNIT_CODE": "91110000600037341X"}  # warns here, an error at the city
    devices["county-a"][17] = refused
    for county in ("county-a", "county-b"):
        send(urls[county], "county-local", locals_[county], "110101", "01", devices[county])
    modified = [
        record | {"USE_STATUS": "1", "UPDATE_TIME": "2026-11-10 08:00:00"} for record in devices["county-b"][:40]
    ]
    send(urls["county-b"], "county-local", locals_["county-b"], "110101", "02", modified)
    removed = [{"EQP_CODE": record["EQP_CODE"]} for record in devices["county-a"][100:130]]
    send(urls["county-a"], "county-local", locals_["county-a"], "110101", "03", removed)

    for level in ("county-a", "county-b", "city", "province"):
        reports = sync(homes[level])
    county_a_up = orjson.loads(tzsb("sync", "status", "--home", str(homes["county-a"]), "--json").stdout)
    assert [item["parked"] for item in county_a_up if item["name"] == "up"] == [1]

    # The county corrects the refused record; the next pass delivers it.
    corrected = devices["county-a"][17] | {"USE_UNIT_CODE": "91110000600037341L", "UPDATE_TIME": "2026-11-11 08:00:00"}
    send(urls["county-a"], "county-local", locals_["county-a"], "110101", "01", [corrected])
    # The city moves one of county A's devices to county B.
    moved = devices["county-a"][5] | {"AREA_CODE": B, "UPDATE_TIME": "2026-11-12 08:00:00"}
    send(urls["city"], "city-office", chain["city_office"], "110101", "01", [moved])
    for level in ("county-a", "county-b", "city", "province"):
        reports = sync(homes[level])
    assert all(report["parked"] == 0 for report in reports)

    found = {name: held(home) for name, home in homes.items()}
    city = found["city"]
    assert len(city) == 2 * DEVICES_PER_COUNTY + len(samples["0102"]) + len(samples["0103"])
    assert sum(deleted for _, _, deleted in city.values()) == 30
    # Each county holds exactly the city's records of its region (the moved device left A for B) ...
    moved_key = ("0101", moved["EQP_CODE"])
    for county, region in (("county-a", A), ("county-b", B)):
        mine = {key: value for key, value in in_region(found[county], region).items() if key != moved_key}
        assert mine == {key: value for key, value in in_region(city, region).items() if key != moved_key}
    assert found["county-a"][moved_key][2] is True  # a tombstone where it left
    assert found["county-b"][moved_key] == city[moved_key]  # the city's record where it arrived
    # ... and every level above holds exactly what the level below holds.
    assert found["province"] == city
    assert found["national"] == found["province"]

    # A second pass at every level sends and pulls nothing.
    for level in ("county-a", "county-b", "city", "province"):
        assert all(report["batches"] <= 1 and report["records"] == 0 for report in sync(homes[level]))
