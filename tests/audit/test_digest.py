"""The log entry's digest, as every stored chain was computed: the fast path a request takes
(``LogEntry.values`` and OpenSSL's SM3 through hashlib) gives what the definition gives, and what it
gave before the fast path existed."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from hypothesis import given
from hypothesis import strategies as st

from tzsb.audit import ChainHead
from tzsb.audit.chain import _Walker
from tzsb.audit.log import LogEntry
from tzsb.store import log_chain
from tzsb.store.schema import interaction_log


def _digest_as_first_defined(previous: str, row: dict[str, Any]) -> str:
    """The digest as issue 14 defined it (``cryptography``'s SM3 over one JSON array), kept here
    word for word: chains written since must verify against it."""
    fields: list[Any] = [previous]
    if row.get("correlation"):
        fields.append(["correlation", str(row["correlation"])])
    for name in log_chain.CHAINED_COLUMNS:
        value = row[name]
        if name == "record_count":
            value = int(value)
        elif name == "duration_ms":
            value = float(value)
        else:
            value = str(value)
        fields.append(value)
    hasher = hashes.Hash(hashes.SM3())
    hasher.update(orjson.dumps(fields))
    return hasher.finalize().hex()


_TEXT = st.text(max_size=80)
_ENTRIES = st.builds(
    LogEntry,
    at=_TEXT,
    appid=_TEXT,
    busicode=_TEXT,
    action=_TEXT,
    random=_TEXT,
    client_addr=_TEXT,
    record_count=st.integers(min_value=0, max_value=2**31),
    result=_TEXT,
    code=_TEXT,
    message=st.text(max_size=3000),
    duration_ms=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    direction=st.sampled_from(["in", "out"]),
    region=_TEXT,
    correlation=st.one_of(st.just(""), _TEXT),
)


@given(
    entry=_ENTRIES,
    previous=st.one_of(st.just(log_chain.GENESIS), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)),
)
def test_a_request_s_entry_is_digested_as_the_chain_defines_it(entry: LogEntry, previous: str) -> None:
    row = entry.row()
    (appended,) = log_chain._chained((0, previous), [entry.values()])
    stored = dict(zip(log_chain.APPENDED, appended, strict=True))
    assert stored["digest"] == log_chain.digest_of(previous, row) == _digest_as_first_defined(previous, row)
    assert log_chain.stored_digest_of(previous, stored) == stored["digest"]  # a walk's first try
    # The row the chain stores is the one the digest covered, column for column.
    assert stored == {**row, "chain_seq": 1, "digest": stored["digest"]}


def test_an_entry_s_columns_are_the_log_s_in_the_digest_s_order() -> None:
    """``LogEntry.values`` gives ``ENTRY_COLUMNS`` by position, and the insert fills every column of
    the table but ``id`` (a new column left out would be neither stored nor covered)."""
    assert tuple(field.name for field in fields(LogEntry)) == log_chain.ENTRY_COLUMNS
    assert set(log_chain.APPENDED) == {str(column.name) for column in interaction_log.c} - {"id"}
    assert len(log_chain.APPENDED) == len(interaction_log.c) - 1


def test_sm3_is_the_standard_s() -> None:
    """GB/T 32905-2016, appendix A, example 1."""
    assert log_chain.sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_a_row_appended_without_its_defaulted_columns_is_digested_with_their_defaults() -> None:
    """``interaction_log.append`` takes a row without ``direction``, ``region`` or ``correlation``
    and stores their defaults: the digest must cover what is stored."""
    entry = LogEntry(
        at="2026-11-28T09:30:00+08:00", appid="hz", busicode="140101", action="04", random="r" * 32,
        client_addr="127.0.0.1", record_count=1, result="0001", code="", message="", duration_ms=1.0,
    )  # fmt: skip
    full = entry.row()
    older = {name: value for name, value in full.items() if name not in ("direction", "region", "correlation")}
    assert log_chain.digest_of(log_chain.GENESIS, older) == log_chain.digest_of(log_chain.GENESIS, full)


def test_a_walk_checks_a_row_whose_column_came_back_as_another_type_by_the_definition() -> None:
    """A walk digests each row as stored first; a value of another type (a count read back as text)
    misses that, and is checked by the definition before anything is called a problem."""
    entry = LogEntry(
        at="2026-11-28T09:30:00+08:00", appid="hz", busicode="140101", action="04", random="r" * 32,
        client_addr="127.0.0.1", record_count=1, result="0001", code="", message="", duration_ms=1.0,
    )  # fmt: skip
    (appended,) = log_chain._chained((0, log_chain.GENESIS), [entry.values()])
    stored = {**dict(zip(log_chain.APPENDED, appended, strict=True)), "record_count": "1", "duration_ms": 1}
    assert log_chain.stored_digest_of(log_chain.GENESIS, stored) != stored["digest"]
    walker = _Walker(ChainHead(0, log_chain.GENESIS))
    assert walker.feed(stored, "id 1") and walker.problem is None
    assert walker.position == ChainHead(1, stored["digest"])
