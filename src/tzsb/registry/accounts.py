"""Console accounts (spec 7.1.2): passwords hashed with scrypt, roles, region scope, lock-out,
and the session and CSRF tokens the console will use (the console itself is its own issue)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Final

import orjson

from tzsb.clock import Clock
from tzsb.errors import ConfigurationError, LoginRefused
from tzsb.protocol import is_region_code
from tzsb.store import Store
from tzsb.store import accounts as stored_accounts

# scrypt cost: 2^15 × 8 × 128 B = 32 MiB per hash — memory-hard, about 0.1 s on one core.
_SCRYPT_N: Final = 2**15
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_MAXMEM: Final = 64 * 1024 * 1024
_USERNAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@")


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    DATA_ENTRY = "data_entry"
    AUDITOR = "auditor"


#: What each role may do in the console.
PERMISSIONS: Final[dict[Role, frozenset[str]]] = {
    Role.ADMIN: frozenset(
        {"manage_accounts", "manage_apps", "manage_rules", "enter_data", "view_records", "view_logs"}
    ),
    Role.OPERATOR: frozenset({"manage_apps", "manage_rules", "view_records", "view_logs"}),
    Role.DATA_ENTRY: frozenset({"enter_data", "view_records"}),
    Role.AUDITOR: frozenset({"view_records", "view_logs"}),
}


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    role: Role
    region: str
    enabled: bool

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=_MAXMEM, dklen=32
    )
    encode = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


def password_problem(password: str) -> str | None:
    """Why a password is too weak (at least 10 characters of three kinds), or None."""
    if len(password) < 10:
        return "a password needs at least 10 characters"
    kinds = sum(
        (
            any(char.islower() for char in password),
            any(char.isupper() for char in password),
            any(char.isdigit() for char in password),
            any(not char.isalnum() for char in password),
        )
    )
    if kinds < 3:
        return "a password needs three of: lower-case, upper-case, digits, symbols"
    return None


_REFUSED: Final = "用户名或密码错误，或账号暂时锁定 / wrong user name or password, or the account is locked for now"


@cache
def _dummy_hash() -> str:
    """A fixed hash to compare against when the user does not exist, so both paths cost the same.

    Made by the first AccountStore rather than on import: the registry's face imports this module,
    and most processes that import the registry never check a password (a hash costs 0.1 s).
    """
    return hash_password(secrets.token_hex(16))


class AccountStore:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        max_failures: int = 5,
        lock_for: timedelta = timedelta(minutes=15),
    ) -> None:
        self.store = store
        self.clock = clock
        _dummy_hash()  # made now, so that the first refusal of an unknown name costs what the others do
        self.max_failures = max_failures
        self.lock_for = lock_for

    def create(self, username: str, password: str, role: Role, region: str) -> Account:
        if not username or len(username) > 64 or not set(username) <= _USERNAME_CHARS:
            raise ConfigurationError("username must be 1-64 characters of letters, digits and _ . - @")
        if not is_region_code(region):
            raise ConfigurationError(f"region {region!r} must be a 6-digit GB/T 2260 code (100000 = national)")
        problem = password_problem(password)
        if problem:
            raise ConfigurationError(problem)
        now = self.clock.now().isoformat()
        with self.store.write() as connection:
            if stored_accounts.exists(connection, username):
                raise ConfigurationError(f"account {username} already exists")
            stored_accounts.add(
                connection,
                stored_accounts.StoredAccount(
                    username=username,
                    password_hash=hash_password(password),
                    role=role.value,
                    region=region,
                    enabled=True,
                    failed_logins=0,
                    locked_until=None,
                    created_at=now,
                    password_changed_at=now,
                ),
            )
        return Account(username, role, region, True)

    def get(self, username: str) -> Account | None:
        with self.store.read() as connection:
            row = stored_accounts.find(connection, username)
        return None if row is None else Account(row.username, Role(row.role), row.region, bool(row.enabled))

    def list(self) -> list[Account]:
        with self.store.read() as connection:
            rows = stored_accounts.listing(connection)
        return [Account(row.username, Role(row.role), row.region, bool(row.enabled)) for row in rows]

    def authenticate(self, username: str, password: str) -> Account:
        """The account, or LoginRefused; failures count toward a temporary lock."""
        now = self.clock.now()
        with self.store.read() as connection:
            row = stored_accounts.find(connection, username)
        if row is None:
            check_password(password, _dummy_hash())
            raise LoginRefused(_REFUSED)
        if row.locked_until is not None and datetime.fromisoformat(row.locked_until) > now:
            # The same words as a wrong password: a lock must not tell that the name exists.
            check_password(password, _dummy_hash())
            raise LoginRefused(_REFUSED)
        if not row.enabled or not check_password(password, row.password_hash):
            with self.store.write() as connection:
                # Counted in the database, so parallel guesses cannot slip past the limit.
                lock_until = (now + self.lock_for).isoformat()
                stored_accounts.count_failed_login(connection, username, self.max_failures, lock_until)
            raise LoginRefused(_REFUSED)
        if row.failed_logins or row.locked_until:
            with self.store.write() as connection:
                stored_accounts.clear_failed_logins(connection, username)
        return Account(row.username, Role(row.role), row.region, True)

    def set_password(self, username: str, password: str) -> None:
        problem = password_problem(password)
        if problem:
            raise ConfigurationError(problem)
        password_hash, changed_at = hash_password(password), self.clock.now().isoformat()
        with self.store.write() as connection:
            found = stored_accounts.set_password(connection, username, password_hash, changed_at)
        if not found:
            raise ConfigurationError(f"no account {username}")

    def set_enabled(self, username: str, enabled: bool) -> None:
        with self.store.write() as connection:
            found = stored_accounts.set_enabled(connection, username, enabled)
        if not found:
            raise ConfigurationError(f"no account {username}")


class SessionTokens:
    """Signed session tokens and CSRF tokens bound to them (HMAC-SM3 under a master sub-key)."""

    COOKIE_ATTRIBUTES: Final = {"httponly": True, "secure": True, "samesite": "strict", "path": "/"}

    def __init__(self, key: bytes, clock: Clock, lifetime: timedelta = timedelta(hours=8)) -> None:
        self._key = key
        self.clock = clock
        self.lifetime = lifetime

    def _mac(self, data: bytes) -> str:
        return hmac.new(self._key, data, "sm3").hexdigest()

    def issue(self, account: Account) -> str:
        payload = orjson.dumps(
            {
                "u": account.username,
                "exp": int((self.clock.now() + self.lifetime).timestamp()),
                "n": secrets.token_hex(8),
            }
        )
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._mac(payload)}"

    def username(self, token: str) -> str | None:
        """The user of a valid, unexpired token, else None."""
        if not isinstance(token, str) or not token.isascii():
            return None
        try:
            body, mac = token.split(".")
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            return None
        if not hmac.compare_digest(self._mac(payload), mac):
            return None
        data = orjson.loads(payload)
        if data["exp"] < self.clock.now().timestamp():
            return None
        return str(data["u"])

    def csrf_token(self, session: str) -> str:
        return self._mac(b"csrf:" + session.encode())

    def check_csrf(self, session: str, token: str) -> bool:
        return hmac.compare_digest(self.csrf_token(session).encode(), token.encode("utf-8", "replace"))
