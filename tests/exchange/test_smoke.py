from __future__ import annotations

from tests.support import body, call, device, grant, log_rows
from tzsb.app import Node


def test_add_then_query(node: Node) -> None:
    secret = grant(node)
    answer = call(node, body("hz-city", secret, "140101", "01", [device(1), device(2)]))
    assert answer["datalist"]["result"] == "0001", answer
    answer = call(node, body("hz-city", secret, "140101", "04", [{"_region": "330100"}]))
    assert [r["EQP_CODE"] for r in answer["datalist"]["busilist"]] == [device(1)["EQP_CODE"], device(2)["EQP_CODE"]]
    assert len(log_rows(node)) == 2
