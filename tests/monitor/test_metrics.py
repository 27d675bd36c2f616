"""``/metrics``: the Prometheus text format, parsed by prometheus_client's own parser; counters move
with traffic, labels stay within the spec's codes, state gauges read the node, access is limited,
and two worker processes are added up."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import body, device, grant
from tests.sync.nodes import make_home, open_home, serve_in_thread
from tests.web.servers import serving, tzsb
from tzsb.exchange import RequestContext
from tzsb.monitor import NodeMetrics
from tzsb.sync import LinkSpec


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_with_traffic_and_gauges_read_the_node(tmp_path: Path) -> None:
    node = open_home(make_home(tmp_path, "node", "province", "330000", ""))
    try:
        secret = grant(node, appid="hz", region="330100")
        node.links.add(
            LinkSpec(name="up", url="http://127.0.0.1:9/x", appid="province-330000", secret="s", direction="up",
                     businesses=("0101",))
        )  # fmt: skip
        with serve_in_thread(node) as served:
            base = served.url.split("/tzsb/")[0]
            before = samples(httpx.get(f"{base}/metrics", timeout=5).text)
            for payload in (
                body("hz", secret, "140101", "01", [device(1), device(2)]),
                body("hz", secret, "140101", "01", [device(3, AREA_CODE="330205")]),  # E_REGION
                body("hz", secret, "140101", "04", [{"_region": "330106"}]),
                body("hz", secret, "999999", "01", [device(4)]),  # a busicode of no table
                b"{not json",
            ):
                httpx.post(served.url, content=payload, timeout=10)
            reply = httpx.get(f"{base}/metrics", timeout=5)
    finally:
        node.close()
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    after = samples(reply.text)
    assert value(before, "tzsb_requests_total", busicode="140101", action="01", result="0001", code="") == 0
    assert value(after, "tzsb_requests_total", busicode="140101", action="01", result="0001", code="") == 1
    assert value(after, "tzsb_requests_total", busicode="140101", action="01", result="0000", code="E_REGION") == 1
    assert value(after, "tzsb_requests_total", busicode="140101", action="04", result="0001", code="") == 1
    assert value(after, "tzsb_requests_total", busicode="other", action="01", result="0000", code="E_BUSICODE") == 1
    assert value(after, "tzsb_requests_total", busicode="other", action="other", result="0000", code="E_JSON") == 1
    assert value(after, "tzsb_records_in_total", busicode="140101", action="01") == 2
    assert value(after, "tzsb_records_out_total", busicode="140101", action="04") == 2
    assert value(after, "tzsb_request_duration_seconds_count", busicode="140101", action="01") == 2
    # No label value a caller chose: only the tables' codes, or "other".
    labelled = [dict(labels) for name, labels in after if name == "tzsb_requests_total"]
    assert {labels["busicode"] for labels in labelled} == {"140101", "other"}
    assert {labels["action"] for labels in labelled} == {"01", "04", "other"}
    assert {labels["code"] for labels in labelled} == {"", "E_REGION", "E_BUSICODE", "E_JSON"}
    assert value(after, "tzsb_store_bytes") > 0
    assert value(after, "tzsb_rules_error") == 0
    assert value(after, "tzsb_link_state", link="up", state="idle") == 1
    assert value(after, "tzsb_link_lag_changes", link="up") == 2  # the two devices added, not yet sent up
    assert value(after, "tzsb_link_parked", link="up") == 0


def test_metrics_are_refused_outside_the_listed_networks(tmp_path: Path) -> None:
    node = open_home(make_home(tmp_path, "node", "province", "330000", ""), metrics_from=("10.0.0.0/8",))
    try:
        with serve_in_thread(node) as served:
            reply = httpx.get(served.url.split("/tzsb/")[0] + "/metrics", timeout=5)
    finally:
        node.close()
    assert (reply.status_code, reply.content) == (403, b"")


@pytest.mark.parametrize("workers", ["2"])
def test_two_workers_are_added_up(workers: str, tmp_path: Path) -> None:
    home = tmp_path / "node"
    assert tzsb("init", "--home", str(home), "--level", "province", "--region", "330000").returncode == 0
    created = tzsb(
        "app", "create", "--home", str(home), "--appid", "hz", "--region", "330100", "--busicode", "140101",
        "--action", "01", "--json",
    )  # fmt: skip
    secret = json.loads(created.stdout)["secret"]
    with serving(home, tmp_path / "serve.log", {"TZSB_WORKERS": workers}) as base:
        for number in range(12):
            # A connection each, so that both workers answer some.
            payload = body("hz", secret, "140101", "01", [device(number)])
            answer = orjson.loads(httpx.post(f"{base}/tzsb/exchange", content=payload, timeout=10).content)
            assert answer["datalist"]["result"] == "0001"
        time.sleep(0.2)
        found = samples(httpx.get(f"{base}/metrics", timeout=5).text)
    assert value(found, "tzsb_requests_total", busicode="140101", action="01", result="0001", code="") == 12
    assert value(found, "tzsb_records_in_total", busicode="140101", action="01") == 12
    assert (home / ".metrics").is_dir()


def test_callers_cannot_grow_the_series_kept_for_their_labels(tmp_path: Path) -> None:
    """Each request's series are looked up by its labels once normalised (the spec's codes or
    "other"), so a caller sending made-up busicodes, actions and codes adds no entries."""
    node = open_home(make_home(tmp_path, "node", "province", "330000", ""))
    try:
        metrics = NodeMetrics(node)
        for number in range(200):
            context = RequestContext(client_addr="198.51.100.7", now=datetime.now(UTC))
            context.busicode, context.action_code = f"{number:06d}", f"x{number}"
            context.outcome = (f"r{number}", f"E_MADE_UP_{number}")
            metrics.observe(context)
        found = samples(metrics.exposition().decode())
    finally:
        node.close()
    assert list(metrics._series) == [("other", "other", "0000", "")]
    assert value(found, "tzsb_requests_total", busicode="other", action="other", result="0000", code="") == 200
