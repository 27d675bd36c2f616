"""Natural-key look-ups and their indexes, on SQLite and PostgreSQL: one statement per batch, index
probes (no scan), kept current by every write, built by migration 0005 over the records already stored."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, Final

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from tzsb.catalog import Catalog, load_catalog
from tzsb.store import Store, natural_keys, open_store, records_written

CATALOG: Final = load_catalog()
REG: Final = ("REG_CODE",)
CERT: Final = ("USE_CERT_NO",)
PAIR: Final = ("FACTORY_NO", "MAKE_UNIT_NAME")
#: The statement of a look-up, told apart from every other by what it selects.
LOOKUP_MARK: Final = "found.source_appid"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.dispose()


def device(key: str, **fields: Any) -> dict[str, Any]:
    return {"EQP_CODE": key, "AREA_CODE": "330106", "UPDATE_TIME": "2026-01-01 00:00:00", "USE_STATUS": "2", **fields}


def row(
    data: dict[str, Any], seq: int, *, business: str = "0101", key_field: str = "EQP_CODE", deleted: bool = False
) -> records_written.NewRow:
    deleted_at, deleted_by = ("2026-02-01 00:00:00", "x") if deleted else (None, None)
    return (business, data[key_field], data["AREA_CODE"], data["UPDATE_TIME"], records_written.document(data), deleted,
            deleted_at, deleted_by, f"app-{data[key_field][-1]}", "x", "2026-01-01 00:00:00", seq)  # fmt: skip


def insert(store: Store, *rows: records_written.NewRow) -> None:
    with store.write() as connection:
        records_written.insert(connection, list(rows))


def found(
    store: Store, business: str, *wanted: tuple[tuple[str, ...], set[str]]
) -> set[tuple[int, str, str, str, str]]:
    with store.read() as connection:
        return {tuple(holder) for holder in natural_keys.holders(connection, business, list(wanted))}  # type: ignore[misc]


class Statements:
    """Counts the statements sent on an engine."""

    def __init__(self, store: Store) -> None:
        self.sent: list[str] = []
        sa.event.listen(store.engine, "before_cursor_execute", self._seen)

    def _seen(self, connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.sent.append(statement)

    def lookups(self) -> int:
        return sum(LOOKUP_MARK in statement for statement in self.sent)


def test_every_key_of_a_type_is_looked_up_in_one_statement(store: Store) -> None:
    one = device("K1", REG_CODE="R1", USE_CERT_NO="C1", FACTORY_NO="F1", MAKE_UNIT_NAME="杭州某电梯")
    two = device("K2", REG_CODE="R2", USE_CERT_NO="C1", FACTORY_NO="F2", MAKE_UNIT_NAME="杭州某电梯")
    insert(store, row(one, 1), row(two, 2))
    statements = Statements(store)
    holders = found(
        store,
        "0101",
        (REG, {"R1", "R9"}),
        (CERT, {"C1"}),
        (PAIR, {"F2\x1f杭州某电梯", "F1\x1f宁波某电梯"}),
    )
    assert holders == {
        (0, "R1", "K1", "330106", "app-1"),
        (1, "C1", "K1", "330106", "app-1"),
        (1, "C1", "K2", "330106", "app-2"),
        (2, "F2\x1f杭州某电梯", "K2", "330106", "app-2"),
    }
    # One statement reads the records (PostgreSQL sets the transaction up first: no JIT).
    assert [statement for statement in statements.sent if "records" in statement] == [
        statement for statement in statements.sent if LOOKUP_MARK in statement
    ]
    assert statements.lookups() == 1
    # Nothing wanted: nothing asked.
    sent = len(statements.sent)
    assert found(store, "0101", (REG, set()), (PAIR, set())) == set()
    assert len(statements.sent) - sent <= 1  # at most the read transaction's BEGIN
    assert statements.lookups() == 1


def test_the_catalogs_value_of_a_key_is_what_the_store_finds(store: Store) -> None:
    """The catalog joins a key's texts (``NaturalKey.value``); the store's index joins them the same way."""
    record = device(
        "K1", REG_CODE="R1", USE_CERT_NO="梯11浙A01234(19)", FACTORY_NO="E19A0235", MAKE_UNIT_NAME="杭州华信"
    )
    insert(store, row(record, 1))
    for position, natural_key in enumerate(CATALOG["0101"].natural_keys):
        value = natural_key.value(record)
        assert value is not None
        assert found(store, "0101", (natural_key.fields, {value})) == {(0, value, "K1", "330106", "app-1")}, position


def test_deleted_records_other_types_and_partial_keys_are_not_found(store: Store) -> None:
    insert(
        store,
        row(device("K1", REG_CODE="R1"), 1, deleted=True),
        row(device("K2", FACTORY_NO="F1"), 2),  # no MAKE_UNIT_NAME: no value of the pair
        row(device("K3", REG_CODE=" R1"), 3),  # texts match exactly
        row({"REPORT_NO": "P4", "AREA_CODE": "330106", "UPDATE_TIME": "2026-01-01 00:00:00", "REG_CODE": "R1"}, 4,
            business="0401", key_field="REPORT_NO"),
    )  # fmt: skip
    assert found(store, "0101", (REG, {"R1"}), (PAIR, {"F1\x1f", "F1"})) == set()


def test_writes_keep_the_look_up_current(store: Store) -> None:
    insert(store, row(device("K1", REG_CODE="R1"), 1), row(device("K2", REG_CODE="R2"), 2))
    changed = {
        "business": "0101", "region": "330106", "updated_at": "2026-03-01 00:00:00", "deleted_at": None,
        "deleted_by": None, "changed_by": "x", "changed_at": "2026-03-01 00:00:00",
    }  # fmt: skip
    with store.write() as connection:
        records_written.update(
            connection,
            [
                {**changed, "record_key": "K1", "data": device("K1", REG_CODE="R3"), "deleted": False, "seq": 3},
                {**changed, "record_key": "K2", "data": device("K2", REG_CODE="R2"), "deleted": True, "seq": 4,
                 "deleted_at": "2026-03-01 00:00:00", "deleted_by": "x"},
            ],
        )  # fmt: skip
    assert found(store, "0101", (REG, {"R1", "R2", "R3"})) == {(0, "R3", "K1", "330106", "app-1")}
    # A writer's own transaction sees what it wrote.
    with store.write() as connection:
        records_written.insert(connection, [row(device("K4", REG_CODE="R1"), 5)])
        assert [tuple(holder) for holder in natural_keys.holders(connection, "0101", [(REG, {"R1"})])] == [
            (0, "R1", "K4", "330106", "app-4")
        ]


def test_a_value_many_records_share_returns_a_bounded_answer(store: Store) -> None:
    insert(store, *(row(device(f"K{number:02d}", USE_CERT_NO="C1"), number) for number in range(1, 21)))
    holders = found(store, "0101", (CERT, {"C1"}))
    assert len(holders) == natural_keys.HOLDERS_PER_VALUE
    assert {holder[2] for holder in holders} <= {f"K{number:02d}" for number in range(1, 21)}


def test_a_long_value_is_stored_and_found_exactly(store: Store) -> None:
    """PostgreSQL indexes the first characters only (an index entry has a size limit): the rest is compared."""
    long = "注" * 2000
    insert(store, row(device("K1", REG_CODE=long), 1), row(device("K2", REG_CODE=long[:-1] + "册"), 2))
    assert found(store, "0101", (REG, {long})) == {(0, long, "K1", "330106", "app-1")}


def plan(store: Store, business: str, wanted: list[tuple[tuple[str, ...], list[str]]]) -> str:
    """The database's plan of a look-up, as text."""
    dialect = store.dialect
    statement = " UNION ALL ".join(
        dialect.natural_key_holders(position, business, fields, natural_keys.HOLDERS_PER_VALUE)
        for position, (fields, _) in enumerate(wanted)
    )
    parameters = tuple(dialect.text_array(values) for _, values in wanted)
    if not store.is_sqlite:
        # As autovacuum would: without statistics the planner of a fresh, small table may rightly take
        # any index of the same records as a cheap way to read them all.
        with store.write() as connection:
            connection.exec_driver_sql("ANALYZE records")
    with store.read() as connection:
        if store.is_sqlite:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(str(row[-1]) for row in rows)
        with connection.begin():
            # The test table is small: without this the planner may rightly prefer reading all of it.
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            return "\n".join(str(row[0]) for row in rows)


