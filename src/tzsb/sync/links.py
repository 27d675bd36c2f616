"""Links to the parent node: what an operator sets up with ``tzsb link add``, checked against the
spec before it is kept.

A link names the parent's interface, the app the parent issued to this node (its secret sealed
under the master key like an app's), the direction (``up``: this node's changes go to the parent;
``down``: the parent's records for this node's region are pulled here), the business types that
flow, the purpose code, the schedule and the volume limits of one exchange (7.3).
"""

from __future__ import annotations

import re
import secrets
import ssl
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from tzsb.clock import Clock
from tzsb.errors import ConfigurationError, ExchangeError
from tzsb.protocol import APPID_PATTERN, BUSINESS_TYPES, NATIONAL, PURPOSES, Action, SignAlgorithm, is_region_code
from tzsb.registry import DirectionPolicy, MasterKey, Party
from tzsb.store import Store
from tzsb.store import links as stored_links

DIRECTIONS: Final = ("up", "down")
#: Regulator levels, lowest first: a node's parent is the next one up.
_CHAIN: Final = ("county", "city", "province", "national")
_EVERY: Final = re.compile(r"([1-9][0-9]{0,6})([smhd])")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
#: Prefix of the identity pulled records are written under (never an appid: appids hold no colon).
IDENTITY_PREFIX: Final = "link:"
DEFAULT_MAX_RECORDS: Final = 1000
DEFAULT_TIMEOUT_SECONDS: Final = 60.0


