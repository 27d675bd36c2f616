"""Upward push: a county's changes reach the city exactly once, tombstones included."""

from __future__ import annotations

import pytest

from tests.support import body, call, device, grant
from tests.sync.conftest import COUNTY, FLOWING
from tests.sync.nodes import Served, held, last_seq, link_up
from tzsb.app import Node
from tzsb.exchange import reassign_record

LOCAL = "county-local"


def _local_app(county: Node) -> str:
    """The county's own system, which writes the county's records."""
    return grant(county, appid=LOCAL, region=COUNTY, busicodes=frozenset("11" + code for code in FLOWING))


def _write(county: Node, secret: str, action: str, records: list[dict[str, object]], business: str = "0101") -> None:
    answer = call(county, body(LOCAL, secret, "11" + business, action, records))
    assert answer["datalist"]["result"] == "0001", answer["datalist"]


def test_changes_reach_the_parent_once_with_equal_digests(county: Node, city: Served, county_secret: str) -> None:
    secret = _local_app(county)
    _write(county, secret, "01", [device(number) for number in range(25)])
    link_up(county, city.url, "county-330106", county_secret, ("0101",))

    [report] = county.sync.run()

    assert (report.state, report.records, report.parked, report.batches) == ("ok", 25, 0, 1)
    assert held(city.node, "0101") == held(county, "0101")
    # Modified and deleted records follow; the tombstones reach the parent as tombstones.
    _write(
        county,
        secret,
        "01",
        [device(number, UPDATE_TIME="2026-11-02 10:00:00", USE_STATUS="1") for number in (1, 2, 3)],
    )
    _write(county, secret, "03", [{"EQP_CODE": device(number)["EQP_CODE"]} for number in (4, 5)])
    [report] = county.sync.run()
    assert (report.state, report.records, report.deleted) == ("ok", 5, 2)
    assert held(city.node, "0101") == held(county, "0101")
    assert sum(deleted for _, deleted in held(city.node, "0101").values()) == 2
    # A second pass has nothing to send, and sends nothing.
    before = last_seq(city.node)
    [report] = county.sync.run()
    assert (report.state, report.records, report.batches) == ("ok", 0, 0)
    assert last_seq(city.node) == before


def test_a_record_added_and_deleted_between_passes_reaches_the_parent_as_a_tombstone(
    county: Node, city: Served, county_secret: str
) -> None:
    secret = _local_app(county)
    _write(county, secret, "01", [device(1), device(2)])
    _write(county, secret, "03", [{"EQP_CODE": device(2)["EQP_CODE"]}])
    link_up(county, city.url, "county-330106", county_secret, ("0101",))

    [report] = county.sync.run()

    assert report.state == "ok"
    assert held(city.node, "0101") == held(county, "0101")
    assert held(city.node, "0101")[("0101", device(2)["EQP_CODE"])][1] is True


def test_records_pulled_or_written_by_a_link_are_not_sent_back_up(
    county: Node, city: Served, county_secret: str
) -> None:
    secret = _local_app(county)
    _write(county, secret, "01", [device(1)])
    link_up(county, city.url, "county-330106", county_secret, ("0101",))
    county.sync.run()
    # A record written here under a link's identity (as a pull writes it) is not the county's to report.
    from tzsb.store import Store
    from tzsb.store.schema import records

    store: Store = county.store
    with store.write() as connection:
        connection.execute(records.update().values(changed_by="link:down"))
        connection.exec_driver_sql("UPDATE change_counter SET last_seq = last_seq + 1")
        connection.execute(records.update().values(seq=last_seq(county) + 1))
    [report] = county.sync.run()
    assert (report.records, report.batches) == (0, 0)


