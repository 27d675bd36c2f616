"""Apps: the callers a node knows, their secrets (encrypted at rest) and their grants."""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tzsb.clock import Clock
from tzsb.errors import ConfigurationError
from tzsb.protocol import APPID_PATTERN, BUSINESS_TYPES, NATIONAL, PURPOSES, Action, SignAlgorithm, is_region_code
from tzsb.registry.keys import MasterKey
from tzsb.store import Store
from tzsb.store import apps as stored_apps

DEFAULT_MAX_RECORDS = 1000
APP_LEVELS = ("county", "city", "province", "national", "external", "public")


def level_of_region(region: str) -> str:
    """The regulator level a region code implies: 100000 national, xx0000 province, xxxx00 city."""
    if region == NATIONAL:
        return "national"
    if region.endswith("0000"):
        return "province"
    if region.endswith("00"):
        return "city"
    return "county"


@dataclass(frozen=True, slots=True)
class AppSpec:
    """What an operator grants when creating an app."""

    appid: str
    region: str
    busicodes: frozenset[str]
    actions: frozenset[str]
    sign_algorithm: SignAlgorithm = SignAlgorithm.MD5
    name: str = ""
    max_records: int = DEFAULT_MAX_RECORDS
    #: Business types (4 digits) whose records this app may overwrite although another app supplied them.
    overrides: frozenset[str] = field(default_factory=frozenset)
    #: The caller's level; None: the regulator level its region implies (see ``level_of_region``).
    level: str | None = None
    #: Largest request body in bytes (7.3); None: the node's limit.
    max_bytes: int | None = None
    #: Requests per minute; 0: no limit.
    rate_per_minute: int = 0
    #: Client addresses or networks (CIDR) allowed; empty: any.
    ip_allow: tuple[str, ...] = ()
    #: Business types whose sensitive fields this app receives unmasked (never for purpose 31).
    unmasked: frozenset[str] = field(default_factory=frozenset)
    #: Every request must carry a signed ``timestamp`` within the replay window.
    require_timestamp: bool = False
    #: SHA-256 fingerprints (hex) of client certificates bound to this app (mutual TLS).
    cert_fingerprints: tuple[str, ...] = ()
    #: Reads every interaction-log entry within its region through the log interface, not only its own.
    log_auditor: bool = False
    #: How often it must report data (5.4), in seconds; None: as its level says.
    report_every_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class App:
    appid: str
    name: str
    region: str
    busicodes: frozenset[str]
    actions: frozenset[str]
    overrides: frozenset[str]
    sign_algorithm: SignAlgorithm
    max_records: int
    enabled: bool
    created_at: str
    level: str
    max_bytes: int | None
    rate_per_minute: int
    ip_allow: tuple[str, ...]
    unmasked: frozenset[str]
    require_timestamp: bool
    cert_fingerprints: tuple[str, ...]
    #: Secrets that verify now: the current one, then the previous one during a rotation's grace.
    secrets: tuple[str, ...] = field(repr=False)
    log_auditor: bool = False
    report_every_seconds: int | None = None

    @property
    def secret(self) -> str:
        return self.secrets[0]

    def describe(self) -> dict[str, object]:
        """Everything but the secrets, for `tzsb app show` and the console."""
        return {
            "appid": self.appid,
            "name": self.name,
            "region": self.region,
            "busicodes": sorted(self.busicodes),
            "actions": sorted(self.actions),
            "overrides": sorted(self.overrides),
            "sign": self.sign_algorithm.value,
            "max_records": self.max_records,
            "enabled": self.enabled,
            "created_at": self.created_at,
            "level": self.level,
            "max_bytes": self.max_bytes,
            "rate_per_minute": self.rate_per_minute,
            "ip_allow": list(self.ip_allow),
            "unmasked": sorted(self.unmasked),
            "require_timestamp": self.require_timestamp,
            "cert_fingerprints": list(self.cert_fingerprints),
            "log_auditor": self.log_auditor,
            "report_every_seconds": self.report_every_seconds,
            "secrets_in_force": len(self.secrets),
        }


