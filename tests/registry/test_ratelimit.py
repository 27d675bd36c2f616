"""Requests per minute: counted in memory by one process, in the database when workers share them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tzsb.app import Node
from tzsb.clock import FixedClock
from tzsb.errors import ConfigurationError
from tzsb.registry.ratelimit import RateLimiter
from tzsb.settings import load_settings


def test_one_process_counts_in_memory(clock: FixedClock) -> None:
    limiter = RateLimiter(clock)
    assert [limiter.allow("a", 3) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b", 3)  # per app
    assert limiter.allow("a", 0)  # 0 = no limit
    clock.advance(timedelta(minutes=1))
    assert limiter.allow("a", 3)


def test_workers_share_one_count_per_app_and_minute(node: Node, clock: FixedClock) -> None:
    first, second = RateLimiter(clock, shared=node.store), RateLimiter(clock, shared=node.store)
    allowed = [limiter.allow("a", 5) for _ in range(4) for limiter in (first, second)]
    assert allowed == [True] * 5 + [False] * 3
    with node.store.read() as connection:  # a refused request changed nothing
        assert connection.execute(sa.text("SELECT count FROM rate_windows WHERE appid = 'a'")).scalar_one() == 5
    assert second.allow("b", 5)
    clock.advance(timedelta(minutes=1))
    assert first.allow("a", 5)
    with node.store.read() as connection:
        windows = connection.execute(sa.text("SELECT appid, count FROM rate_windows ORDER BY appid")).all()
    # The first request of a new minute drops the app's older windows.
    assert [tuple(row) for row in windows] == [("a", 1), ("b", 1)]


def test_a_node_with_several_workers_counts_in_the_database(make_node: Callable[..., Node]) -> None:
    node = make_node(workers=2)
    assert node.exchange.admission.rate_limiter._shared is node.store
    assert make_node().exchange.admission.rate_limiter._shared is None


@pytest.mark.parametrize("workers", ["0", "65", "-1"])
def test_workers_must_be_between_1_and_64(tmp_path: Path, workers: str) -> None:
    with pytest.raises(ConfigurationError, match=f"workers must be between 1 and 64, got {workers}"):
        load_settings(tmp_path, environ={"TZSB_WORKERS": workers})
