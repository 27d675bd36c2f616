"""Every setting of a node, with its default and help; the only reader of the environment.

Precedence: environment (``TZSB_*``) > ``<home>/tzsb.toml`` > default.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import tempfile
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

import tomli_w

from tzsb.errors import ConfigurationError

CONFIG_FILE: Final = "tzsb.toml"
MASTER_KEY_FILE: Final = "master.key"
LEVELS: Final = ("county", "city", "province", "national", "external", "public")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
LOG_FORMATS: Final = ("text", "json")


class Secret(str):
    """A string whose repr is masked, so it never reaches a log or a traceback."""

    def __repr__(self) -> str:
        return "Secret('**********')"


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path = _setting(Path("."), "Folder holding tzsb.toml, master.key, tzsb.db and catalog overrides.")
    level: str = _setting("province", "This node's level: county, city, province, national, external, public.")
    region: str = _setting("100000", "This node's GB/T 2260 region code (100000 = national).")
    database_url: Secret = _setting(
        Secret(""), "SQLAlchemy URL; empty means SQLite at <home>/tzsb.db. A secret: never shown in a repr or a log."
    )
    service_path: str = _setting("/tzsb/exchange", "The /<service>/<interFlag> path the interface is served at.")
    host: str = _setting("127.0.0.1", "Address `tzsb serve` listens on.")
    port: int = _setting(8080, "Port `tzsb serve` listens on.")
    workers: int = _setting(
        1, "Server processes of `tzsb serve` (more than one share rate limits through the database)."
    )
    max_body_bytes: int = _setting(16 * 1024 * 1024, "Hard limit of a request body; larger bodies get HTTP 413.")
    max_header_bytes: int = _setting(
        16 * 1024,
        "Hard limit of a request's header section (request line and headers); larger get HTTP 431 and the "
        "connection is closed. 16 KiB: the signed request travels in the body, so a caller needs a few hundred "
        "bytes of headers; it is the default of Node.js and of uvicorn's h11 server.",
    )
    log_level: str = _setting("info", "Lowest level of the node's log lines on stderr: debug, info, warning, error.")
    log_format: str = _setting(
        "text", "Log lines as text (a timestamped line each) or json (one object per line, for log collectors)."
    )
    header_timeout_seconds: float = _setting(
        10.0,
        "Seconds a client has to send a request's whole header section, from its first byte (or the connection's "
        "start); past it the connection is answered 408 and closed. Bounds what slow senders (slowloris) hold.",
    )
    body_timeout_seconds: float = _setting(
        30.0,
        "Seconds a request body may pause between two reads (as nginx's client_body_timeout); past it the "
        "connection is closed and the request is not handled.",
    )
    limit_concurrency: int = _setting(
        1000,
        "Connections and requests `tzsb serve` holds at once (per worker process); past it new requests get 503 "
        "at once. Keep it under the open-files limit (ulimit -n). 0 = no cap.",
    )
    trusted_proxies: tuple[str, ...] = _setting(
        (),
        "Networks (CIDR) of reverse proxies in front of the node: from these peers only, the client address is "
        "the right-most X-Forwarded-For entry that is not itself a trusted proxy. Empty: always the TCP peer. "
        "Comma-separated in TZSB_TRUSTED_PROXIES.",
    )
    health_details_from: tuple[str, ...] = _setting(
        ("127.0.0.0/8", "::1/128"),
        "Networks (CIDR) whose callers see /healthz in full (version, level, region, business types); "
        "everyone else sees only the status. Comma-separated in TZSB_HEALTH_DETAILS_FROM.",
    )
    metrics_from: tuple[str, ...] = _setting(
        ("127.0.0.0/8", "::1/128"),
        "Networks (CIDR) that may read /metrics (Prometheus); others get 403. Comma-separated in TZSB_METRICS_FROM.",
    )
    alert_error_rate: float = _setting(
        0.0, "Alert when this share (0-1) of the requests of the last alert_window_seconds were refused (0 = off)."
    )
    alert_p99_ms: float = _setting(
        0.0, "Alert when the 99th percentile of request durations in the window exceeds this many ms (0 = off)."
    )
    alert_window_seconds: int = _setting(300, "The window of requests the error-rate and latency alerts judge.")
    alert_overdue_reporters: bool = _setting(True, "Alert for each app overdue to report (5.4, tzsb monitor status).")
    alert_failed_links: bool = _setting(True, "Alert for each sync link marked failed (7.4).")
    alert_broken_chain: bool = _setting(
        True, "Alert when the interaction log's hash chain does not verify (checked as entries are added)."
    )
    alert_webhook: str = _setting("", "URL that receives each alert event as a JSON POST (empty = the log only).")
    alert_check_seconds: float = _setting(60.0, "How often (seconds) `tzsb serve` evaluates the alerts.")
    route_failures_to_pause: int = _setting(
        5, "A provider (tzsb service) that fails this many times in a row is not asked for route_pause_seconds."
    )
    route_pause_seconds: float = _setting(
        30.0, "How long (seconds) a failing provider is not asked before one request probes it again."
    )
    page_size: int = _setting(100, "Records per query page when _page_size is not given.")
    max_page_size: int = _setting(1000, "Largest _page_size a query may ask for.")
    inline_requests: bool = _setting(
        True,
        "On SQLite, answer interface requests of up to inline_max_bytes on the event loop's thread (writes go on "
        "in a worker thread; a routed request awaits its provider on the loop): fewer thread switches, about a "
        "third more key queries per second. Off: every request in a worker thread.",
    )
    inline_max_bytes: int = _setting(
        16 * 1024, "Largest body (bytes) answered on the event loop's thread when inline_requests is on."
    )
    read_ahead_pages: int = _setting(
        0,
        "Next pages of paged queries read ahead and kept (0 = no read-ahead: measured to gain nothing on SQLite or "
        "a local PostgreSQL, docs/performance.md).",
    )
    rules_check_seconds: float = _setting(1.0, "How often (seconds) <home>/rules.json is checked for changes.")
    app_cache_seconds: float = _setting(1.0, "Seconds an app's row is cached between requests (0 = always read).")
    timestamp_window: int = _setting(300, "Seconds a signed timestamp may differ from the node's clock.")
    unidentified_refusals_per_minute: int = _setting(
        60,
        "Refusals of callers that never proved who they are (bad body, unknown app, locked out, …) one client "
        "address may have per minute; past it, its requests are refused at once until the minute ends. Such "
        "refusals are counted per address and minute (refusal_tallies), not logged one by one.",
    )
    answer_ttl_seconds: int = _setting(
        24 * 3600,
        "Seconds a request's first answer is kept for retries of the same request; after that its random stays "
        "spent and a replay gets E_REPLAY.",
    )
    answer_quota_bytes: int = _setting(
        64 * 1024 * 1024, "Bytes of first answers kept per app; beyond it the app's oldest answers are dropped."
    )
    collision_lockout_keys: int = _setting(
        10,
        "Keys held by records an app may not access (another region, or another source of a type it sees "
        "masked) that its adds may name within 24 hours before the app is locked out for 24 hours.",
    )
    sync_schedule: bool = _setting(
        True, "Run the sync links' schedule inside `tzsb serve` (one process of several runs each link)."
    )
    sync_tick_seconds: float = _setting(15.0, "How often (seconds) the schedule looks for links that are due.")
    sync_attempts: int = _setting(3, "Consecutive failed attempts after which a link is marked failed and waits (7.4).")
    sync_backoff_seconds: float = _setting(
        30.0, "Wait (seconds) before a link's second attempt after a failure; doubled before each further one."
    )
    sync_failure_wait_seconds: int = _setting(
        24 * 3600, "How long (seconds) a failed link waits before it is tried again (7.4), unless `tzsb sync retry`."
    )
    sync_lease_seconds: float = _setting(
        300.0,
        "A link's lease: if its holder stops renewing it (dies) for this long, another process takes the link over.",
    )
    master_key: Secret | None = _setting(None, "32 hex digits; overrides <home>/master.key (env TZSB_MASTER_KEY).")

    @property
    def database(self) -> str:
        return str(self.database_url) or f"sqlite:///{(self.home / 'tzsb.db').resolve()}"

    @property
    def log_path(self) -> str:
        """The log interface (6.3.1 d): ``/<service>/log`` beside ``/<service>/<interFlag>``."""
        service = self.service_path.rstrip("/").rsplit("/", 1)[0]
        return f"{service}/log"

    @property
    def master_key_path(self) -> Path:
        return self.home / MASTER_KEY_FILE

    @property
    def catalog_dir(self) -> Path:
        return self.home / "catalog"

    def documented(self) -> dict[str, str]:
        return {item.name: str(item.metadata["help"]) for item in fields(self)}


_NETWORKS: Final = ("trusted_proxies", "health_details_from", "metrics_from")


def _networks(name: str, value: Any) -> tuple[str, ...]:
    """A list of networks from TOML (an array, or one comma-separated string) or the environment."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigurationError(f"setting {name} must be a list of networks (CIDR), got {value!r}")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _check_networks(name: str, networks: tuple[str, ...]) -> None:
    for network in networks:
        try:
            # strict: "10.0.0.5/8" is refused rather than silently widened to 10.0.0.0/8.
            ipaddress.ip_network(network, strict=True)
        except ValueError as exc:
            raise ConfigurationError(f"setting {name}: {network!r} is not a network (CIDR): {exc}") from None