def parse_every(text: str) -> int:
    """``30s``, ``10m``, ``6h``, ``1d``, ``2d`` … as seconds."""
    match = _EVERY.fullmatch(text.strip())
    if match is None:
        raise ConfigurationError(f"--every {text!r}: give a number and a unit s, m, h or d, such as 30s, 6h, 1d or 2d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def describe_every(seconds: int) -> str:
    """Seconds written back the way ``--every`` takes them (the largest whole unit)."""
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def parent_of(level: str, region: str) -> Party:
    """The regulator one level up from a node (spec 4.3.6: 逐级上报), with its region code."""
    if level not in _CHAIN or level == "national":
        raise ConfigurationError(
            f"a {level} node has no parent to link to: links go from a county, city or province node to the level above"
        )
    parent_level = _CHAIN[_CHAIN.index(level) + 1]
    if parent_level == "national":
        return Party("national", NATIONAL)
    if parent_level == "province":
        return Party("province", region[:2] + "0000")
    return Party("city", region[:4] + "00")


def default_purpose(level: str, direction: str) -> str:
    """Table 6 for a link between a node and its parent: 14 below the province, 12 province →
    national, 13 national → province."""
    if level == "province":
        return "12" if direction == "up" else "13"
    return "14"


def default_every_seconds(level: str) -> int:
    """5.4: counties and cities report at least daily, provinces at least every two days."""
    return 2 * 86400 if level == "province" else 86400


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """What an operator gives ``tzsb link add``."""

    name: str
    url: str
    appid: str
    secret: str
    direction: str
    businesses: tuple[str, ...]
    sign_algorithm: SignAlgorithm = SignAlgorithm.MD5
    purpose: str | None = None
    every_seconds: int | None = None
    max_records: int = DEFAULT_MAX_RECORDS
    max_bytes: int | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    #: PEM CA bundle trusted for the parent's certificate instead of the system's.
    ca_file: str | None = None
    #: This node's client certificate and key (PEM), for a parent that demands one.
    client_cert: str | None = None
    client_key: str | None = None
    send_timestamp: bool = False


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    url: str
    appid: str
    sign_algorithm: SignAlgorithm
    direction: str
    businesses: tuple[str, ...]
    purpose: str
    every_seconds: int
    max_records: int
    max_bytes: int | None
    timeout_seconds: float
    ca_file: str | None
    client_cert: str | None
    client_key: str | None
    send_timestamp: bool
    enabled: bool
    uid: str
    generation: int
    state: str
    failures: int
    wait_until: str | None
    last_attempt_at: str | None
    last_success_at: str | None
    last_error: str | None
    created_at: str
    secret: str = ""

    @property
    def identity(self) -> str:
        """Who records pulled over this link are written by (their source and last writer)."""
        return IDENTITY_PREFIX + self.name

    def busicode(self, business: str) -> str:
        return self.purpose + business

    def describe(self) -> dict[str, object]:
        """Everything but the secret, for ``tzsb link show`` and the console."""
        return {
            "name": self.name,
            "url": self.url,
            "appid": self.appid,
            "sign": self.sign_algorithm.value,
            "direction": self.direction,
            "businesses": list(self.businesses),
            "purpose": self.purpose,
            "every": describe_every(self.every_seconds),
            "max_records": self.max_records,
            "max_bytes": self.max_bytes,
            "timeout_seconds": self.timeout_seconds,
            "ca_file": self.ca_file,
            "client_cert": self.client_cert,
            "client_key": self.client_key,
            "send_timestamp": self.send_timestamp,
            "enabled": self.enabled,
            "state": self.state,
            "failures": self.failures,
            "wait_until": self.wait_until,
            "last_attempt_at": self.last_attempt_at,
            "last_success_at": self.last_success_at,
            "last_error": self.last_error,
            "created_at": self.created_at,
        }


def check_spec(spec: LinkSpec, node: Party, directions: DirectionPolicy) -> LinkSpec:
    """The spec with its defaults filled in, or ``ConfigurationError`` saying what is wrong."""
    if not _NAME.fullmatch(spec.name):
        raise ConfigurationError(f"link name {spec.name!r}: letters, digits, - and _ (up to 64), starting with one")
    address = urlsplit(spec.url)
    if address.scheme not in ("http", "https") or not address.hostname:
        raise ConfigurationError(
            f"--url {spec.url!r}: give the parent's interface, such as https://city.example/tzsb/exchange"
        )
    if address.username or address.password:
        raise ConfigurationError("--url must not hold a user name or password; the app's secret signs every request")
    if not APPID_PATTERN.fullmatch(spec.appid):
        raise ConfigurationError(f"--appid {spec.appid!r}: letters, digits, - and _ (up to 64)")
    if not spec.secret:
        raise ConfigurationError("--secret: give the secret the parent issued with the app")
    if spec.direction not in DIRECTIONS:
        raise ConfigurationError(f"--direction {spec.direction!r}: up (send this node's changes) or down (pull)")
    if not spec.businesses:
        raise ConfigurationError("give at least one --business (4 digits of table 7, e.g. 0101)")
    unknown = [code for code in spec.businesses if code not in BUSINESS_TYPES]
    if unknown:
        raise ConfigurationError(f"--business {', '.join(unknown)}: not a business type of table 7")
    if not 1 <= spec.max_records <= 100_000:
        raise ConfigurationError("--max-records must be between 1 and 100000")
    if spec.max_bytes is not None and spec.max_bytes < 1024:
        raise ConfigurationError("--max-bytes must be at least 1024")
    if not 0 < spec.timeout_seconds <= 3600:
        raise ConfigurationError("--timeout must be between 0 and 3600 seconds")
    if (spec.client_cert is None) != (spec.client_key is None):
        raise ConfigurationError("--client-cert and --client-key go together")
    if spec.ca_file is not None or spec.client_cert is not None:
        if address.scheme != "https":
            raise ConfigurationError("--ca-file, --client-cert and --client-key need an https:// --url")
        try:
            tls_context(spec.ca_file, spec.client_cert, spec.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"the link's TLS files cannot be used: {exc}") from None
    if not is_region_code(node.region):
        raise ConfigurationError(f"this node's region {node.region!r} is not a GB/T 2260 code")
    parent = parent_of(node.level, node.region)
    purpose = spec.purpose or default_purpose(node.level, spec.direction)
    if purpose not in PURPOSES:
        raise ConfigurationError(f"--purpose {purpose}: not a purpose code of table 6 ({', '.join(PURPOSES)})")
    every = spec.every_seconds or default_every_seconds(node.level)
    # The parent judges each request as a caller of this node's level and region sending (up) or
    # asking (down); the same matrix refuses here what the parent would refuse there.
    parent_policy = DirectionPolicy(parent, directions.matrix)
    action = Action.ADD if spec.direction == "up" else Action.QUERY
    for business in spec.businesses:
        try:
            parent_policy.check(purpose, business, action, node)
        except ExchangeError as refusal:
            raise ConfigurationError(
                f"{spec.direction} link for {business} with purpose {purpose} ({node.level} {node.region} → "
                f"{parent.level} {parent.region}): {refusal.message}"
            ) from None
    return replace(spec, purpose=purpose, every_seconds=every, businesses=tuple(dict.fromkeys(spec.businesses)))


class LinkRegistry:
    """The node's links: kept in the store, secrets sealed under the master key."""

    def __init__(
        self, store: Store, master_key: MasterKey, clock: Clock, node: Party, directions: DirectionPolicy
    ) -> None:
        self.store = store
        self.master_key = master_key
        self.clock = clock
        self.node = node
        self.directions = directions

    def add(self, spec: LinkSpec) -> Link:
        checked = check_spec(spec, self.node, self.directions)
        now = self.clock.now().isoformat(timespec="seconds")
        if checked.purpose is None or checked.every_seconds is None:  # pragma: no cover - check_spec fills both
            raise ConfigurationError("a link needs a purpose and a schedule")
        row = stored_links.StoredLink(
            name=checked.name,
            url=checked.url,
            appid=checked.appid,
            secret_enc=self.master_key.encrypt(checked.secret, _sealing_context(checked.name)),
            sign_algorithm=checked.sign_algorithm.value,
            direction=checked.direction,
            businesses=list(checked.businesses),
            purpose=checked.purpose,
            every_seconds=checked.every_seconds,
            max_records=checked.max_records,
            max_bytes=checked.max_bytes,
            timeout_seconds=checked.timeout_seconds,
            ca_file=_absolute(checked.ca_file),
            client_cert=_absolute(checked.client_cert),
            client_key=_absolute(checked.client_key),
            send_timestamp=checked.send_timestamp,
            enabled=True,
            uid=secrets.token_hex(16),
            generation=0,
            state="idle",
            failures=0,
            wait_until=None,
            last_attempt_at=None,
            last_success_at=None,
            last_error=None,
            created_at=now,
            updated_at=now,
        )
        with self.store.write() as connection:
            if stored_links.exists(connection, checked.name):
                raise ConfigurationError(f"a link named {checked.name} exists; remove it first or pick another name")
            stored_links.add(connection, row)
        return self._link(row)

    def get(self, name: str) -> Link | None:
        with self.store.read() as connection:
            row = stored_links.find(connection, name)
        return None if row is None else self._link(row)

    def require(self, name: str) -> Link:
        link = self.get(name)
        if link is None:
            raise ConfigurationError(f"no link named {name}; `tzsb link list` shows the links of this node")
        return link

    def list(self) -> list[Link]:
        with self.store.read() as connection:
            rows = stored_links.listing(connection)
        return [self._link(row) for row in rows]

    def set_enabled(self, name: str, enabled: bool) -> Link:
        self._update(name, enabled=enabled)
        return self.require(name)

    def remove(self, name: str) -> None:
        with self.store.write() as connection:
            if not stored_links.remove(connection, name):
                raise ConfigurationError(f"no link named {name}; `tzsb link list` shows the links of this node")

    def _update(self, name: str, **values: object) -> None:
        with self.store.write() as connection:
            if not stored_links.update(
                connection, name, updated_at=self.clock.now().isoformat(timespec="seconds"), **values
            ):
                raise ConfigurationError(f"no link named {name}; `tzsb link list` shows the links of this node")

    def _link(self, row: stored_links.StoredLink) -> Link:
        return Link(
            name=row.name,
            url=row.url,
            appid=row.appid,
            sign_algorithm=SignAlgorithm(row.sign_algorithm),
            direction=row.direction,
            businesses=tuple(row.businesses),
            purpose=row.purpose,
            every_seconds=row.every_seconds,
            max_records=row.max_records,
            max_bytes=row.max_bytes,
            timeout_seconds=row.timeout_seconds,
            ca_file=row.ca_file,
            client_cert=row.client_cert,
            client_key=row.client_key,
            send_timestamp=row.send_timestamp,
            enabled=row.enabled,
            uid=row.uid,
            generation=row.generation,
            state=row.state,
            failures=row.failures,
            wait_until=row.wait_until,
            last_attempt_at=row.last_attempt_at,
            last_success_at=row.last_success_at,
            last_error=row.last_error,
            created_at=row.created_at,
            secret=self.master_key.decrypt(row.secret_enc, _sealing_context(row.name)),
        )


def tls_context(ca_file: str | None, client_cert: str | None, client_key: str | None) -> ssl.SSLContext:
    """The TLS context of a link: the system's trust store or ``ca_file``, and the client certificate."""
    context = ssl.create_default_context(cafile=ca_file)
    if client_cert is not None and client_key is not None:
        context.load_cert_chain(client_cert, client_key)
    return context


def _absolute(path: str | None) -> str | None:
    """A path as the schedule in ``tzsb serve`` (another working directory) finds it too."""
    return None if path is None else str(Path(path).resolve())


def _sealing_context(name: str) -> str:
    """What a link's sealed secret is bound to: it cannot be moved to another link's row."""
    return f"link/{name}"


def due(link: Link, now: datetime) -> bool:
    """Whether the schedule should run ``link`` at ``now``: enabled, not waiting after failures
    (7.4), and its interval passed since its last attempt."""
    if not link.enabled:
        return False
    if link.wait_until is not None:
        # A failed link runs again when its wait is over (or ``tzsb sync retry`` ends it).
        return now >= datetime.fromisoformat(link.wait_until)
    if link.last_attempt_at is None:
        return True
    return now >= datetime.fromisoformat(link.last_attempt_at) + timedelta(seconds=link.every_seconds)
