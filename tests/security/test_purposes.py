"""Every purpose between every pair of levels, the accepted side: what tests/security/purposes.py
accepts goes through (the refused side is in the hostile-request table), and a node that names a
flow in ``<home>/directions.json`` opens exactly that flow.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security import purposes
from tests.security.conftest import NodePool
from tests.support import body, call, device, grant, log_rows, snapshot
from tzsb import refusals
from tzsb.app import Node, build_node
from tzsb.clock import FixedClock
from tzsb.protocol.messages import response_signed_params
from tzsb.protocol.signing import SignAlgorithm, verify
from tzsb.registry import MasterKey
from tzsb.settings import load_settings, write_config

ACCEPTED = [combination for combination in purposes.COMBINATIONS if purposes.expected(*combination) is None]
#: Device numbers of this module (the hostile-request table's keys stay below 10,000).
FIRST_KEY = 50_000


def test_the_table_covers_every_purpose_and_level_pair() -> None:
    assert len(purposes.COMBINATIONS) == 8 * 6 * 6 * 2
    accepted = {(purpose, caller, node) for purpose, caller, node, _ in ACCEPTED}
    # 90 only between regulators, along the chain (neighbours, the province with its lower levels) or
    # inside one regulator: never a county or city with the national level, never external or public.
    assert {(caller, node) for purpose, caller, node in accepted if purpose == "90"} == {
        (caller, node) for caller, node in purposes.CHAIN_FLOWS
    } | {(level, level) for level in purposes.REGULATORS}
    assert len(ACCEPTED) == 96


@pytest.mark.parametrize(
    ("purpose", "caller", "node_level", "action"), ACCEPTED, ids=["-".join(item) for item in ACCEPTED]
)
def test_accepted(node_pool: NodePool, purpose: str, caller: str, node_level: str, action: str) -> None:
    node = node_pool.get(node_level, purposes.REGIONS[node_level])
    appid = f"ok-{purpose}-{caller}-{node_level}-{action}"
    busicode = f"{purpose}0101"
    secret = grant(node, appid=appid, region=purposes.REGIONS[caller], level=caller, busicodes=frozenset({busicode}))
    record = device(FIRST_KEY + ACCEPTED.index((purpose, caller, node_level, action)))
    before = snapshot(node)

    answer = call(node, body(appid, secret, busicode, action, [record] if action == "01" else [{}]))

    assert answer["datalist"]["result"] == "0001", answer
    assert verify(response_signed_params(answer), secret, SignAlgorithm.MD5, answer["sign"])
    stored = {row[1] for row in snapshot(node)["records"]} - {row[1] for row in before["records"]}
    assert stored == ({record["EQP_CODE"]} if action == "01" else set())


# -- a node that names a flow ----------------------------------------------------------------------------------


@pytest.fixture
def national_naming_county_to_national(database_url: str, tmp_path: Path, clock: FixedClock) -> Iterator[Node]:
    """A national node whose ``<home>/directions.json`` lets counties send 0101 to it directly."""
    home = tmp_path / "national"
    home.mkdir()
    (home / "directions.json").write_text(
        '{"0101": ["county<->city<->province<->national", "county->national"]}', encoding="utf-8"
    )
    config = load_settings(home, environ={}, level="national", region="100000", database_url=database_url)
    MasterKey.generate().write(config.master_key_path)
    write_config(config)
    node = build_node(config, clock)
    yield node
    node.close()


def test_a_node_naming_county_to_national_opens_exactly_that_flow(national_naming_county_to_national: Node) -> None:
    node = national_naming_county_to_national
    county = grant(node, appid="xihu", region="330106", busicodes=frozenset({"900101", "900102"}))
    city = grant(node, appid="hz-city", region="330100", busicodes=frozenset({"900101"}))
    added = call(node, body("xihu", county, "900101", "01", [device(1)]))
    assert added["datalist"]["counts"]["inserted"] == 1, added

    listed = purposes.LISTED.replace("county→city, ", "county→city, county→national, ")
    name = "特种设备基础数据接口"
    for appid, secret, busicode, action, busilist, refusal in [
        # national → county: the file names one direction only.
        ("xihu", county, "900101", "04", [{}],
         refusals.direction_not_allowed("0101", name, "国家→县（区）级", "national→county", listed,
                                        "national->county")),
        # a city: not named.
        ("hz-city", city, "900101", "01", [device(2)],
         refusals.direction_not_allowed("0101", name, "市级→国家", "city→national", listed, "city->national")),
        # another business type: not named.
        ("xihu", county, "900102", "01", [{"UNIT_CODE": "91110000600037341L"}],
         refusals.direction_not_allowed("0102", "单位基础数据接口", "县（区）级→国家", "county→national",
                                        purposes.LISTED, "county->national")),
    ]:  # fmt: skip
        before, logged = snapshot(node), len(log_rows(node))
        answer = call(node, body(appid, secret, busicode, action, busilist, random=f"{appid}-{busicode}-{action}"))
        assert (answer["datalist"]["code"], answer["datalist"]["message"]) == ("E_FORBIDDEN", refusal.message)
        # Nothing written but the claim of its random and its log row.
        assert snapshot(node) == {**before, "nonces": sorted({*before["nonces"], (appid, answer["random"])})}
        assert [(row["code"], row["message"]) for row in log_rows(node)[logged:]] == [("E_FORBIDDEN", refusal.message)]
    assert [(row[0], row[1]) for row in snapshot(node)["records"]] == [("0101", device(1)["EQP_CODE"])]
