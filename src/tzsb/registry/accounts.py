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
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from tzsb.clock import Clock
from tzsb.errors import ConfigurationError, LoginRefused
from tzsb.protocol import is_region_code
from tzsb.store import Store
from tzsb.store import accounts as stored_accounts


@dataclass(frozen=True, slots=True)
class ScryptCost:
    """scrypt's cost parameters: ``n`` blocks of ``128 * r`` bytes (the memory), ``p`` passes."""

    n: int
    r: int
    p: int

    def meets_floor(self) -> bool:
        """At least OWASP's minimum for scrypt (Password Storage Cheat Sheet): r = 8 with N = 2^17
        and p = 1, or one of its equivalents trading memory for passes."""
        return self.r >= 8 and any(self.n >= n and self.p >= p for n, p in OWASP_FLOOR)


#: OWASP's minimum scrypt costs as (N, p) with r = 8, each as costly to guess as the others.
OWASP_FLOOR: Final = ((2**17, 1), (2**16, 2), (2**15, 3), (2**14, 5), (2**13, 10))

#: The cost of every new hash: OWASP's first choice, 128 MiB per hash. Measured on the 2-core
#: reference machine (``hashlib.scrypt``, median of 5): 2^17/8/1 0.37 s, 2^15/8/3 0.22 s, the former
#: 2^15/8/1 0.09 s. 2^17/8/1 costs 1.7 times the time of 2^15/8/3 but 4 times the memory, and memory
#: is what slows a guessing GPU or ASIC; a console login is rare enough to spend 0.37 s on.
#: Nothing in the node changes it: tests lower it (monkeypatch) to stay fast.
SCRYPT_COST: ScryptCost = ScryptCost(n=2**17, r=8, p=1)
#: scrypt's memory ceiling: twice what 2^17/8/1 needs. A stored hash that needs more does not verify.
_MAXMEM: Final = 256 * 1024 * 1024
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
    """``scrypt$N$r$p$salt$digest`` at the current cost (``SCRYPT_COST``)."""
    return _hash(password, SCRYPT_COST)


def _hash(password: str, cost: ScryptCost) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=_MAXMEM, dklen=32)
    encode = base64.b64encode
    return f"scrypt${cost.n}${cost.r}${cost.p}${encode(salt).decode()}${encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from, at the cost written in it."""
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


