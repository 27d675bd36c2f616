"""Providers this node routes requests to (5.2.2): a business type's actions served by another node.

A request whose business type and action have an enabled service is routed to it instead of being
served from the local store (``exchange.RoutedExecution``). Secrets are sealed under the master key,
bound to the service's name; the routes are kept in memory for a second, as the apps are.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from tzsb.clock import Clock
from tzsb.errors import ConfigurationError, SecretFormatError
from tzsb.protocol import PURPOSES, Action, SignAlgorithm, sm4_key
from tzsb.registry.keys import MasterKey
from tzsb.store import Store
from tzsb.store import services as stored_services

_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: How long the routes are kept in memory before the store is read again.
ROUTES_TTL_SECONDS: Final = 1.0


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    businesses: tuple[str, ...]
    url: str
    appid: str
    secret: str = field(repr=False)
    actions: tuple[str, ...] = ("04",)
    sign_algorithm: SignAlgorithm = SignAlgorithm.MD5
    upstream_purpose: str | None = None
    timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    businesses: tuple[str, ...]
    actions: tuple[str, ...]
    url: str
    appid: str
    secret: str = field(repr=False)
    sign_algorithm: SignAlgorithm
    upstream_purpose: str | None
    timeout_seconds: float
    enabled: bool
    breaker_state: str
    breaker_changed_at: str | None
    last_error: str | None
    created_at: str

    def public(self) -> dict[str, Any]:
        """Everything but the secret, for `tzsb service show`."""
        return {
            "name": self.name, "businesses": list(self.businesses), "actions": list(self.actions), "url": self.url,
            "appid": self.appid, "sign_algorithm": self.sign_algorithm.value,
            "upstream_purpose": self.upstream_purpose, "timeout_seconds": self.timeout_seconds,
            "enabled": self.enabled, "breaker_state": self.breaker_state,
            "breaker_changed_at": self.breaker_changed_at, "last_error": self.last_error, "created_at": self.created_at,
        }  # fmt: skip


def _checked(spec: ServiceSpec, catalog_codes: frozenset[str]) -> ServiceSpec:
    if not _NAME.fullmatch(spec.name):
        raise ConfigurationError(f"service name {spec.name!r}: 1-64 letters, digits, '_', '.' or '-'")
    if not spec.businesses:
        raise ConfigurationError("a service serves at least one business type (--business)")
    unknown = [code for code in spec.businesses if code not in catalog_codes]
    if unknown:
        raise ConfigurationError(f"business type(s) {', '.join(unknown)} are not in this node's catalog")
    actions = tuple(dict.fromkeys(spec.actions))
    valid = {action.value for action in Action}
    if not actions or any(action not in valid for action in actions):
        raise ConfigurationError(f"--action: one or more of {', '.join(sorted(valid))}")
    parts = urlsplit(spec.url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.path.strip("/"):
        raise ConfigurationError(f"--url {spec.url!r}: the provider's http(s)://host:port/<service>/<interFlag>")
    if not spec.appid or len(spec.appid) > 64:
        raise ConfigurationError("--appid: the app the provider registered for this node (1-64 characters)")
    if not spec.secret:
        raise ConfigurationError("the provider's secret for that app is missing")
    if spec.sign_algorithm is SignAlgorithm.SM4:
        try:
            sm4_key(spec.secret)
        except SecretFormatError as exc:
            raise ConfigurationError(str(exc)) from None
    if spec.upstream_purpose is not None and spec.upstream_purpose not in PURPOSES:
        raise ConfigurationError(f"--upstream-purpose {spec.upstream_purpose!r}: one of {', '.join(sorted(PURPOSES))}")
    if not 0 < spec.timeout_seconds <= 300:
        raise ConfigurationError("--timeout: more than 0 and at most 300 seconds")
    return ServiceSpec(
        spec.name, tuple(dict.fromkeys(spec.businesses)), spec.url, spec.appid, spec.secret, actions,
        spec.sign_algorithm, spec.upstream_purpose, spec.timeout_seconds,
    )  # fmt: skip


class ServiceRegistry:
    """The node's services: kept in the store, secrets sealed under the master key."""

    def __init__(self, store: Store, master_key: MasterKey, clock: Clock, catalog_codes: frozenset[str]) -> None:
        self.store = store
        self.master_key = master_key
        self.clock = clock
        self.catalog_codes = catalog_codes
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], Service] = {}
        self._routes_read_at = float("-inf")

    def add(self, spec: ServiceSpec) -> Service:
        checked = _checked(spec, self.catalog_codes)
        now = self.clock.now().isoformat(timespec="seconds")
        row = stored_services.StoredService(
            name=checked.name,
            businesses=list(checked.businesses),
            actions=list(checked.actions),
            url=checked.url,
            appid=checked.appid,
            secret_enc=self.master_key.encrypt(checked.secret, _sealing_context(checked.name)),
            sign_algorithm=checked.sign_algorithm.value,
            upstream_purpose=checked.upstream_purpose,
            timeout_seconds=checked.timeout_seconds,
            enabled=True,
            breaker_state="closed",
            breaker_changed_at=None,
            last_error=None,
            created_at=now,
            updated_at=now,
        )
        with self.store.write() as connection:
            if stored_services.exists(connection, checked.name):
                raise ConfigurationError(f"a service named {checked.name} exists; remove it first or pick another name")
            self._refuse_overlap(connection, checked.name, checked.businesses, checked.actions)
            stored_services.add(connection, row)
        self._forget_routes()
        return self._service(row)

    def _refuse_overlap(
        self, connection: Any, name: str, businesses: tuple[str, ...], actions: tuple[str, ...]
    ) -> None:
        for other in stored_services.listing(connection):
            if other.name == name or not other.enabled:
                continue
            shared = [f"{b}/{a}" for b in businesses for a in actions if b in other.businesses and a in other.actions]
            if shared:
                raise ConfigurationError(
                    f"{', '.join(shared)} already routed to service {other.name}; disable or remove it first"
                )

    def get(self, name: str) -> Service | None:
        with self.store.read() as connection:
            row = stored_services.find(connection, name)
        return None if row is None else self._service(row)

    def require(self, name: str) -> Service:
        service = self.get(name)
        if service is None:
            raise ConfigurationError(f"no service named {name}; `tzsb service list` shows the services of this node")
        return service

    def list(self) -> list[Service]:
        with self.store.read() as connection:
            rows = stored_services.listing(connection)
        return [self._service(row) for row in rows]

    def set_enabled(self, name: str, enabled: bool) -> Service:
        service = self.require(name)
        with self.store.write() as connection:
            if enabled:
                self._refuse_overlap(connection, name, service.businesses, service.actions)
            stored_services.update(
                connection, name, enabled=enabled, updated_at=self.clock.now().isoformat(timespec="seconds")
            )
        self._forget_routes()
        return self.require(name)

    def remove(self, name: str) -> None:
        with self.store.write() as connection:
            if not stored_services.remove(connection, name):
                raise ConfigurationError(
                    f"no service named {name}; `tzsb service list` shows the services of this node"
                )
        self._forget_routes()

    def note_breaker(self, name: str, state: str, error: str | None) -> None:
        """Keep the circuit breaker's new state (and the failure that changed it) for `tzsb service show`."""
        now = self.clock.now().isoformat(timespec="seconds")
        with self.store.write() as connection:
            values: dict[str, Any] = {"breaker_state": state, "breaker_changed_at": now}
            if error is not None:
                values["last_error"] = error[:2000]
            stored_services.update(connection, name, **values)

    def route(self, business: str, action: str) -> Service | None:
        """The enabled service that serves ``business`` / ``action``, if any (read at most once a second)."""
        now = time.monotonic()
        if now - self._routes_read_at > ROUTES_TTL_SECONDS:
            with self.store.read() as connection:
                rows = stored_services.listing(connection)
            routes = {
                (business_code, action_code): self._service(row)
                for row in rows
                if row.enabled
                for business_code in row.businesses
                for action_code in row.actions
            }
            with self._lock:
                self._routes, self._routes_read_at = routes, now
        return self._routes.get((business, action))

    def _forget_routes(self) -> None:
        with self._lock:
            self._routes_read_at = float("-inf")

    def _service(self, row: stored_services.StoredService) -> Service:
        return Service(
            name=row.name,
            businesses=tuple(row.businesses),
            actions=tuple(row.actions),
            url=row.url,
            appid=row.appid,
            secret=self.master_key.decrypt(row.secret_enc, _sealing_context(row.name)),
            sign_algorithm=SignAlgorithm(row.sign_algorithm),
            upstream_purpose=row.upstream_purpose,
            timeout_seconds=row.timeout_seconds,
            enabled=row.enabled,
            breaker_state=row.breaker_state,
            breaker_changed_at=row.breaker_changed_at,
            last_error=row.last_error,
            created_at=row.created_at,
        )


def _sealing_context(name: str) -> str:
    """What a service's sealed secret is bound to: it cannot be moved to another service's row."""
    return f"service/{name}"
