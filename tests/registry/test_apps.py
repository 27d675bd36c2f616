"""Apps and secrets: encrypted at rest under the master key, rotation with grace, grant checks."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support import grant
from tzsb.app import Node
from tzsb.clock import FixedClock
from tzsb.errors import ConfigurationError
from tzsb.registry import AppRegistry, AppSpec, MasterKey
from tzsb.settings import Secret
from tzsb.store.schema import apps


def test_secret_is_stored_encrypted(node: Node) -> None:
    secret = grant(node)
    with node.store.read() as connection:
        sealed = connection.execute(sa.select(apps.c.secret_enc)).scalar_one()
    assert secret.encode() not in bytes(sealed)
    found = node.registry.get("hz-city")
    assert found is not None and found.secret == secret
    assert secret not in repr(found)


def test_another_master_key_cannot_read_the_secrets(node: Node, clock: FixedClock) -> None:
    grant(node)
    stranger = AppRegistry(node.store, MasterKey.generate(), clock)
    with pytest.raises(ConfigurationError, match="does not decrypt under this master key"):
        stranger.get("hz-city")


def test_a_sealed_secret_cannot_be_moved_to_another_app(node: Node) -> None:
    grant(node, appid="a")
    grant(node, appid="b")
    with node.store.write() as connection:
        sealed = connection.execute(sa.select(apps.c.secret_enc).where(apps.c.appid == "a")).scalar_one()
        connection.execute(sa.update(apps).where(apps.c.appid == "b").values(secret_enc=sealed))
    uncached = AppRegistry(node.store, node.registry.master_key, node.clock)
    with pytest.raises(ConfigurationError):
        uncached.get("b")


def test_master_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = MasterKey.generate()
    key.write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        MasterKey.generate().write(path)
    assert MasterKey.read(path).encrypt("x", "c") != b""
    assert "*" in repr(key) and path.read_text().strip() not in repr(key)
    assert repr(Secret("abc")) == "Secret('**********')"


def test_rotation_with_and_without_grace(node: Node, clock: FixedClock) -> None:
    old = grant(node)
    new = node.registry.rotate_secret("hz-city", timedelta(hours=1))
    found = node.registry.get("hz-city")
    assert found is not None and found.secrets == (new, old)
    clock.advance(timedelta(hours=1, seconds=1))
    found = node.registry.get("hz-city")
    assert found is not None and found.secrets == (new,)
    newest = node.registry.rotate_secret("hz-city")
    found = node.registry.get("hz-city")
    assert found is not None and found.secrets == (newest,)


def test_a_cached_app_is_not_decrypted_again_but_its_grace_still_ends_on_time(
    node: Node, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = node.registry
    registry.cache_seconds = 3600
    old = grant(node)
    new = registry.rotate_secret("hz-city", timedelta(hours=1))
    decrypted: list[str] = []
    decrypt = registry.master_key.decrypt
    monkeypatch.setattr(registry.master_key, "decrypt", lambda *args: decrypted.append(args[1]) or decrypt(*args))
    first = registry.get("hz-city")
    assert first is not None and first.secrets == (new, old)
    assert registry.get("hz-city") is first
    assert decrypted == ["hz-city", "hz-city"]  # the new and the previous secret, once
    clock.advance(timedelta(hours=1, seconds=1))
    after_grace = registry.get("hz-city")  # still inside the cache time, past the grace
    assert after_grace is not None and after_grace.secrets == (new,)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"region": "33010"}, "region '33010' must be a 6-digit"),
        ({"busicodes": frozenset({"140110"})}, "busicode '140110' is not purpose"),
        ({"busicodes": frozenset({"100101"})}, "busicode '100101' is not purpose"),
        ({"actions": frozenset({"1"})}, "action '1' must be one of"),
        ({"overrides": frozenset({"0199"})}, "override '0199' is not a business type"),
        ({"max_records": 0}, "max records per request must be between 1 and 100000"),
        ({"appid": "a" * 65}, "must be 1-64 characters"),
    ],
)
def test_grants_are_checked(node: Node, changes: dict[str, object], message: str) -> None:
    spec = {
        "appid": "ok",
        "region": "330100",
        "busicodes": frozenset({"140101"}),
        "actions": frozenset({"01"}),
        **changes,
    }
    with pytest.raises(ConfigurationError, match=message):
        node.registry.create(AppSpec(**spec))  # type: ignore[arg-type]
    assert node.registry.list() == []
