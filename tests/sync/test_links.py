"""Links as an operator sets them up: checked against the spec before they are kept."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.sync.conftest import COUNTY
from tzsb.app import Node
from tzsb.clock import BEIJING
from tzsb.errors import ConfigurationError
from tzsb.registry import DirectionPolicy, Party, load_directions
from tzsb.store.schema import links
from tzsb.sync import LinkSpec, due, parent_of, parse_every
from tzsb.sync.links import check_spec


def _spec(**changes: object) -> LinkSpec:
    values: dict[str, object] = {
        "name": "up", "url": "https://city.example/tzsb/exchange", "appid": "county-330106", "secret": "s3cret",
        "direction": "up", "businesses": ("0101", "0102"),
    }  # fmt: skip
    values.update(changes)
    return LinkSpec(**values)  # type: ignore[arg-type]


def _policy(level: str, region: str) -> tuple[Party, DirectionPolicy]:
    node = Party(level, region)
    return node, DirectionPolicy(node, load_directions())


@pytest.mark.parametrize(
    ("level", "region", "direction", "purpose", "every"),
    [
        ("county", "330106", "up", "14", 86400),
        ("city", "330100", "up", "14", 86400),
        ("city", "330100", "down", "14", 86400),
        ("province", "330000", "up", "12", 2 * 86400),
        ("province", "330000", "down", "13", 2 * 86400),
    ],
)
def test_purpose_and_schedule_follow_the_levels(
    level: str, region: str, direction: str, purpose: str, every: int
) -> None:
    """Table 6 (14 below the province, 12 up and 13 down between province and national) and 5.4
    (county and city daily, province every two days)."""
    node, policy = _policy(level, region)
    checked = check_spec(_spec(direction=direction), node, policy)
    assert (checked.purpose, checked.every_seconds) == (purpose, every)


def test_the_parent_is_the_next_level_up() -> None:
    assert parent_of("county", "330106") == Party("city", "330100")
    assert parent_of("city", "330100") == Party("province", "330000")
    assert parent_of("province", "330000") == Party("national", "100000")
    with pytest.raises(ConfigurationError, match="a national node has no parent"):
        parent_of("national", "100000")


def test_a_flow_the_matrix_forbids_is_refused_naming_the_rule() -> None:
    """0201 (design licences) flows only between national and province (table 2)."""
    node, policy = _policy("county", "330106")
    with pytest.raises(ConfigurationError) as refused:
        check_spec(_spec(businesses=("0101", "0201")), node, policy)
    message = str(refused.value)
    assert message.startswith("up link for 0201 with purpose 14 (county 330106 → city 330100): ")
    assert "national→province" in message and "county->city" in message


def test_purpose_12_is_for_province_to_national_only() -> None:
    node, policy = _policy("county", "330106")
    with pytest.raises(ConfigurationError, match="purpose 12"):
        check_spec(_spec(purpose="12"), node, policy)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "no spaces"}, "link name 'no spaces'"),
        ({"url": "ftp://city.example/x"}, "--url 'ftp://city.example/x'"),
        ({"url": "https://user:pw@city.example/x"}, "must not hold a user name or password"),
        ({"appid": "bad id"}, "--appid 'bad id'"),
        ({"secret": ""}, "--secret"),
        ({"direction": "sideways"}, "--direction 'sideways'"),
        ({"businesses": ()}, "at least one --business"),
        ({"businesses": ("0199",)}, "--business 0199: not a business type"),
        ({"purpose": "77"}, "--purpose 77"),
        ({"max_records": 0}, "--max-records"),
        ({"max_bytes": 10}, "--max-bytes"),
        ({"timeout_seconds": 0.0}, "--timeout"),
    ],
)
def test_a_malformed_link_is_refused_with_what_to_fix(changes: dict[str, object], message: str) -> None:
    node, policy = _policy("county", "330106")
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(".", r"\.")):
        check_spec(_spec(**changes), node, policy)


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("6h", 21600), ("1d", 86400), ("2d", 172800)])
def test_every_takes_a_number_and_a_unit(text: str, seconds: int) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "1w", "d", "1.5h", "-1d", "1 d x"])
def test_every_refuses_anything_else(text: str) -> None:
    with pytest.raises(ConfigurationError, match="give a number and a unit"):
        parse_every(text)


def test_the_secret_is_sealed_and_the_link_lifecycle(open_node: object) -> None:
    from collections.abc import Callable

    assert callable(open_node)
    factory: Callable[..., Node] = open_node
    county = factory("county", "county", COUNTY)
    link = county.links.add(_spec(secret="a-secret-no-one-sees"))
    assert (link.purpose, link.every_seconds, link.state, link.secret) == ("14", 86400, "idle", "a-secret-no-one-sees")
    assert "secret" not in link.describe() and "a-secret-no-one-sees" not in str(link.describe())
    with county.store.read() as connection:
        sealed = connection.execute(sa.select(links.c.secret_enc)).scalar_one()
    assert b"a-secret-no-one-sees" not in bytes(sealed)
    with pytest.raises(ConfigurationError, match="a link named up exists"):
        county.links.add(_spec())
    assert county.links.set_enabled("up", False).enabled is False
    assert [item.name for item in county.links.list()] == ["up"]
    county.links.remove("up")
    assert county.links.list() == []
    with pytest.raises(ConfigurationError, match="no link named up"):
        county.links.remove("up")


def test_a_link_is_due_by_its_schedule_and_waits_after_failing(open_node: object) -> None:
    from collections.abc import Callable
    from dataclasses import replace

    assert callable(open_node)
    factory: Callable[..., Node] = open_node
    county = factory("county", "county", COUNTY)
    link = county.links.add(_spec(every_seconds=3600))
    now = datetime(2026, 12, 5, 10, 0, tzinfo=BEIJING)
    assert due(link, now)
    ran = replace(link, last_attempt_at=now.isoformat())
    assert not due(ran, now + timedelta(minutes=59))
    assert due(ran, now + timedelta(minutes=60))
    assert not due(replace(ran, enabled=False), now + timedelta(hours=2))
    failed = replace(ran, state="failed", wait_until=(now + timedelta(hours=24)).isoformat())
    assert not due(failed, now + timedelta(hours=23))
    assert due(failed, now + timedelta(hours=24))
