"""Masked copies: a masked page keeps the masked text of the records it read, and later masked pages
serve it, for the version it was made from and under the masking it was made with only."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.support import body, call, device, grant, snapshot
from tzsb import refusals
from tzsb.app import Node
from tzsb.catalog import BusinessType, load_catalog, samples
from tzsb.exchange import local as local_execution
from tzsb.exchange import masking as masking_module
from tzsb.exchange.masking import mask_plan, masker
from tzsb.store import masked_copies, records_read
from tzsb.store.schema import masked_copies as copies_table


def _copies(node: Node) -> dict[str, tuple[int, str, dict[str, Any]]]:
    """The kept copies of 0101 records: key → (seq, plan, the copy as parsed)."""
    with node.store.read() as connection:
        rows = connection.execute(
            sa.select(copies_table.c.record_key, copies_table.c.seq, copies_table.c.plan, copies_table.c.doc).where(
                copies_table.c.business == "0101"
            )
        ).all()
    return {key: (seq, plan, orjson.loads(doc)) for key, seq, plan, doc in rows}


def _seqs(node: Node) -> dict[str, int]:
    with node.store.read() as connection:
        rows = connection.execute(sa.text("SELECT record_key, seq FROM records WHERE business = '0101'")).all()
    return {str(row[0]): int(row[1]) for row in rows}


def _page(node: Node, appid: str, secret: str, conditions: dict[str, Any]) -> list[dict[str, Any]]:
    answer = call(node, body(appid, secret, "140101", "04", [conditions]))
    assert answer["datalist"]["result"] == "0001", answer
    records: list[dict[str, Any]] = answer["datalist"]["busilist"]
    return records


@pytest.fixture
def stocked(node: Node) -> tuple[Node, str, str]:
    """A node holding three devices, a masked reader's secret and an unmasked reader's."""
    writer = grant(node, appid="writer")
    answer = call(node, body("writer", writer, "140101", "01", [device(number) for number in range(3)]))
    assert answer["datalist"]["result"] == "0001", answer
    return node, grant(node, appid="masked", unmasked=frozenset()), writer


def _masked(record: dict[str, Any]) -> dict[str, Any]:
    return masker(load_catalog()["0101"])(record)


def test_a_masked_page_keeps_copies_that_the_next_masked_page_serves(
    stocked: tuple[Node, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    node, secret, _ = stocked
    assert _copies(node) == {}
    first = _page(node, "masked", secret, {"_region": "330106"})
    assert first == [_masked(device(number)) for number in range(3)]
    plan = mask_plan(node.catalog["0101"])
    seqs = _seqs(node)
    assert _copies(node) == {record["EQP_CODE"]: (seqs[record["EQP_CODE"]], plan, record) for record in first}

    # The next masked page masks nothing: every record comes as its copy, the same text.
    calls: list[str] = []
    real = local_execution.LocalExecution._masked

    def counting(self: Any, business: str, rows: Any, rendered: list[Any], copies: Any) -> list[Any]:
        calls.extend(type(item).__name__ for item in rendered)
        return real(self, business, rows, rendered, copies)

    monkeypatch.setattr(local_execution.LocalExecution, "_masked", counting)
    assert _page(node, "masked", secret, {"_region": "330106"}) == first
    assert calls == ["Fragment"] * 3


def test_a_copy_is_served_as_kept(stocked: tuple[Node, str, str]) -> None:
    """The answer is the copy's text (proved by changing a kept copy behind the node's back), for a
    page and for a look-up by key alike."""
    node, secret, _ = stocked
    _page(node, "masked", secret, {"_region": "330106"})
    key = device(1)["EQP_CODE"]
    with node.store.write() as connection:
        connection.execute(
            copies_table.update()
            .where(copies_table.c.record_key == key)
            .values(doc=orjson.dumps({"EQP_CODE": key, "NOTE": "kept"}).decode())
        )
    assert _page(node, "masked", secret, {"_region": "330106"})[1] == {"EQP_CODE": key, "NOTE": "kept"}
    assert _page(node, "masked", secret, {"EQP_CODE": key}) == [{"EQP_CODE": key, "NOTE": "kept"}]
    assert _page(node, "masked", secret, {"_since": "0"})[1] == {"EQP_CODE": key, "NOTE": "kept"}


def test_a_changed_record_is_masked_afresh_and_its_copy_replaced(stocked: tuple[Node, str, str]) -> None:
    node, secret, writer = stocked
    _page(node, "masked", secret, {"_region": "330106"})
    key = device(1)["EQP_CODE"]
    old_seq = _copies(node)[key][0]
    changed = {"EQP_CODE": key, "SAFETY_MANAGER": "李四", "UPDATE_TIME": "2026-11-02 10:00:00"}
    assert call(node, body("writer", writer, "140101", "02", [changed]))["datalist"]["result"] == "0001"

    page = _page(node, "masked", secret, {"_region": "330106"})
    assert page[1]["SAFETY_MANAGER"] == "李*"
    assert page[1] == _masked({**device(1), **changed})
    seq, _, copy = _copies(node)[key]
    assert seq == _seqs(node)[key] > old_seq
    assert copy == page[1]


def test_a_deleted_record_is_masked_and_keeps_no_copy(stocked: tuple[Node, str, str]) -> None:
    node, secret, writer = stocked
    key = device(2)["EQP_CODE"]
    assert call(node, body("writer", writer, "140101", "03", [{"EQP_CODE": key}]))["datalist"]["result"] == "0001"
    page = _page(node, "masked", secret, {"_region": "330106", "_include_deleted": True})
    assert page[2]["_deleted"] is True
    assert page[2]["SAFETY_MANAGER"] == "张*"
    assert page[2]["SAFETY_MANAGER_PHONE"] == "138****8000"
    assert sorted(_copies(node)) == [device(0)["EQP_CODE"], device(1)["EQP_CODE"]]


def test_copies_of_another_masking_are_not_served(stocked: tuple[Node, str, str]) -> None:
    """A copy kept under another plan (the catalog masked other fields, or an older masker) is
    masked afresh and replaced."""
    node, secret, _ = stocked
    key = device(0)["EQP_CODE"]
    with node.store.write() as connection:
        masked_copies.keep(connection, "0101", "another-plan", [(key, _seqs(node)[key], '{"EQP_CODE":"stale"}')])
    assert _page(node, "masked", secret, {"_region": "330106"})[0] == _masked(device(0))
    assert _copies(node)[key][1:] == (mask_plan(node.catalog["0101"]), _masked(device(0)))


def test_unmasked_callers_key_look_ups_and_change_feeds_keep_no_copies(stocked: tuple[Node, str, str]) -> None:
    node, secret, writer = stocked
    assert _page(node, "writer", writer, {"_region": "330106"}) == [device(number) for number in range(3)]
    assert _page(node, "masked", secret, {"EQP_CODE": device(0)["EQP_CODE"]}) == [_masked(device(0))]
    assert _page(node, "masked", secret, {"_since": "0"}) == [_masked(device(number)) for number in range(3)]
    assert _copies(node) == {}
    # Copies kept by a masked page are never an unmasked caller's answer.
    _page(node, "masked", secret, {"_region": "330106"})
    assert _page(node, "writer", writer, {"_region": "330106"}) == [device(number) for number in range(3)]


def test_a_replayed_query_keeps_nothing_more(stocked: tuple[Node, str, str]) -> None:
    """The copies are kept in the transaction of the page's claim: a query whose random was claimed
    before keeps none (its answer is the first one)."""
    node, secret, _ = stocked
    first = body("masked", secret, "140101", "04", [{"EQP_CODE": device(0)["EQP_CODE"]}], random="r" * 32)
    assert call(node, first)["datalist"]["result"] == "0001"
    before = snapshot(node)
    page = body("masked", secret, "140101", "04", [{"_region": "330106"}], random="r" * 32)
    answer = call(node, page)
    refusal = refusals.random_reused()
    assert (answer["datalist"]["result"], answer["datalist"]["code"]) == ("0000", refusal.code.value)
    assert answer["datalist"]["message"] == refusal.message
    assert snapshot(node) == before
    assert _copies(node) == {}


def test_a_newer_copy_is_not_replaced_by_an_older_one(node: Node) -> None:
    plan = mask_plan(node.catalog["0101"])
    with node.store.write() as connection:
        masked_copies.keep(connection, "0101", plan, [("K", 7, '{"v":7}')])
        masked_copies.keep(connection, "0101", plan, [("K", 5, '{"v":5}')])
    assert _copies(node) == {"K": (7, plan, {"v": 7})}
    with node.store.write() as connection:
        masked_copies.keep(connection, "0101", plan, [("K", 9, '{"v":9}')])
    assert _copies(node) == {"K": (9, plan, {"v": 9})}


def test_the_mask_plan_names_what_the_copies_depend_on(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = load_catalog()
    devices = catalog["0101"]
    plan = mask_plan(devices)
    assert plan == mask_plan(load_catalog()["0101"])
    assert len({mask_plan(catalog[code]) for code in catalog}) == len(list(catalog))

    def masking(code: str, **changes: Any) -> BusinessType:
        fields = tuple(replace(spec, **changes) if spec.code == code else spec for spec in devices.fields)
        return replace(devices, fields=fields)

    assert mask_plan(masking("SAFETY_MANAGER", mask="all")) != plan
    assert mask_plan(masking("USE_ADDRESS", sensitive=True, mask="address")) != plan
    assert mask_plan(masking("USE_ADDRESS", name="使用地点")) == plan  # not what masking reads
    # The order the masker masks in (echoes of two masked values may overlap).
    reordered = replace(
        devices, fields=tuple(sorted(devices.fields, key=lambda spec: spec.code != "SAFETY_MANAGER_PHONE"))
    )
    assert mask_plan(reordered) != plan
    monkeypatch.setattr(masking_module, "MASKER_CODE", "a masker edited since")
    assert mask_plan(devices) != plan


def test_a_type_with_nothing_to_mask_keeps_no_copies(node: Node) -> None:
    (notice,) = [record for record in samples.sample_records()["0900"] if record["AREA_CODE"] == "330106"][:1]
    codes = frozenset({"140900"})
    writer = grant(node, appid="writer", busicodes=codes)
    answer = call(node, body("writer", writer, "140900", "01", [notice]))
    assert answer["datalist"]["result"] == "0001", answer
    reader = grant(node, appid="masked", busicodes=codes, unmasked=frozenset())
    answer = call(node, body("masked", reader, "140900", "04", [{"_region": "330106"}]))
    assert answer["datalist"]["busilist"] == [notice]
    with node.store.read() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(copies_table)).scalar_one() == 0


def test_a_copied_record_is_not_sent_by_the_database(
    stocked: tuple[Node, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the driver decodes documents itself (PostgreSQL's jsonb), those a copy stands in for are
    not sent; SQLite hands back text, never decoded for a copied row."""
    node, secret, _ = stocked
    _page(node, "masked", secret, {"_region": "330106", "_page_size": 2})  # copies of the first two
    sent: list[Any] = []
    real = records_read.driver_rows

    def spying(connection: Any, statement: str, parameters: Any = ()) -> list[Any]:
        rows = real(connection, statement, parameters)
        if "copy_doc" in statement:
            sent.extend(rows)
        return rows

    monkeypatch.setattr(records_read, "driver_rows", spying)
    page = _page(node, "masked", secret, {"_region": "330106"})
    assert page == [_masked(device(number)) for number in range(3)]
    documents = [row[3] for row in sent]
    if node.store.dialect.keeps_document_text:
        assert all(isinstance(document, str) for document in documents)
    else:
        assert [document is None for document in documents] == [True, True, False]
    assert [row[-1] is not None for row in sent] == [True, True, False]
