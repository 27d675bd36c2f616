"""The node's one clock. Business timestamps are Beijing local time, as the spec's users write them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Final, Protocol

#: China has kept one offset without daylight saving since 1991; a fixed zone needs no tz database.
BEIJING: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
TIMESTAMP_FORMAT: Final = "%Y-%m-%d %H:%M:%S"


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in Beijing."""

    def now(self) -> datetime:
        return datetime.now(BEIJING)


class FixedClock:
    """A clock that stands still until moved: for tests and reproducible runs."""

    def __init__(self, at: datetime) -> None:
        self.at = at.astimezone(BEIJING)

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


def business_timestamp(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in Beijing time."""
    return moment.astimezone(BEIJING).strftime(TIMESTAMP_FORMAT)