def check_spec(spec: AppSpec) -> None:
    """Refuse grants that could never match a request; messages say which value is wrong."""
    if not APPID_PATTERN.fullmatch(spec.appid):
        raise ConfigurationError(f"appid {spec.appid!r} must be 1-64 characters of A-Z a-z 0-9 _ -")
    if not is_region_code(spec.region):
        raise ConfigurationError(f"region {spec.region!r} must be a 6-digit GB/T 2260 code (100000 = national)")
    for busicode in spec.busicodes:
        if len(busicode) != 6 or busicode[:2] not in PURPOSES or busicode[2:] not in BUSINESS_TYPES:
            raise ConfigurationError(
                f"busicode {busicode!r} is not purpose (table 6) + business type (table 7), e.g. 140101"
            )
    valid_actions = {action.value for action in Action}
    for action in spec.actions:
        if action not in valid_actions:
            raise ConfigurationError(f"action {action!r} must be one of 01 02 03 04")
    for business in spec.overrides:
        if business not in BUSINESS_TYPES:
            raise ConfigurationError(f"override {business!r} is not a business type of table 7")
    if not 1 <= spec.max_records <= 100_000:
        raise ConfigurationError("max records per request must be between 1 and 100000")
    if spec.report_every_seconds is not None and spec.report_every_seconds < 60:
        raise ConfigurationError("the reporting interval must be at least a minute")
    if spec.level is not None and spec.level not in APP_LEVELS:
        raise ConfigurationError(f"level {spec.level!r} must be one of {', '.join(APP_LEVELS)}")
    if spec.max_bytes is not None and spec.max_bytes < 1024:
        raise ConfigurationError("max bytes per request must be at least 1024")
    if spec.rate_per_minute < 0:
        raise ConfigurationError("rate per minute must be 0 (no limit) or more")
    for network in spec.ip_allow:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigurationError(f"ip allow-list entry {network!r} is not an address or CIDR network") from None
    for business in spec.unmasked:
        if business not in BUSINESS_TYPES:
            raise ConfigurationError(f"unmasked {business!r} is not a business type of table 7")
    for fingerprint in spec.cert_fingerprints:
        if len(fingerprint) != 64 or any(char not in "0123456789abcdef" for char in fingerprint):
            raise ConfigurationError(
                f"certificate fingerprint {fingerprint!r} must be 64 lower-case hex digits (SHA-256)"
            )