def test_the_look_up_probes_the_natural_key_indexes(store: Store) -> None:
    # Enough records that no plan reads them all for less.
    insert(store, *(row(device(f"K{number}", REG_CODE=f"R{number}", FACTORY_NO=f"F{number}",
                                  MAKE_UNIT_NAME="杭州"), number) for number in range(1, 1000)))  # fmt: skip
    text = plan(store, "0101", [(REG, ["R1", "R2"]), (PAIR, ["F1\x1f杭州"])])
    for fields in (REG, PAIR):
        assert natural_keys.index_name("0101", fields) in text, text
    assert "SCAN records" not in text and "Seq Scan on records" not in text, text


def test_index_catalog_follows_the_catalog(store: Store, tmp_path: Path) -> None:
    shipped = natural_keys.declared_indexes(CATALOG)
    with store.read() as connection:
        assert natural_keys.index_names(connection) == set(shipped)  # migration 0005
    assert natural_keys.index_catalog(store, CATALOG) == natural_keys.IndexChanges()
    insert(store, row(device("K1", MAKE_UNIT_CODE="91330106MA2XXXXX01", FACTORY_NO="F1"), 1))
    # A deployment's 0101 with one key of its own and none of the shipped ones.
    devices = CATALOG["0101"]
    own = replace(devices, natural_keys=(replace(devices.natural_keys[0], fields=("MAKE_UNIT_CODE", "FACTORY_NO")),))
    catalog = Catalog({**CATALOG.types, "0101": own})
    changes = natural_keys.index_catalog(store, catalog)
    own_index = natural_keys.index_name("0101", ("MAKE_UNIT_CODE", "FACTORY_NO"))
    assert changes.created == (own_index,)
    assert set(changes.dropped) == {natural_keys.index_name("0101", fields) for fields in (REG, CERT, PAIR)}
    assert natural_keys.index_catalog(store, catalog) == natural_keys.IndexChanges()
    # The new index covers the records stored before it.
    assert found(store, "0101", (("MAKE_UNIT_CODE", "FACTORY_NO"), {"91330106MA2XXXXX01\x1fF1"})) == {
        (0, "91330106MA2XXXXX01\x1fF1", "K1", "330106", "app-1")
    }
    assert "SCAN records" not in plan(store, "0101", [(("MAKE_UNIT_CODE", "FACTORY_NO"), ["x\x1fy"])])
    # Back to the shipped catalog.
    back = natural_keys.index_catalog(store, CATALOG)
    assert (set(back.created), back.dropped) == (set(changes.dropped), (own_index,))