@functools.cache
def _setting_types() -> dict[str, Any]:
    """Each setting's type, from the annotations of ``Settings`` (``X | None`` read as ``X``)."""
    hints = typing.get_type_hints(Settings)
    resolved: dict[str, Any] = {}
    for name, hint in hints.items():
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        resolved[name] = hint
    return resolved


_KIND_NAMES: Final = {int: "an integer", float: "a number", bool: "true or false"}


def _coerce(name: str, value: Any) -> Any:
    """``value`` (from TOML, or a string from the environment) as the type ``Settings`` declares for ``name``."""
    kind = _setting_types()[name]
    if name in _NETWORKS:
        return _networks(name, value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
    elif kind in (int, float):
        # TOML booleans are ints to Python, and a float is not an integer: refuse both rather than guess.
        if not isinstance(value, bool) and not (kind is int and isinstance(value, float)):
            try:
                return kind(value)
            except (TypeError, ValueError):
                pass
    elif kind in (str, Secret, Path):
        if isinstance(value, str):
            return kind(value)
    else:  # pragma: no cover - a new kind of setting must be taught here
        raise ConfigurationError(f"setting {name} has a type the settings reader does not know: {kind!r}")
    expected = _KIND_NAMES.get(kind, "a string")
    shown = "**********" if kind is Secret else repr(value)
    raise ConfigurationError(f"setting {name} must be {expected}, got {shown}")


def _override(name: str, value: Any) -> Any:
    """A value given in code (the CLI's options): networks parsed, secrets wrapped, the rest as given."""
    if name in _NETWORKS:
        return _networks(name, value)
    if _setting_types().get(name) is Secret and isinstance(value, str):
        return Secret(value)
    return value


def load_settings(home: Path | None = None, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings for the node in ``home`` (or ``TZSB_HOME``); ``overrides`` win over everything."""
    env = dict(os.environ if environ is None else environ)
    home = Path(home if home is not None else env.get("TZSB_HOME", ".")).expanduser()
    values: dict[str, Any] = {"home": home}
    names = {item.name for item in fields(Settings)} - {"home"}
    config_path = home / CONFIG_FILE
    if config_path.exists():
        try:
            document = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{config_path}: {exc}") from exc
        for name, value in document.items():
            if name not in names:
                raise ConfigurationError(f"{config_path}: unknown setting {name!r}")
            values[name] = _coerce(name, value)
    for name in names:
        env_value = env.get(f"TZSB_{name.upper()}")
        if env_value is not None:
            values[name] = _coerce(name, env_value)
    settings = replace(Settings(), **values)
    overrides = {k: _override(k, v) for k, v in overrides.items() if v is not None}
    settings = replace(settings, **overrides)
    if not 1 <= settings.workers <= 64:
        raise ConfigurationError(f"workers must be between 1 and 64, got {settings.workers}")
    if settings.header_timeout_seconds <= 0 or settings.body_timeout_seconds <= 0:
        raise ConfigurationError("header_timeout_seconds and body_timeout_seconds must be more than 0")
    if settings.limit_concurrency < 0:
        raise ConfigurationError(f"limit_concurrency must be 0 (no cap) or more, got {settings.limit_concurrency}")
    if settings.max_header_bytes < 1024:
        raise ConfigurationError(f"max_header_bytes must be at least 1024, got {settings.max_header_bytes}")
    for name in _NETWORKS:
        _check_networks(name, getattr(settings, name))
    if settings.log_level not in LOG_LEVELS:
        raise ConfigurationError(f"log_level {settings.log_level!r} must be one of {', '.join(LOG_LEVELS)}")
    if settings.log_format not in LOG_FORMATS:
        raise ConfigurationError(f"log_format {settings.log_format!r} must be one of {', '.join(LOG_FORMATS)}")
    if settings.level not in LEVELS:
        raise ConfigurationError(f"level {settings.level!r} must be one of {', '.join(LEVELS)}")
    if not settings.service_path.startswith("/") or settings.service_path.count("/") != 2:
        raise ConfigurationError("service_path must look like /<service>/<interFlag>")
    return settings


def write_config(settings: Settings) -> Path:
    """Write the node's identity and storage to ``<home>/tzsb.toml`` (never the master key).

    Written by a TOML writer, so any character of a password survives, and created 0600 from the
    first byte: the database URL may hold the database password.
    """
    path = settings.home / CONFIG_FILE
    document: dict[str, str] = {
        "level": settings.level,
        "region": settings.region,
        "service_path": settings.service_path,
    }
    if settings.database_url:
        document["database_url"] = str(settings.database_url)
    text = "# tzsb-exchange node settings; environment variables TZSB_<NAME> override them.\n" + tomli_w.dumps(document)
    # mkstemp: a new file (O_EXCL) under a fresh name, 0600 whatever the umask; a stale temporary file
    # left by a crashed run cannot be in the way.
    descriptor, name = tempfile.mkstemp(prefix=f".{CONFIG_FILE}.", suffix=".tmp", dir=settings.home)
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
