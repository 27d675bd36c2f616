"""Downward pull: what the parent holds for this node's region arrives here once, through the same
validation and upsert as any add, and moves with the records that move."""

from __future__ import annotations

from tests.support import body, call, device, grant, log_rows
from tests.sync.conftest import COUNTY
from tests.sync.nodes import Served, held, link_up
from tzsb.app import Node
from tzsb.exchange import reassign_record

OTHER_COUNTY = "330108"


def _city_app(city: Node) -> str:
    """The city's own system, which writes records for the counties under it."""
    return grant(
        city, appid="city-office", region="330100", busicodes=frozenset({"110101"}), overrides=frozenset({"0101"})
    )


def _city_write(city: Node, secret: str, action: str, records: list[dict[str, object]]) -> None:
    answer = call(city, body("city-office", secret, "110101", action, records))
    assert answer["datalist"]["result"] == "0001", answer["datalist"]


def test_the_parents_records_for_this_region_arrive_once(county: Node, city: Served, county_secret: str) -> None:
    office = _city_app(city.node)
    _city_write(city.node, office, "01", [device(number) for number in range(12)])
    _city_write(city.node, office, "01", [device(50, AREA_CODE=OTHER_COUNTY, EQP_CODE="31103301082015000050")])
    link_up(county, city.url, "county-330106", county_secret, ("0101",), name="down", direction="down", max_records=5)

    [report] = county.sync.run()

    assert (report.state, report.records, report.parked) == ("ok", 12, 0)
    mine = {key: value for key, value in held(city.node, "0101").items() if not key[1].startswith("311033010820")}
    assert held(county, "0101") == mine
    # Written under the link's identity, logged like any write, and never sent back up.
    rows = [row for row in log_rows(county) if row["appid"] == "link:down"]
    assert rows and all(row["result"] == "0001" for row in rows)
    # Another pass pulls nothing new.
    [again] = county.sync.run()
    assert (again.state, again.records) == ("ok", 0)
    # A delete at the parent reaches the child as a delete.
    _city_write(city.node, office, "03", [{"EQP_CODE": device(3)["EQP_CODE"]}])
    _city_write(city.node, office, "01", [device(4, USE_STATUS="1", UPDATE_TIME="2026-11-05 08:00:00")])
    [report] = county.sync.run()
    assert (report.records, report.deleted) == (2, 1)
    assert held(county, "0101") == {key: value for key, value in held(city.node, "0101").items() if key in mine}


def test_a_record_moved_between_counties_leaves_one_and_reaches_the_other(
    open_node: object, county: Node, city: Served, county_secret: str
) -> None:
    from collections.abc import Callable

    assert callable(open_node)
    factory: Callable[..., Node] = open_node
    other = factory("county-b", "county", OTHER_COUNTY)
    other_secret = grant(
        city.node, appid="county-330108", region=OTHER_COUNTY, busicodes=frozenset({"140101"}),
        actions=frozenset({"01", "03", "04"}),
    )  # fmt: skip
    office = _city_app(city.node)
    _city_write(city.node, office, "01", [device(1), device(2)])
    link_up(county, city.url, "county-330106", county_secret, ("0101",), name="down", direction="down")
    link_up(other, city.url, "county-330108", other_secret, ("0101",), name="down", direction="down")
    county.sync.run()
    other.sync.run()
    assert len(held(county, "0101")) == 2
    assert held(other, "0101") == {}

    moved = device(2, AREA_CODE=OTHER_COUNTY, UPDATE_TIME="2026-11-06 09:00:00")
    _city_write(city.node, office, "01", [moved])
    [left] = county.sync.run()
    [arrived] = other.sync.run()

    key = ("0101", moved["EQP_CODE"])
    assert (left.records, left.deleted) == (1, 1)
    assert held(county, "0101")[key][1] is True  # gone from the county it left
    assert arrived.records == 1
    assert held(other, "0101") == {key: held(city.node, "0101")[key]}
    # An operator's reassignment moves a record the same way.
    reassign_record(city.node.store, city.node.catalog, city.node.clock, "0101", device(1)["EQP_CODE"], OTHER_COUNTY)
    county.sync.run()
    other.sync.run()
    assert held(county, "0101")[("0101", device(1)["EQP_CODE"])][1] is True
    assert ("0101", device(1)["EQP_CODE"]) in held(other, "0101")


def test_a_pulled_record_this_nodes_rules_refuse_is_parked_and_the_rest_applied(
    open_node: object, city: Served, county_secret: str
) -> None:
    """The county makes a bad USCC check digit an error where the city only warns: the one record
    with it is parked with the county's reason, the other three are applied, and the cursor moves."""
    from collections.abc import Callable

    assert callable(open_node)
    factory: Callable[..., Node] = open_node
    county = factory("strict-county", "county", COUNTY, rules_check_seconds=0.0)
    (county.settings.home / "rules.json").write_text(
        '{"0101": {"severity": {"use-unit-code-check-digit": "error"}}}', encoding="utf-8"
    )
    office = _city_app(city.node)
    bad = device(2, USE_UNIT_CODE="91110000600037341X")
    _city_write(city.node, office, "01", [device(0), device(1), bad, device(3)])
    link_up(county, city.url, "county-330106", county_secret, ("0101",), name="down", direction="down")

    [report] = county.sync.run()

    assert (report.state, report.records, report.parked) == ("ok", 3, 1)
    [parked] = county.sync.parked("down")
    assert (parked.key, parked.code) == (bad["EQP_CODE"], "E_VALIDATION")
    assert "USE_UNIT_CODE" in parked.message
    assert ("0101", bad["EQP_CODE"]) not in held(county, "0101")
    assert len(held(county, "0101")) == 3
    [again] = county.sync.run()
    assert (again.records, again.parked) == (0, 0)


def test_a_moved_record_is_a_tombstone_in_the_feed_of_the_region_it_left(county: Node, city: Served) -> None:
    """The change feed of an app scoped to one county tells it of a record that left the county,
    as a tombstone of its key and the county (nothing of where it went)."""
    office = _city_app(city.node)
    _city_write(city.node, office, "01", [device(1)])
    reader = grant(city.node, appid="reader", region=COUNTY, busicodes=frozenset({"140101"}), actions=frozenset({"04"}))
    first = call(city.node, body("reader", reader, "140101", "04", [{"_since": "0"}]))["datalist"]
    assert len(first["busilist"]) == 1
    _city_write(city.node, office, "01", [device(1, AREA_CODE=OTHER_COUNTY, UPDATE_TIME="2026-11-06 09:00:00")])

    feed = call(city.node, body("reader", reader, "140101", "04", [{"_since": first["next_since"]}]))["datalist"]

    assert feed["busilist"] == [
        {"EQP_CODE": device(1)["EQP_CODE"], "AREA_CODE": COUNTY, "_deleted": True,
         "_deleted_at": feed["busilist"][0]["_deleted_at"], "_moved": True}
    ]  # fmt: skip
    assert feed["has_more"] is False
    # Within the scope the move stays inside, it is an ordinary change.
    city_reader = grant(
        city.node, appid="city-reader", region="330100", busicodes=frozenset({"110101"}), actions=frozenset({"04"})
    )
    whole = call(city.node, body("city-reader", city_reader, "110101", "04", [{"_since": "0"}]))["datalist"]
    assert [record["AREA_CODE"] for record in whole["busilist"]] == [OTHER_COUNTY]
