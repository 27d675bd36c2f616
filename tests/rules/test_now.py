"""The batch's clock reading is an argument: concurrent batches judged by different "now"s get their own answers."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Final

import pytest

from tzsb.catalog import load_catalog
from tzsb.clock import BEIJING, FixedClock
from tzsb.rules.ruleset import shipped_rule_sets
from tzsb.rules.validator import RecordValidator

BASE: Final[dict[str, Any]] = dict(shipped_rule_sets()["0101"].valid_cases[0])
MADE: Final = {"id": "made", "type": "date_range", "field": "MAKE_DATE", "min": "1900-01-01", "not_future": True}
UPDATED: Final = {
    "id": "updated",
    "type": "date_range",
    "field": "UPDATE_TIME",
    "not_future": True,
    "max_ahead_seconds": 600,
}
EARLY: Final = "2026-11-28 09:30:00"
LATE: Final = "2026-12-05 09:30:00"


@pytest.fixture
def often_switching() -> Iterator[None]:
    """Threads switch every microsecond: a value shared between batches would be overwritten mid-batch."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def validator() -> RecordValidator:
    # A clock far from both readings: a rule that read it instead of the argument would fail both threads.
    return RecordValidator(
        load_catalog()["0101"], [MADE, UPDATED], clock=FixedClock(datetime(2030, 1, 1, tzinfo=BEIJING))
    )


def batch() -> list[dict[str, Any]]:
    """Records made and updated in the week between EARLY and LATE: the future at EARLY, the past at LATE."""
    days = ("2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03")
    return [
        dict(
            BASE,
            EQP_CODE=f"{BASE['EQP_CODE'][:-4]}{index:04d}",
            MAKE_DATE=days[index % len(days)],
            UPDATE_TIME=f"{days[index % 3]} 10:00:{index % 60:02d}",
        )
        for index in range(40)
    ]


def test_batch_readings_decide(often_switching: None) -> None:
    records = batch()
    rules = validator()
    early = rules.check_batch(records, now=EARLY)
    assert {fault.index for fault in early.errors} == set(range(len(records)))
    assert {error.rule for fault in early.errors for error in fault.errors or ()} == {"made", "updated"}
    assert rules.check_batch(records, now=LATE).errors == []


def test_two_threads_with_different_readings_get_their_own_answers(often_switching: None) -> None:
    records = batch()
    rules = validator()
    expected = {now: rules.check_batch(records, now=now) for now in (EARLY, LATE)}
    assert expected[EARLY] != expected[LATE]
    one = {now: rules.violations(records[0], now=now) for now in (EARLY, LATE)}
    assert one[EARLY] != one[LATE]
    start = threading.Barrier(2)

    def run(now: str) -> list[bool]:
        start.wait()
        answers = []
        for _ in range(60):
            answers.append(rules.check_batch(records, now=now) == expected[now])
            answers.append(rules.violations(records[0], now=now) == one[now])
        return answers

    with ThreadPoolExecutor(max_workers=2) as pool:
        early, late = pool.map(run, [EARLY, LATE])
    assert all(early)
    assert all(late)


def test_without_a_reading_the_validator_reads_its_clock_once_per_call() -> None:
    clock = FixedClock(datetime(2026, 11, 28, 9, 30, tzinfo=BEIJING))
    rules = RecordValidator(load_catalog()["0101"], [MADE], clock=clock)
    tomorrow = dict(BASE, MAKE_DATE="2026-11-29")
    assert [v.rule for v in rules.violations(tomorrow)] == ["made"]
    assert [fault.index for fault in rules.validate_batch([tomorrow])] == [0]
    assert rules.validate_batch([tomorrow], now="2026-11-29 00:00:00") == []
    assert rules.violations(tomorrow, now="2026-11-29 00:00:00") == []