def test_codes_that_are_not_plain_never_reach_sql(store: Store) -> None:
    with store.read() as connection:
        for business, fields in (("0101", ("REG_CODE') OR 1=1 --",)), ("01; DROP", REG), ("0101", ())):
            with pytest.raises(ValueError, match="not a natural key the store can index"):
                natural_keys.holders(connection, business, [(fields, {"x"})])
        with pytest.raises(ValueError, match="not a natural-key index"):
            natural_keys.drop_index(connection, "ix_records_seq")


# ------------------------------------------------------------------ migration 0005


def _migrate_to(store: Store, revision: str, downgrade: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(resources.files("tzsb.store").joinpath("migrations")))
    with store.write() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if downgrade else command.upgrade)(config, revision)


def test_migration_0005_indexes_the_records_stored_before_it(database_url: str) -> None:
    old = open_store(database_url, migrate=False)
    try:
        _migrate_to(old, "0004")
        with old.read() as connection:
            assert natural_keys.index_names(connection) == set()
        insert(
            old,
            row(device("K1", REG_CODE="R1", USE_CERT_NO="C1", FACTORY_NO="F1", MAKE_UNIT_NAME="杭州"), 1),
            row({"ACCIDENT_NO": "A1", "AREA_CODE": "330106", "UPDATE_TIME": "2026-01-01 00:00:00",
                 "EQP_CODE": "K1", "ACCIDENT_TIME": "2026-01-01 08:00:00"},
                2, business="0500", key_field="ACCIDENT_NO"),
        )  # fmt: skip
    finally:
        old.dispose()
    upgraded = open_store(database_url)
    try:
        with upgraded.read() as connection:
            assert natural_keys.index_names(connection) == set(natural_keys.declared_indexes(CATALOG))
            assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0013"
        assert found(upgraded, "0101", (REG, {"R1"}), (CERT, {"C1"}), (PAIR, {"F1\x1f杭州"})) == {
            (0, "R1", "K1", "330106", "app-1"),
            (1, "C1", "K1", "330106", "app-1"),
            (2, "F1\x1f杭州", "K1", "330106", "app-1"),
        }
        assert found(upgraded, "0500", (("EQP_CODE", "ACCIDENT_TIME"), {"K1\x1f2026-01-01 08:00:00"})) == {
            (0, "K1\x1f2026-01-01 08:00:00", "A1", "330106", "app-1")
        }
        assert "SCAN records" not in plan(upgraded, "0101", [(REG, ["R1"])])
        # Down again: every natural-key index goes, the records stay.
        _migrate_to(upgraded, "0004", downgrade=True)
        with upgraded.read() as connection:
            assert natural_keys.index_names(connection) == set()
            assert connection.execute(sa.text("SELECT count(*) FROM records")).scalar_one() == 2
    finally:
        upgraded.dispose()


