"""A county uploads to a parent that is not this project (a minimal platform written from the spec
in the tests): the envelope, the signing, 01 and 03, the answers — nothing of our own dialect."""

from __future__ import annotations

from tests.support import body, call, device, grant
from tests.sync.conftest import COUNTY
from tests.sync.nodes import held, link_up
from tests.sync.other_platform import OtherPlatform
from tzsb.app import Node


def test_a_county_uploads_to_a_foreign_parent(county: Node) -> None:
    local = grant(county, appid="county-local", region=COUNTY, busicodes=frozenset({"110101"}))
    records = [device(number) for number in range(9)]
    assert call(county, body("county-local", local, "110101", "01", records))["datalist"]["result"] == "0001"
    gone = [{"EQP_CODE": device(number)["EQP_CODE"]} for number in (2, 5)]
    assert call(county, body("county-local", local, "110101", "03", gone))["datalist"]["result"] == "0001"

    with OtherPlatform("county-330106", "shared-secret") as parent:
        link_up(county, parent.url, "county-330106", "shared-secret", ("0101",), max_records=4)
        [report] = county.sync.run()
        # A change later, and a second pass.
        changed = device(3, USE_STATUS="1", UPDATE_TIME="2026-11-20 10:00:00")
        assert call(county, body("county-local", local, "110101", "01", [changed]))["datalist"]["result"] == "0001"
        [later] = county.sync.run()
        [idle] = county.sync.run()

    assert (report.state, report.records, report.parked) == ("ok", 9, 0)
    assert (later.state, later.records) == ("ok", 1)
    assert (idle.records, idle.batches) == (0, 0)
    mine = held(county, "0101")
    assert parent.deleted == {key for key, (_, deleted) in mine.items() if deleted}
    live = {key: record for key, record in county_records(county).items() if not mine[key][1]}
    assert {key: record for key, record in parent.records.items() if key not in parent.deleted} == live
    # Every request it received was ours, each signed, with the spec's six parameters.
    assert all(
        set(request) == {"appid", "busicode", "action", "busilist", "random", "sign"} for request in parent.requests
    )
    assert {request["busicode"] for request in parent.requests} == {"140101"}


def county_records(county: Node) -> dict[tuple[str, str], dict[str, object]]:
    from tzsb.store import records_read

    with county.store.read() as connection:
        found = records_read.fetch(connection, "0101", [device(number)["EQP_CODE"] for number in range(9)])
    return {("0101", key): row.data for key, row in found.items()}
