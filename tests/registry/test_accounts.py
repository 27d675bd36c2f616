"""Console accounts: scrypt hashes, roles, lock-out after failed logins, session and CSRF tokens."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tzsb.app import Node
from tzsb.cli.main import app as cli
from tzsb.clock import FixedClock
from tzsb.errors import ConfigurationError, LoginRefused
from tzsb.registry.accounts import AccountStore, Role, SessionTokens, check_password, hash_password
from tzsb.store.schema import accounts

GOOD = "Tzsb-console-2026"
WRONG = "用户名或密码错误，或账号暂时锁定 / wrong user name or password, or the account is locked for now"


@pytest.fixture
def store(node: Node, clock: FixedClock) -> AccountStore:
    return AccountStore(node.store, clock)


def test_password_is_hashed_with_scrypt(store: AccountStore, node: Node) -> None:
    store.create("zhang", GOOD, Role.OPERATOR, "330100")
    with node.store.read() as connection:
        stored = connection.execute(sa.select(accounts.c.password_hash)).scalar_one()
    assert stored.startswith("scrypt$32768$8$1$")
    assert GOOD not in stored
    assert check_password(GOOD, stored)
    assert not check_password(GOOD + "x", stored)
    assert hash_password(GOOD) != hash_password(GOOD)  # salted


def test_login_and_roles(store: AccountStore) -> None:
    store.create("li", GOOD, Role.DATA_ENTRY, "330106")
    account = store.authenticate("li", GOOD)
    assert account.role is Role.DATA_ENTRY
    assert account.may("enter_data")
    assert not account.may("manage_apps")
    assert Role.AUDITOR.value == "auditor"


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("bad name", GOOD, "username must be 1-64 characters"),
        ("ok", "short1A!", "at least 10 characters"),
        ("ok", "alllowercaseletters", "three of: lower-case, upper-case, digits, symbols"),
    ],
)
def test_create_refuses_bad_input(store: AccountStore, username: str, password: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        store.create(username, password, Role.ADMIN, "330000")
    assert store.list() == []


def test_unknown_user_and_wrong_password_read_the_same(store: AccountStore) -> None:
    store.create("wang", GOOD, Role.ADMIN, "330000")
    with pytest.raises(LoginRefused) as unknown:
        store.authenticate("nobody", GOOD)
    with pytest.raises(LoginRefused) as wrong:
        store.authenticate("wang", "Wrong-password-1")
    assert str(unknown.value) == str(wrong.value) == WRONG


def test_lock_out_after_five_failures_then_release(store: AccountStore, clock: FixedClock) -> None:
    store.create("zhao", GOOD, Role.ADMIN, "330000")
    for _ in range(5):
        with pytest.raises(LoginRefused):
            store.authenticate("zhao", "Wrong-password-1")
    with pytest.raises(LoginRefused) as locked:
        store.authenticate("zhao", GOOD)
    assert str(locked.value) == WRONG
    clock.advance(timedelta(minutes=16))
    assert store.authenticate("zhao", GOOD).username == "zhao"


def test_disabled_account_cannot_log_in(store: AccountStore) -> None:
    store.create("qian", GOOD, Role.AUDITOR, "330000")
    store.set_enabled("qian", False)
    with pytest.raises(LoginRefused):
        store.authenticate("qian", GOOD)


def test_session_and_csrf_tokens(store: AccountStore, clock: FixedClock) -> None:
    account = store.create("sun", GOOD, Role.ADMIN, "330000")
    tokens = SessionTokens(b"k" * 32, clock)
    session = tokens.issue(account)
    assert tokens.username(session) == "sun"
    assert tokens.username(session[:-1] + ("0" if session[-1] != "0" else "1")) is None
    assert tokens.username("garbage") is None
    assert tokens.username("令牌.令牌") is None
    assert not tokens.check_csrf(session, "令牌")
    csrf = tokens.csrf_token(session)
    assert tokens.check_csrf(session, csrf)
    assert not tokens.check_csrf(tokens.issue(account), csrf)
    assert SessionTokens.COOKIE_ATTRIBUTES == {"httponly": True, "secure": True, "samesite": "strict", "path": "/"}
    clock.advance(timedelta(hours=8, seconds=1))
    assert tokens.username(session) is None


def test_user_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    home = tmp_path / "node"
    assert runner.invoke(cli, ["init", "--home", str(home)]).exit_code == 0
    created = runner.invoke(
        cli,
        ["user", "create", "--home", str(home), "--username", "zhou", "--role", "auditor", "--region", "330000",
         "--password-stdin"],
        input=GOOD + "\n",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    listed = runner.invoke(cli, ["user", "list", "--home", str(home), "--json"])
    assert '"username": "zhou"' in listed.stdout
    assert "scrypt" not in listed.stdout
    weak = runner.invoke(cli, ["user", "passwd", "zhou", "--home", str(home), "--password-stdin"], input="weak\n")
    assert weak.exit_code == 1
    assert "at least 10 characters" in weak.stderr
    bad_role = runner.invoke(
        cli, ["user", "create", "--home", str(home), "--username", "x", "--role", "root", "--region", "330000"]
    )
    assert bad_role.exit_code == 1
    assert "--role must be one of" in bad_role.stderr