def _cost_of(stored: str) -> ScryptCost | None:
    """The cost a stored hash was made at, if it reads as one of ours."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(part.isascii() and part.isdigit() for part in parts[1:4]):
        return None
    return ScryptCost(int(parts[1]), int(parts[2]), int(parts[3]))


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
def _dummy_hash(cost: ScryptCost) -> str:
    """A fixed hash (at ``cost``) to compare against when the user does not exist, so both paths
    cost the same.

    Made by the first AccountStore rather than on import: the registry's face imports this module,
    and most processes that import the registry never check a password (a hash costs 0.37 s).
    """
    return _hash(secrets.token_hex(16), cost)


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
        _dummy_hash(SCRYPT_COST)  # made now, so that the first refusal of an unknown name costs what the others do
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
            check_password(password, _dummy_hash(SCRYPT_COST))
            raise LoginRefused(_REFUSED)
        if row.locked_until is not None and datetime.fromisoformat(row.locked_until) > now:
            # The same words as a wrong password: a lock must not tell that the name exists.
            check_password(password, _dummy_hash(SCRYPT_COST))
            raise LoginRefused(_REFUSED)
        if not row.enabled or not check_password(password, row.password_hash):
            with self.store.write() as connection:
                # Counted in the database, so parallel guesses cannot slip past the limit.
                lock_until = (now + self.lock_for).isoformat()
                stored_accounts.count_failed_login(connection, username, self.max_failures, lock_until)
            raise LoginRefused(_REFUSED)
        # A hash made at another cost than today's is made again now, while the password is at hand
        # (old hashes keep verifying until their account's next login). The new hash ends the
        # account's earlier sessions (SessionTokens), as a password change does.
        rehashed = hash_password(password) if _cost_of(row.password_hash) != SCRYPT_COST else None
        if row.failed_logins or row.locked_until or rehashed:
            with self.store.write() as connection:
                if row.failed_logins or row.locked_until:
                    stored_accounts.clear_failed_logins(connection, username)
                if rehashed is not None:
                    # Only over the hash just checked: a password set meanwhile stays.
                    stored_accounts.replace_password_hash(connection, username, row.password_hash, rehashed)
        return Account(row.username, Role(row.role), row.region, True)

    def _session_binding(self, username: str) -> tuple[Account, str] | None:
        """An enabled account and what its sessions are bound to: its stored password hash and,
        once it has signed out, its session generation."""
        with self.store.read() as connection:
            row = stored_accounts.find(connection, username)
        if row is None or not row.enabled:
            return None
        binding = row.password_hash + (f"\x00{row.session_generation}" if row.session_generation else "")
        return Account(row.username, Role(row.role), row.region, True), binding

    def end_sessions(self, username: str) -> None:
        """End every session of the account (sign-out): tokens issued before no longer validate."""
        with self.store.write() as connection:
            stored_accounts.end_sessions(connection, username)

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
    """Signed session tokens, and CSRF tokens bound to them (HMAC-SM3 under a master sub-key).

    A session token names its account and carries a MAC of the account's password hash as it was
    when the token was issued; a token validates only while the account is enabled and that hash is
    still the stored one, and while the account has not signed out since (its session generation,
    raised by ``AccountStore.end_sessions``). So a password change (``AccountStore.set_password``) or
    a sign-out ends every session issued before it, and so does the re-hash at a login after the
    scrypt cost was raised: once per account, at a login by someone who knows the password, whose
    own session is issued under the new hash. Disabling an account ends its sessions at once.
    """

    COOKIE_ATTRIBUTES: Final = {"httponly": True, "secure": True, "samesite": "strict", "path": "/"}

    def __init__(self, key: bytes, accounts: AccountStore, lifetime: timedelta = timedelta(hours=8)) -> None:
        self._key = key
        self.accounts = accounts
        self.clock = accounts.clock
        self.lifetime = lifetime

    def _mac(self, data: bytes) -> str:
        # Through cryptography, as every other SM3 of the node: hashlib's "sm3" exists only when the
        # OpenSSL that Python links was built with it.
        mac = crypto_hmac.HMAC(self._key, hashes.SM3())
        mac.update(data)
        return mac.finalize().hex()

    def _password_stamp(self, username: str, password_hash: str) -> str:
        """Ties a token to a password hash without showing any of it (the token body is readable)."""
        return self._mac(b"password:" + username.encode("utf-8") + b"\x00" + password_hash.encode("utf-8"))[:32]

    def issue(self, account: Account) -> str:
        """A session token for ``account`` (just authenticated); LoginRefused if it is gone or disabled."""
        binding = self.accounts._session_binding(account.username)
        if binding is None:
            raise LoginRefused(_REFUSED)
        payload = orjson.dumps(
            {
                "u": account.username,
                "exp": int((self.clock.now() + self.lifetime).timestamp()),
                "n": secrets.token_hex(8),
                "h": self._password_stamp(account.username, binding[1]),
            }
        )
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._mac(payload)}"

    def account(self, token: str) -> Account | None:
        """The account of a valid, unexpired token whose account is enabled and whose password is
        unchanged since the token was issued, else None."""
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
        if data["exp"] < self.clock.now().timestamp() or "h" not in data:
            return None
        binding = self.accounts._session_binding(str(data["u"]))
        if binding is None:
            return None
        account, password_hash = binding
        if not hmac.compare_digest(self._password_stamp(account.username, password_hash), str(data["h"])):
            return None
        return account

    def csrf_token(self, session: str) -> str:
        return self._mac(b"csrf:" + session.encode())

    def check_csrf(self, session: str, token: str) -> bool:
        return hmac.compare_digest(self.csrf_token(session).encode(), token.encode("utf-8", "replace"))