# ------------------------------------------------------------------ newest: a device's latest inspection


def inspection(report: str, device_code: str, date: str, conclusion: str, **fields: Any) -> dict[str, Any]:
    return {"REPORT_NO": report, "EQP_CODE": device_code, "INSP_DATE": date, "INSP_CONCLUSION": conclusion,
            "AREA_CODE": "330106", "UPDATE_TIME": f"{date} 12:00:00", **fields}  # fmt: skip


def inspections(store: Store, *records: tuple[dict[str, Any], bool]) -> None:
    insert(store, *(row(data, 5000 + seq, business="0401", key_field="REPORT_NO", deleted=deleted)
                    for seq, (data, deleted) in enumerate(records)))  # fmt: skip


def newest(store: Store, values: set[str]) -> dict[str, tuple[str, str]]:
    with store.read() as connection:
        found = natural_keys.newest(connection, "0401", "EQP_CODE", ["INSP_DATE", "UPDATE_TIME"], values)
    return {value: (held.record_key, held.data["INSP_CONCLUSION"]) for value, held in found.items()}


def test_newest_is_the_latest_live_inspection_of_each_device(store: Store) -> None:
    natural_keys.index_catalog(store, CATALOG, also=[("0401", "EQP_CODE")])
    inspections(
        store,
        *((inspection(f"R{year}", "D1", f"{year}-06-01", "1"), False) for year in range(2010, 2022)),
        (inspection("R-late", "D1", "2023-06-01", "3"), False),
        (inspection("R-deleted", "D1", "2024-06-01", "1"), True),  # deleted: not the latest
        (inspection("R-D2", "D2", "2020-01-01", "7"), False),
    )
    assert newest(store, {"D1", "D2", "D3"}) == {"D1": ("R-late", "3"), "D2": ("R-D2", "7")}
    assert newest(store, set()) == {}


def test_newest_probes_the_index(store: Store) -> None:
    natural_keys.index_catalog(store, CATALOG, also=[("0401", "EQP_CODE")])
    inspections(store, *((inspection(f"R{n}", f"D{n % 300}", "2020-01-01", "1"), False) for n in range(1000)))
    dialect = store.dialect
    statement = dialect.newest_holders("0401", "EQP_CODE", ["INSP_DATE", "UPDATE_TIME"])
    parameters = (dialect.text_array(["D1", "D2"]),)
    if not store.is_sqlite:
        with store.write() as connection:
            connection.exec_driver_sql("ANALYZE records")
    with store.read() as connection:
        if store.is_sqlite:
            text = "\n".join(
                str(r[-1]) for r in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
        else:
            with connection.begin():
                connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
                text = "\n".join(str(r[0]) for r in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))
    assert natural_keys.index_name("0401", ["EQP_CODE"]) in text, text
    assert "SCAN records" not in text and "Seq Scan on records" not in text, text


def test_index_catalog_keeps_the_fields_rules_find_records_by(store: Store) -> None:
    name = natural_keys.index_name("0401", ["EQP_CODE"])
    assert name in natural_keys.index_catalog(store, CATALOG, also=[("0401", "EQP_CODE")]).created
    # A start without that rule drops it again, as it drops a natural key the catalog no longer declares.
    assert natural_keys.index_catalog(store, CATALOG).dropped == (name,)
