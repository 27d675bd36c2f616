"""Console accounts: scrypt hashes, roles, lock-out after failed logins, session and CSRF tokens."""

from __future__ import annotations

import base64
import hmac
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from typer.testing import CliRunner

from tzsb.app import Node
from tzsb.cli.main import app as cli
from tzsb.clock import FixedClock
from tzsb.errors import ConfigurationError, LoginRefused
from tzsb.registry import accounts as registry_accounts
from tzsb.registry.accounts import AccountStore, Role, ScryptCost, SessionTokens, check_password, hash_password
from tzsb.store.schema import accounts

GOOD = "Tzsb-console-2026"
WRONG = "用户名或密码错误，或账号暂时锁定 / wrong user name or password, or the account is locked for now"
KEY = b"k" * 32
#: The cost new hashes get, as shipped (read before any test lowers it).
SHIPPED = registry_accounts.SCRYPT_COST
#: The default before issue 17: below OWASP's floor.
FORMER = ScryptCost(n=2**15, r=8, p=1)
#: What most tests hash at, to stay fast: a hash at the shipped cost takes about 0.37 s.
FAST = ScryptCost(n=2**4, r=8, p=1)


@pytest.fixture
def fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_accounts, "SCRYPT_COST", FAST)


@pytest.fixture
def store(node: Node, clock: FixedClock, fast_hashes: None) -> AccountStore:
    return AccountStore(node.store, clock)


def stored_hash(node: Node, username: str) -> tuple[str, str]:
    """The account's password hash and the time its password was last set."""
    with node.store.read() as connection:
        row = connection.execute(
            sa.select(accounts.c.password_hash, accounts.c.password_changed_at).where(accounts.c.username == username)
        ).one()
    return row.password_hash, row.password_changed_at


def test_password_is_hashed_with_scrypt(store: AccountStore, node: Node) -> None:
    store.create("zhang", GOOD, Role.OPERATOR, "330100")
    stored, _ = stored_hash(node, "zhang")
    assert stored.startswith("scrypt$16$8$1$")
    assert GOOD not in stored
    assert check_password(GOOD, stored)
    assert not check_password(GOOD + "x", stored)
    assert hash_password(GOOD) != hash_password(GOOD)  # salted


def test_the_shipped_scrypt_cost_meets_the_owasp_floor() -> None:
    """OWASP: N=2^17, r=8, p=1 or an equivalent (2^16/8/2, 2^15/8/3, ...); 2^15/8/1 was below it."""
    assert (SHIPPED.n, SHIPPED.r, SHIPPED.p) == (2**17, 8, 1)
    assert SHIPPED.meets_floor()
    stored = hash_password(GOOD)
    assert stored.startswith("scrypt$131072$8$1$")
    assert check_password(GOOD, stored)  # 128 MiB fits scrypt's memory ceiling
    assert not FORMER.meets_floor()
    assert ScryptCost(n=2**15, r=8, p=3).meets_floor()
    assert ScryptCost(n=2**16, r=8, p=2).meets_floor()
    assert not ScryptCost(n=2**16, r=8, p=1).meets_floor()
    assert not ScryptCost(n=2**17, r=4, p=1).meets_floor()


def test_a_login_rehashes_a_hash_of_an_older_cost(
    node: Node, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_accounts, "SCRYPT_COST", FORMER)
    store = AccountStore(node.store, clock)
    account = store.create("zhang", GOOD, Role.OPERATOR, "330100")
    former, changed_at = stored_hash(node, "zhang")
    assert former.startswith("scrypt$32768$8$1$")
    monkeypatch.setattr(registry_accounts, "SCRYPT_COST", SHIPPED)  # the node is upgraded
    tokens = SessionTokens(KEY, store)
    earlier = tokens.issue(account)

    with pytest.raises(LoginRefused):
        store.authenticate("zhang", "Wrong-password-1")
    assert stored_hash(node, "zhang") == (former, changed_at)  # a refused login changes no hash

    assert store.authenticate("zhang", GOOD) == account
    rehashed, still_changed_at = stored_hash(node, "zhang")
    assert rehashed.startswith("scrypt$131072$8$1$")
    assert check_password(GOOD, rehashed)
    assert still_changed_at == changed_at  # the password itself did not change
    # The new hash ends the sessions issued before it, as a password change does; the login's own is fine.
    assert tokens.account(earlier) is None
    assert tokens.account(tokens.issue(account)) == account
    assert store.authenticate("zhang", GOOD) == account
    assert stored_hash(node, "zhang")[0] == rehashed  # once


