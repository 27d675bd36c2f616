"""Natural keys of records: which live records hold given values of a business type's natural keys,
and the indexes that answer it.

Owns no table: it reads ``records`` and keeps one partial expression index per declared natural key
on it (``ix_nk_<business>_<digest>``), over the live records of that business type, by the key's
fields read out of the JSON document and joined by U+001F (``dialects``: ``natural_key_index``).
The database maintains the indexes with every write of ``records``, whichever code writes: inserts,
updates, deletes (a deleted record leaves the index), an operator's reassignment. Migration 0005
builds those of the shipped catalog; ``index_catalog`` brings them in line with the node's catalog
(a deployment's override may declare others) when a node starts.

A look-up (``holders``) is one statement for all natural keys of a business type: one index probe
per distinct value, at most ``HOLDERS_PER_VALUE`` records per value.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import orjson
from sqlalchemy.engine import Connection

from tzsb.catalog import Catalog
from tzsb.store.dialects import dialect_of
from tzsb.store.engine import Store
from tzsb.store.records_written import lock_change_counter

#: The prefix of every natural-key index's name: other indexes of ``records`` are never touched.
INDEX_PREFIX: Final = "ix_nk_"
#: At most this many records are returned per value (enough to name a few and tell a record from
#: itself; a value thousands of records share must not make a huge answer).
HOLDERS_PER_VALUE: Final = 8
#: Part of each index's name: a change to the indexed expression must give new names.
_EXPRESSION_VERSION: Final = "1"
#: Business codes and field codes are written into SQL: only plain codes get there.
_BUSINESS: Final = re.compile(r"[0-9]{4}")
_FIELD: Final = re.compile(r"[A-Za-z0-9_]+")


class Holder(NamedTuple):
    """A live record holding a wanted value of a natural key."""

    #: Which of the wanted keys (its position in the look-up's ``wanted``).
    position: int
    value: str
    record_key: str
    region: str
    source_appid: str


@dataclass(frozen=True, slots=True)
class IndexChanges:
    """What ``index_catalog`` changed: index names created and dropped."""

    created: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()


def _checked(business: str, fields: Sequence[str]) -> None:
    if not _BUSINESS.fullmatch(business) or not fields or not all(_FIELD.fullmatch(field) for field in fields):
        raise ValueError(f"not a natural key the store can index: {business} {list(fields)!r}")


def index_name(business: str, fields: Sequence[str]) -> str:
    """The name of the index of ``business``'s natural key ``fields``."""
    _checked(business, fields)
    digest = hashlib.sha256(f"{_EXPRESSION_VERSION}:{'+'.join(fields)}".encode()).hexdigest()[:12]
    return f"{INDEX_PREFIX}{business}_{digest}"


def create_index(connection: Connection, business: str, fields: Sequence[str]) -> str:
    """Create (if missing) the index of ``business``'s natural key ``fields``, indexing every record
    stored; returns its name."""
    name = index_name(business, fields)
    connection.exec_driver_sql(dialect_of(connection).natural_key_index(name, business, fields))
    return name


def index_names(connection: Connection) -> set[str]:
    """The names of the natural-key indexes the database holds."""
    statement = dialect_of(connection).record_index_names()
    return {name for (name,) in connection.exec_driver_sql(statement) if name.startswith(INDEX_PREFIX)}


def drop_index(connection: Connection, name: str) -> None:
    if not name.startswith(INDEX_PREFIX) or not _FIELD.fullmatch(name):
        raise ValueError(f"not a natural-key index: {name!r}")
    connection.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


def declared_indexes(catalog: Catalog) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Index name → (business, fields) for every natural key the catalog declares."""
    return {
        index_name(code, natural_key.fields): (code, natural_key.fields)
        for code in catalog
        for natural_key in catalog[code].natural_keys
    }


def index_catalog(store: Store, catalog: Catalog, also: Collection[tuple[str, str]] = ()) -> IndexChanges:
    """Create the index of every natural key ``catalog`` declares and drop those of keys it no longer
    declares (a deployment's catalog may differ from the one the migrations knew). ``also``: single
    fields (business, field) that rules look records up by (``newest``), indexed the same way.

    Nothing is written when they already match (one read of the index names). Otherwise under the
    writers' lock: writes wait while an index is built, and processes starting together build it
    once.
    """
    declared = declared_indexes(catalog)
    for business, field in also:
        declared.setdefault(index_name(business, [field]), (business, (field,)))
    with store.read() as connection:
        if index_names(connection) == set(declared):
            return IndexChanges()
    with store.write() as connection:
        lock_change_counter(connection)
        held = index_names(connection)
        created = tuple(sorted(set(declared) - held))
        dropped = tuple(sorted(held - set(declared)))
        for name in created:
            create_index(connection, *declared[name])
        for name in dropped:
            drop_index(connection, name)
    return IndexChanges(created, dropped)


def holders(
    connection: Connection, business: str, wanted: Sequence[tuple[Sequence[str], Collection[str]]]
) -> list[Holder]:
    """The live records of ``business`` that hold the wanted values, in one statement.

    Args:
        connection: Any connection (a writer's sees its own transaction).
        business: The business type.
        wanted: Per natural key, its fields and the values asked about (each value the fields' texts
            joined by U+001F, as the catalog's ``NaturalKey.value`` gives it).

    Returns:
        Up to ``HOLDERS_PER_VALUE`` records per value, in no promised order; the key of each is its
        position in ``wanted``. Only keys with an index (``create_index``) are found by index probes.
    """
    dialect = dialect_of(connection)
    selects: list[str] = []
    parameters: list[object] = []
    for position, (fields, values) in enumerate(wanted):
        _checked(business, fields)
        if values:
            selects.append(dialect.natural_key_holders(position, business, fields, HOLDERS_PER_VALUE))
            parameters.append(dialect.text_array(list(values)))
    if not selects:
        return []
    statement = " UNION ALL ".join(selects)
    if dialect.natural_key_setup is not None:
        connection.exec_driver_sql(dialect.natural_key_setup)
    return [Holder(*row) for row in connection.exec_driver_sql(statement, tuple(parameters))]


class Newest(NamedTuple):
    """The live record that holds a wanted value with the greatest ``newest_by`` values."""

    value: str
    record_key: str
    region: str
    source_appid: str
    data: dict[str, Any]


def newest(
    connection: Connection, business: str, field: str, newest_by: Sequence[str], values: Collection[str]
) -> dict[str, Newest]:
    """For each of ``values``, the live record of ``business`` whose ``field`` holds it, newest by
    ``newest_by`` (then the latest stored), in one statement of one index probe per value (the index
    ``index_catalog`` builds for ``also``)."""
    _checked(business, [field, *newest_by])
    if not values:
        return {}
    dialect = dialect_of(connection)
    statement = dialect.newest_holders(business, field, newest_by)
    rows = connection.exec_driver_sql(statement, (dialect.text_array(list(values)),))
    return {
        value: Newest(value, key, region, source, orjson.loads(data) if isinstance(data, str | bytes) else data)
        for value, key, region, source, data in rows
    }


def holders_by_key(
    connection: Connection, business: str, wanted: Mapping[str, tuple[Sequence[str], Collection[str]]]
) -> dict[str, dict[str, list[Holder]]]:
    """``holders``, by the caller's name of each natural key and then by value."""
    names = list(wanted)
    found: dict[str, dict[str, list[Holder]]] = {}
    for holder in holders(connection, business, [wanted[name] for name in names]):
        found.setdefault(names[holder.position], {}).setdefault(holder.value, []).append(holder)
    return found
