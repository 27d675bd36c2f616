"""The table families beside the records: apps, accounts, lock-outs, rate windows, the interaction log.

Each module's functions on both databases, as the registry and the audit log call them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from tzsb.errors import StoreConflict
from tzsb.store import Store, accounts, apps, interaction_log, lockouts, log_chain, open_store, rate_windows


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.dispose()


def _app(appid: str) -> apps.StoredApp:
    return apps.StoredApp(
        appid=appid, name="Hangzhou", secret_enc=b"\x01sealed", previous_secret_enc=None, previous_valid_until=None,
        sign_algorithm="MD5", busicodes=["140101"], actions=["01", "04"], overrides=[], region="330100",
        max_records=1000, enabled=True, created_at="2026-11-28T09:30:00+08:00",
        updated_at="2026-11-28T09:30:00+08:00", level="city", max_bytes=None, rate_per_minute=0,
        ip_allow=["10.0.0.0/8"], unmasked=[], require_timestamp=False, cert_fingerprints=[],
    )  # fmt: skip


def test_apps_round_trip_and_change(store: Store) -> None:
    with store.write() as connection:
        assert not apps.exists(connection, "b")
        apps.add(connection, _app("b"))
        apps.add(connection, _app("a"))
        assert apps.exists(connection, "b")
    with store.read() as connection:
        assert apps.find(connection, "b") == _app("b")
        assert apps.find(connection, "c") is None
        assert [app.appid for app in apps.listing(connection)] == ["a", "b"]
    later = "2026-11-29T09:30:00+08:00"
    with store.write() as connection:
        assert apps.set_enabled(connection, "a", False, later)
        assert apps.set_secrets(connection, "b", b"\x01new", b"\x01sealed", later, later)
        assert not apps.set_enabled(connection, "c", False, later)
        assert not apps.set_secrets(connection, "c", b"", None, None, later)
    with store.read() as connection:
        assert apps.find(connection, "a") == replace(_app("a"), enabled=False, updated_at=later)
        assert apps.find(connection, "b") == replace(
            _app("b"), secret_enc=b"\x01new", previous_secret_enc=b"\x01sealed", previous_valid_until=later,
            updated_at=later,
        )  # fmt: skip


def _account(username: str) -> accounts.StoredAccount:
    return accounts.StoredAccount(
        username=username, password_hash="scrypt$…", role="auditor", region="330000", enabled=True,
        failed_logins=0, locked_until=None, created_at="2026-11-28", password_changed_at="2026-11-28",
    )  # fmt: skip


def test_accounts_count_failed_logins_up_to_a_lock(store: Store) -> None:
    with store.write() as connection:
        accounts.add(connection, _account("zhang"))
        accounts.add(connection, _account("li"))
        assert accounts.exists(connection, "zhang") and not accounts.exists(connection, "wang")
    for _ in range(2):
        with store.write() as connection:
            accounts.count_failed_login(connection, "zhang", 3, "2026-11-28T10:00:00")
    with store.read() as connection:
        assert accounts.find(connection, "zhang") == replace(_account("zhang"), failed_logins=2)
    with store.write() as connection:
        accounts.count_failed_login(connection, "zhang", 3, "2026-11-28T10:00:00")
    with store.read() as connection:
        assert accounts.find(connection, "zhang") == replace(_account("zhang"), locked_until="2026-11-28T10:00:00")
    with store.write() as connection:
        accounts.count_failed_login(connection, "zhang", 3, "2026-11-28T11:00:00")
        accounts.clear_failed_logins(connection, "zhang")
        assert accounts.set_password(connection, "li", "scrypt$new", "2026-11-29")
        assert accounts.set_enabled(connection, "li", False)
        assert not accounts.set_password(connection, "wang", "x", "2026-11-29")
        assert not accounts.set_enabled(connection, "wang", False)
    with store.read() as connection:
        assert accounts.find(connection, "zhang") == _account("zhang")
        assert accounts.find(connection, "wang") is None
        assert accounts.listing(connection) == [
            replace(_account("li"), password_hash="scrypt$new", password_changed_at="2026-11-29", enabled=False),
            _account("zhang"),
        ]


def _failures(appid: str, client_addr: str, count: int = 1, locked_until: str | None = None) -> lockouts.Failures:
    return lockouts.Failures(appid, client_addr, count, "2026-11-28T09:00:00", "2026-11-28T09:10:00", locked_until)


def test_lockouts_count_clear_and_prune(store: Store) -> None:
    with store.write() as connection:
        assert lockouts.lock_pair(connection, "a", "10.0.0.1") is None
        lockouts.save(connection, _failures("a", "10.0.0.1"), new=True)
        lockouts.save(connection, _failures("a", "10.0.0.2"), new=True)
        lockouts.save(connection, _failures("b", "10.0.0.1"), new=True)
    with store.write() as connection:
        found = lockouts.lock_pair(connection, "a", "10.0.0.1")
        assert found == _failures("a", "10.0.0.1")
        lockouts.save(connection, replace(found, failures=3, locked_until="2026-11-29T09:10:00"), new=False)
    with store.read() as connection:
        assert lockouts.pairs(connection) == {("a", "10.0.0.1"), ("a", "10.0.0.2"), ("b", "10.0.0.1")}
        assert lockouts.find(connection, "a", "10.0.0.1") == _failures("a", "10.0.0.1", 3, "2026-11-29T09:10:00")
        assert lockouts.has_failures(connection, "b", "10.0.0.1")
        assert not lockouts.has_failures(connection, "b", "10.0.0.2")
        assert {(row.appid, row.client_addr) for row in lockouts.listing(connection)} == lockouts.pairs(connection)
    with store.write() as connection:
        # Stale, but the lock of a/10.0.0.1 has not ended yet.
        assert lockouts.prune(connection, "2026-11-28T10:00:00", "2026-11-28T12:00:00") == 2
        assert lockouts.pairs(connection) == {("a", "10.0.0.1")}
        assert lockouts.clear(connection, "a", "10.0.0.9") == 0
        assert lockouts.clear(connection, "a") == 1
        assert lockouts.pairs(connection) == set()


def test_a_pair_recorded_meanwhile_is_a_conflict(store: Store) -> None:
    with store.write() as connection:
        lockouts.save(connection, _failures("a", "10.0.0.1"), new=True)
    with pytest.raises(StoreConflict), store.write() as connection:
        lockouts.save(connection, _failures("a", "10.0.0.1", 2), new=True)
    with store.read() as connection:
        assert lockouts.find(connection, "a", "10.0.0.1") == _failures("a", "10.0.0.1")


def test_rate_windows_count_up_to_the_limit_and_forget_older_minutes(store: Store) -> None:
    def count(appid: str, minute: int) -> bool:
        with store.write() as connection:
            return rate_windows.count_request(connection, appid, minute, 2)

    assert [count("a", 100) for _ in range(3)] == [True, True, False]
    assert count("b", 100)
    assert [count("a", 101) for _ in range(3)] == [True, True, False]
    with store.read() as connection:
        rows = connection.exec_driver_sql("SELECT appid, minute, count FROM rate_windows ORDER BY appid").all()
    assert [tuple(row) for row in rows] == [("a", 101, 2), ("b", 100, 1)]


def _entry(appid: str, number: int) -> dict[str, object]:
    return {
        "at": f"2026-11-28T09:30:0{number}", "appid": appid, "busicode": "140101", "action": "01",
        "random": f"r{number}", "client_addr": "10.0.0.1", "record_count": number, "result": "0001", "code": "",
        "message": "ok", "duration_ms": 1.5,
    }  # fmt: skip


def test_interaction_log_appends_and_reads_newest_first(store: Store) -> None:
    with store.write() as connection:
        for number, appid in enumerate(["a", "b", "a"], 1):
            interaction_log.append(connection, _entry(appid, number))
    with store.read() as connection:
        assert interaction_log.count(connection) == 3
        newest = interaction_log.recent(connection)
        assert [row["random"] for row in newest] == ["r3", "r2", "r1"]
        assert {key: value for key, value in newest[0].items() if key not in ("id", "digest")} == {
            **_entry("a", 3),
            "direction": "in",
            "region": "",
            "chain_seq": 3,
            "correlation": "",
        }
        assert newest[0]["digest"] == log_chain.digest_of(newest[1]["digest"], newest[0])
        assert [row["random"] for row in interaction_log.recent(connection, 1)] == ["r3"]
        assert [row["random"] for row in interaction_log.recent(connection, appid="a")] == ["r3", "r1"]