def test_the_parent_refusing_records_parks_them_and_the_rest_goes_on(
    county: Node, city: Served, county_secret: str
) -> None:
    """The city already holds device 7 from another source (一数一源): that record is parked with
    the city's reason; the others are delivered and the position moves past all of them."""
    other = grant(city.node, appid="other-source", region=COUNTY, busicodes=frozenset({"140101"}))
    taken = call(city.node, body("other-source", other, "140101", "01", [device(7)]))
    assert taken["datalist"]["result"] == "0001"
    secret = _local_app(county)
    _write(county, secret, "01", [device(number, USE_STATUS="1") for number in range(10)])
    link_up(county, city.url, "county-330106", county_secret, ("0101",))

    [report] = county.sync.run()

    assert (report.state, report.records, report.parked) == ("ok", 9, 1)
    [parked] = county.sync.parked("up")
    assert (parked.business, parked.key, parked.code) == ("0101", device(7)["EQP_CODE"], "E_CONFLICT")
    assert "other-source" in parked.message
    [status] = county.sync.status()
    assert (status.parked, status.lag_changes) == (1, 0)
    city_held = held(city.node, "0101")
    assert len(city_held) == 10
    assert all(
        city_held[key] == value for key, value in held(county, "0101").items() if key[1] != device(7)["EQP_CODE"]
    )
    # The city's operator hands the record to the county; when it changes at the county it goes up again.
    reassign_record(
        city.node.store,
        city.node.catalog,
        city.node.clock,
        "0101",
        device(7)["EQP_CODE"],
        COUNTY,
        source="county-330106",
    )
    _write(county, secret, "01", [device(7, USE_STATUS="1", UPDATE_TIME="2026-11-03 10:00:00")])
    [report] = county.sync.run()
    assert (report.records, report.parked) == (1, 0)
    assert county.sync.parked("up") == []
    assert held(city.node, "0101") == held(county, "0101")


def test_an_e_limit_halves_the_batch_and_goes_on(open_node: object, county: Node, city: Served) -> None:
    """The city lets the county send at most 10 records a request (7.3); the link asks 1,000."""
    secret = grant(
        city.node, appid="county-330106", region=COUNTY, busicodes=frozenset({"140101"}),
        actions=frozenset({"01", "03"}), max_records=10,
    )  # fmt: skip
    local = _local_app(county)
    _write(county, local, "01", [device(number) for number in range(37)])
    link_up(county, city.url, "county-330106", secret, ("0101",))

    [report] = county.sync.run()

    assert (report.state, report.records, report.parked) == ("ok", 37, 0)
    assert held(city.node, "0101") == held(county, "0101")
    refused = [row for row in city_log(city.node) if row["code"] == "E_LIMIT"]
    # 37 refused, halved to 18 refused, then batches of 9 go through.
    assert [row["record_count"] for row in refused] == [37, 18]


def test_max_bytes_keeps_each_request_under_the_limit(county: Node, city: Served, county_secret: str) -> None:
    local = _local_app(county)
    _write(county, local, "01", [device(number) for number in range(40)])
    link_up(county, city.url, "county-330106", county_secret, ("0101",), max_bytes=4096)

    [report] = county.sync.run()

    assert (report.state, report.records) == ("ok", 40)
    assert report.batches > 40 * 600 // 4096
    sent = [row for row in city_log(city.node) if row["appid"] == "county-330106"]
    assert all(row["record_count"] <= 7 for row in sent)


def city_log(node: Node) -> list[dict[str, object]]:
    from tests.support import log_rows

    return log_rows(node)


@pytest.mark.parametrize("sign", ["MD5", "SM3", "HMAC-SM3", "SM4"])
def test_every_signing_algorithm_carries_a_pass(county: Node, city: Served, sign: str) -> None:
    from tzsb.protocol import SignAlgorithm

    algorithm = SignAlgorithm(sign)
    secret = grant(
        city.node, appid="county-330106", region=COUNTY, busicodes=frozenset({"140101"}),
        actions=frozenset({"01", "03"}), sign=algorithm,
    )  # fmt: skip
    local = _local_app(county)
    _write(county, local, "01", [device(1), device(2)])
    link_up(county, city.url, "county-330106", secret, ("0101",), sign_algorithm=algorithm)
    [report] = county.sync.run()
    assert (report.state, report.records) == ("ok", 2)
    assert held(city.node) == held(county)