def test_a_rehash_never_overwrites_a_password_set_meanwhile(
    node: Node, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login re-hashes while an administrator sets a new password: the new password stays."""
    monkeypatch.setattr(registry_accounts, "SCRYPT_COST", FAST)
    store = AccountStore(node.store, clock)
    store.create("zhang", GOOD, Role.OPERATOR, "330100")
    monkeypatch.setattr(registry_accounts, "SCRYPT_COST", ScryptCost(n=2**5, r=8, p=1))
    rehash = registry_accounts.hash_password

    def rehash_while_the_password_changes(password: str) -> str:
        monkeypatch.setattr(registry_accounts, "hash_password", rehash)
        made = rehash(password)
        store.set_password("zhang", "Another-password-2")
        return made

    monkeypatch.setattr(registry_accounts, "hash_password", rehash_while_the_password_changes)
    store.authenticate("zhang", GOOD)
    assert registry_accounts.hash_password is rehash  # the login did re-hash
    assert check_password("Another-password-2", stored_hash(node, "zhang")[0])
    assert store.authenticate("zhang", "Another-password-2").username == "zhang"


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


def test_lock_out_after_five_failures_lifts_after_fifteen_minutes(store: AccountStore, clock: FixedClock) -> None:
    store.create("zhao", GOOD, Role.ADMIN, "330000")
    for _ in range(5):
        with pytest.raises(LoginRefused):
            store.authenticate("zhao", "Wrong-password-1")
    with pytest.raises(LoginRefused) as locked:
        store.authenticate("zhao", GOOD)
    assert str(locked.value) == WRONG
    clock.advance(timedelta(minutes=15, seconds=-1))
    with pytest.raises(LoginRefused) as still_locked:
        store.authenticate("zhao", GOOD)
    assert str(still_locked.value) == WRONG
    clock.advance(timedelta(seconds=1))
    assert store.authenticate("zhao", GOOD).username == "zhao"


def test_disabled_account_cannot_log_in(store: AccountStore) -> None:
    store.create("qian", GOOD, Role.AUDITOR, "330000")
    store.set_enabled("qian", False)
    with pytest.raises(LoginRefused):
        store.authenticate("qian", GOOD)


def test_session_and_csrf_tokens(store: AccountStore, clock: FixedClock) -> None:
    account = store.create("sun", GOOD, Role.ADMIN, "330000")
    tokens = SessionTokens(KEY, store)
    session = tokens.issue(account)
    assert tokens.account(session) == account
    assert tokens.account(session[:-1] + ("0" if session[-1] != "0" else "1")) is None
    assert tokens.account("garbage") is None
    assert tokens.account("令牌.令牌") is None
    assert not tokens.check_csrf(session, "令牌")
    csrf = tokens.csrf_token(session)
    assert tokens.check_csrf(session, csrf)
    assert not tokens.check_csrf(tokens.issue(account), csrf)
    assert SessionTokens.COOKIE_ATTRIBUTES == {"httponly": True, "secure": True, "samesite": "strict", "path": "/"}
    clock.advance(timedelta(hours=8, seconds=1))
    assert tokens.account(session) is None


def test_a_password_change_ends_earlier_sessions(store: AccountStore) -> None:
    account = store.create("sun", GOOD, Role.ADMIN, "330000")
    tokens = SessionTokens(KEY, store)
    sessions = [tokens.issue(account), tokens.issue(store.authenticate("sun", GOOD))]
    store.set_password("sun", "Another-password-2")
    assert [tokens.account(session) for session in sessions] == [None, None]
    fresh = tokens.issue(store.authenticate("sun", "Another-password-2"))
    assert tokens.account(fresh) == account
    # Setting the same password again hashes it with a new salt: that ends sessions too.
    store.set_password("sun", "Another-password-2")
    assert tokens.account(fresh) is None


def test_a_disabled_account_s_sessions_do_not_validate(store: AccountStore) -> None:
    account = store.create("qian", GOOD, Role.AUDITOR, "330000")
    tokens = SessionTokens(KEY, store)
    session = tokens.issue(account)
    store.set_enabled("qian", False)
    assert tokens.account(session) is None
    with pytest.raises(LoginRefused):
        tokens.issue(account)


def test_a_session_of_one_account_is_no_session_of_another(store: AccountStore) -> None:
    """Two accounts with the same password: a token's payload re-pointed at the other name fails its MAC,
    and a password stamp is tied to its account's name as well as to the hash."""
    sun = store.create("sun", GOOD, Role.ADMIN, "330000")
    store.create("li", GOOD, Role.AUDITOR, "330106")
    tokens = SessionTokens(KEY, store)
    body, mac = tokens.issue(sun).split(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).replace(b'"sun"', b'"li"')
    assert tokens.account(f"{base64.urlsafe_b64encode(payload).decode().rstrip('=')}.{mac}") is None


def test_session_macs_are_hmac_sm3_through_cryptography(store: AccountStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """As if Python's OpenSSL had no SM3: ``hmac.new(key, data, "sm3")`` is not there to call."""
    monkeypatch.setattr(registry_accounts, "hmac", SimpleNamespace(compare_digest=hmac.compare_digest))
    account = store.create("sun", GOOD, Role.ADMIN, "330000")
    tokens = SessionTokens(KEY, store)
    session = tokens.issue(account)
    assert tokens.account(session) == account
    body, mac = session.split(".")
    expected = crypto_hmac.HMAC(KEY, hashes.SM3())
    expected.update(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert mac == expected.finalize().hex()
    assert tokens.check_csrf(session, tokens.csrf_token(session))


@pytest.mark.usefixtures("fast_hashes")
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
