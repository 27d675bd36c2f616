"""The log interface (6.3.1 d): an app queries its own interaction-log entries with the same
envelope and signing; a log-auditor app reads every entry within its region."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.support import body, call, device, grant, log_rows, snapshot
from tzsb import refusals
from tzsb.app import Node
from tzsb.protocol import failure_datalist

LOG_BUSICODE = "140101"


def log_query(node: Node, appid: str, secret: str, conditions: dict[str, Any], action: str = "04") -> dict[str, Any]:
    answer: dict[str, Any] = orjson.loads(
        node.exchange.handle_log(
            body(appid, secret, LOG_BUSICODE, action, [conditions]), "application/json", "10.0.0.9"
        )
    )
    return answer


@pytest.fixture
def apps(node: Node) -> dict[str, str]:
    return {
        "hz": grant(node, appid="hz", region="330100"),
        "xihu": grant(node, appid="xihu", region="330106"),
        "nb": grant(node, appid="nb", region="330200"),
        "auditor": grant(node, appid="auditor", region="330100", log_auditor=True),
    }


def _ok(answer: dict[str, Any]) -> None:
    assert answer["datalist"]["result"] == "0001", answer["datalist"]


def _traffic(node: Node, apps: dict[str, str]) -> None:
    _ok(call(node, body("hz", apps["hz"], "140101", "01", [device(1)], random="hz-req-1")))
    _ok(call(node, body("hz", apps["hz"], "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}], random="hz-req-2")))
    refused = call(node, body("hz", apps["hz"], "140101", "01", [device(2, AREA_CODE="330205")], random="hz-req-3"))
    assert refused["datalist"]["code"] == "E_REGION"
    _ok(call(node, body("xihu", apps["xihu"], "140101", "01", [device(3)], random="xihu-req-1")))
    nb_device = device(4, AREA_CODE="330205", EQP_CODE="31103302052015000004")
    _ok(call(node, body("nb", apps["nb"], "140101", "01", [nb_device], random="nb-req-1")))


def test_an_app_reads_its_own_entries_newest_first(node: Node, apps: dict[str, str]) -> None:
    _traffic(node, apps)

    answer = log_query(node, "hz", apps["hz"], {})

    datalist = answer["datalist"]
    assert datalist["result"] == "0001"
    assert [entry["random"] for entry in datalist["busilist"]] == ["hz-req-3", "hz-req-2", "hz-req-1"]
    newest = datalist["busilist"][0]
    assert set(newest) == {
        "id", "at", "appid", "busicode", "action", "random", "client_addr", "record_count", "result", "code",
        "message", "duration_ms", "direction",
    }  # fmt: skip
    assert (newest["appid"], newest["busicode"], newest["action"], newest["result"], newest["code"]) == (
        "hz", "140101", "01", "0000", "E_REGION",
    )  # fmt: skip
    assert (newest["record_count"], newest["direction"], newest["client_addr"]) == (1, "in", "127.0.0.1")
    assert datalist["next_cursor"] is None
    # The log query is itself logged, and the next query finds it.
    again = log_query(node, "hz", apps["hz"], {"_page_size": 1})["datalist"]["busilist"]
    assert (again[0]["random"], again[0]["action"]) == (answer["random"], "04")


@pytest.mark.parametrize(
    ("conditions", "randoms"),
    [
        ({"random": "hz-req-2"}, ["hz-req-2"]),
        ({"action": "01"}, ["hz-req-3", "hz-req-1"]),
        ({"result": "0000"}, ["hz-req-3"]),
        ({"code": "E_REGION"}, ["hz-req-3"]),
        ({"busicode": "140101", "result": "0001"}, ["hz-req-2", "hz-req-1"]),
        ({"_from": "2000-01-01", "_to": "2099-12-31 23:59:59"}, ["hz-req-3", "hz-req-2", "hz-req-1"]),
        ({"_to": "2000-01-01"}, []),
    ],
)
def test_conditions_narrow_the_entries(
    node: Node, apps: dict[str, str], conditions: dict[str, str], randoms: list[str]
) -> None:
    _traffic(node, apps)
    datalist = log_query(node, "hz", apps["hz"], conditions)["datalist"]
    assert [entry["random"] for entry in datalist["busilist"]] == randoms


def test_pages_follow_the_cursor_and_the_cursor_keeps_its_conditions(node: Node, apps: dict[str, str]) -> None:
    _traffic(node, apps)
    first = log_query(node, "hz", apps["hz"], {"action": "01", "_page_size": 1})["datalist"]
    second = log_query(node, "hz", apps["hz"], {"action": "01", "_page_size": 1, "_cursor": first["next_cursor"]})[
        "datalist"
    ]
    assert [entry["random"] for entry in first["busilist"] + second["busilist"]] == ["hz-req-3", "hz-req-1"]
    assert second["next_cursor"] is None
    other = log_query(node, "hz", apps["hz"], {"action": "04", "_cursor": first["next_cursor"]})["datalist"]
    assert other == failure_datalist(refusals.cursor_of_other_conditions())


def test_an_auditor_reads_every_entry_of_its_region(node: Node, apps: dict[str, str]) -> None:
    _traffic(node, apps)

    seen = log_query(node, "auditor", apps["auditor"], {})["datalist"]["busilist"]

    assert {entry["appid"] for entry in seen} == {"hz", "xihu"}  # not Ningbo's app
    only = log_query(node, "auditor", apps["auditor"], {"appid": "xihu"})["datalist"]["busilist"]
    assert [entry["random"] for entry in only] == ["xihu-req-1"]
    assert log_query(node, "auditor", apps["auditor"], {"appid": "nb"})["datalist"]["busilist"] == []


@pytest.mark.parametrize(
    ("conditions", "action", "refusal"),
    [
        ({"appid": "xihu"}, "04", refusals.log_of_another_app("xihu")),
        ({}, "01", refusals.log_query_only("01")),
        ({"region": "330106"}, "04", refusals.log_condition_unknown("region", [
            "appid", "random", "busicode", "action", "result", "code", "_from", "_to", "_page_size", "_cursor",
        ])),
        ({"code": 5}, "04", refusals.log_condition_not_text("code")),
        ({"random": ""}, "04", refusals.log_condition_not_text("random")),
        ({"_from": "yesterday"}, "04", refusals.query_time_malformed("_from")),
        ({"_page_size": 0}, "04", refusals.page_size_malformed(1000)),
        ({"_cursor": "forged"}, "04", refusals.cursor_invalid("_cursor")),
    ],
)  # fmt: skip
def test_a_bad_log_query_is_refused_and_reads_nothing(
    node: Node, apps: dict[str, str], conditions: dict[str, Any], action: str, refusal: Any
) -> None:
    _traffic(node, apps)
    before = snapshot(node)
    rows = len(log_rows(node))

    answer = log_query(node, "hz", apps["hz"], conditions, action)

    assert answer["datalist"] == failure_datalist(refusal)
    assert "busilist" not in answer["datalist"] or not any("random" in item for item in answer["datalist"]["busilist"])
    after = snapshot(node)
    assert after["records"] == before["records"] and after["seq"] == before["seq"]
    # Refused like any request of a known app: one log row, its random claimed.
    assert len(log_rows(node)) == rows + 1
    assert log_rows(node)[-1]["code"] == refusal.code.value


def test_the_log_interface_is_served_beside_the_data_interface(node: Node, apps: dict[str, str]) -> None:
    from tests.sync.nodes import serve_in_thread

    _traffic(node, apps)
    with serve_in_thread(node) as served:
        base = served.url.rsplit("/", 1)[0]
        reply = httpx.post(f"{base}/log", content=body("hz", apps["hz"], LOG_BUSICODE, "04", [{}]), timeout=10)
    assert node.settings.log_path == "/tzsb/log"
    assert reply.status_code == 200
    assert [entry["random"] for entry in reply.json()["datalist"]["busilist"]] == ["hz-req-3", "hz-req-2", "hz-req-1"]