class AppRegistry:
    """Apps stored in the node's database, secrets sealed with the master key."""

    def __init__(self, store: Store, master_key: MasterKey, clock: Clock, cache_seconds: float = 0.0) -> None:
        self.store = store
        self.master_key = master_key
        self.clock = clock
        # Every request looks its app up; rows are kept this long (changes made through this
        # registry apply at once, changes from another process within cache_seconds).
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, tuple[stored_apps.StoredApp, App] | None]] = {}

    def create(self, spec: AppSpec) -> tuple[App, str]:
        """Register an app; returns it with its new secret, which is not retrievable later."""
        check_spec(spec)
        secret = secrets.token_hex(16)
        now = self.clock.now().isoformat()
        stored = stored_apps.StoredApp(
            appid=spec.appid,
            name=spec.name,
            secret_enc=self.master_key.encrypt(secret, spec.appid),
            previous_secret_enc=None,
            previous_valid_until=None,
            sign_algorithm=spec.sign_algorithm.value,
            busicodes=sorted(spec.busicodes),
            actions=sorted(spec.actions),
            overrides=sorted(spec.overrides),
            region=spec.region,
            max_records=spec.max_records,
            enabled=True,
            created_at=now,
            updated_at=now,
            level=spec.level or level_of_region(spec.region),
            max_bytes=spec.max_bytes,
            rate_per_minute=spec.rate_per_minute,
            ip_allow=list(spec.ip_allow),
            unmasked=sorted(spec.unmasked),
            require_timestamp=spec.require_timestamp,
            cert_fingerprints=list(spec.cert_fingerprints),
            log_auditor=spec.log_auditor,
            report_every_seconds=spec.report_every_seconds,
        )
        with self.store.write() as connection:
            if stored_apps.exists(connection, spec.appid):
                raise ConfigurationError(f"app {spec.appid} already exists")
            stored_apps.add(connection, stored)
        self._cache.pop(spec.appid, None)
        app = self.get(spec.appid)
        assert app is not None
        return app, secret

    def get(self, appid: str) -> App | None:
        cached = self._cache.get(appid) if self.cache_seconds else None
        if cached is not None and cached[0] > time.monotonic():
            found = cached[1]
            if found is None:
                return None
            row, app = found
            # Decrypting the secrets is the dear part: reuse the App unless a rotation grace ended.
            if not app.secrets[1:] or self.clock.now() < _grace_end(row):
                return app
            return self._to_app(row)
        with self.store.read() as connection:
            stored = stored_apps.find(connection, appid)
        entry = None if stored is None else (stored, self._to_app(stored))
        if self.cache_seconds:
            if len(self._cache) > 10_000:
                self._cache.clear()  # unknown appids must not grow the cache without bound
            self._cache[appid] = (time.monotonic() + self.cache_seconds, entry)
        return None if entry is None else entry[1]

    def list(self) -> list[App]:
        with self.store.read() as connection:
            rows = stored_apps.listing(connection)
        return [self._to_app(row) for row in rows]

    def set_enabled(self, appid: str, enabled: bool) -> App:
        self._cache.pop(appid, None)
        with self.store.write() as connection:
            if not stored_apps.set_enabled(connection, appid, enabled, self.clock.now().isoformat()):
                raise _no_app(appid)
        return self._require(appid)

    def set_scope(self, appid: str, region: str, unmasked: frozenset[str]) -> App:
        """Narrow or widen an app's region and the business types it receives unmasked (a console
        account's app follows its account's region and role)."""
        current = self._require(appid)
        check_spec(AppSpec(appid=appid, region=region, busicodes=frozenset(), actions=frozenset(), unmasked=unmasked))
        self._cache.pop(appid, None)
        with self.store.write() as connection:
            if not stored_apps.set_scope(connection, appid, region, sorted(unmasked), self.clock.now().isoformat()):
                raise _no_app(current.appid)
        return self._require(appid)

    def rotate_secret(self, appid: str, grace: timedelta = timedelta(0)) -> str:
        """Issue a new secret; the old one keeps verifying for ``grace``, then stops."""
        current = self._require(appid)
        secret = secrets.token_hex(16)
        sealed = self.master_key.encrypt(secret, appid)
        previous, valid_until = None, None
        if grace > timedelta(0):
            previous = self.master_key.encrypt(current.secret, appid)
            valid_until = (self.clock.now() + grace).isoformat()
        self._cache.pop(appid, None)
        with self.store.write() as connection:
            if not stored_apps.set_secrets(
                connection, appid, sealed, previous, valid_until, self.clock.now().isoformat()
            ):
                raise _no_app(appid)
        return secret

    def _require(self, appid: str) -> App:
        app = self.get(appid)
        if app is None:
            raise _no_app(appid)
        return app

    def _to_app(self, row: stored_apps.StoredApp) -> App:
        appid = str(row.appid)
        in_force = [self.master_key.decrypt(row.secret_enc, appid)]
        previous = row.previous_secret_enc
        if previous is not None and self.clock.now() < _grace_end(row):
            in_force.append(self.master_key.decrypt(previous, appid))
        return App(
            appid=appid,
            name=str(row.name),
            region=str(row.region),
            busicodes=_frozen(row.busicodes),
            actions=_frozen(row.actions),
            overrides=_frozen(row.overrides),
            sign_algorithm=SignAlgorithm(row.sign_algorithm),
            max_records=int(row.max_records),
            enabled=bool(row.enabled),
            created_at=str(row.created_at),
            level=str(row.level),
            max_bytes=None if row.max_bytes is None else int(row.max_bytes),
            rate_per_minute=int(row.rate_per_minute),
            ip_allow=tuple(str(item) for item in row.ip_allow),
            unmasked=_frozen(row.unmasked),
            require_timestamp=bool(row.require_timestamp),
            cert_fingerprints=tuple(str(item) for item in row.cert_fingerprints),
            log_auditor=bool(row.log_auditor),
            report_every_seconds=row.report_every_seconds,
            secrets=tuple(in_force),
        )


def _frozen(value: object) -> frozenset[str]:
    return frozenset(str(item) for item in value) if isinstance(value, Iterable) else frozenset()


def _no_app(appid: str) -> ConfigurationError:
    return ConfigurationError(f"no app {appid}; `tzsb app list` shows the registered ones")


def _grace_end(row: stored_apps.StoredApp) -> datetime:
    """When the previous secret of a rotation stops verifying (the epoch when there is none)."""
    until = row.previous_valid_until
    return datetime.fromisoformat(str(until)) if until is not None else datetime.min.replace(tzinfo=UTC)
