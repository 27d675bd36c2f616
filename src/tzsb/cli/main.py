"""``tzsb``: create a node, manage its apps, serve it, and talk to any node from the shell."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from tzsb.cli.apps import apps_cli
from tzsb.cli.audit import audit_cli
from tzsb.cli.catalog import catalog_cli, rules_cli
from tzsb.cli.common import (
    HomeOption,
    console,
    create_home,
    fail,
    node_session,
    open_node,
    print_json,
    redact,
    warn_exposed,
)
from tzsb.cli.demo import demo
from tzsb.cli.monitor import monitor_cli
from tzsb.cli.records import records_cli
from tzsb.cli.services import services_cli
from tzsb.cli.sync import links_cli, sync_cli
from tzsb.cli.users import users_cli
from tzsb.errors import ConfigurationError
from tzsb.protocol import SignAlgorithm, is_region_code
from tzsb.settings import LEVELS, load_settings, write_config

# Never the locals of a traceback's frames (older typer releases showed them by default): they hold the
# database URL with its password and app secrets as plain strings.
app = typer.Typer(
    help="tzsb-exchange: 特种设备安全监管信息共享接口 node.", no_args_is_help=True, pretty_exceptions_show_locals=False
)
app.add_typer(apps_cli, name="app")
app.add_typer(audit_cli, name="audit")
app.add_typer(monitor_cli, name="monitor")
app.add_typer(catalog_cli, name="catalog")
app.add_typer(rules_cli, name="rules")
app.add_typer(users_cli, name="user")
app.add_typer(records_cli, name="record")
app.add_typer(links_cli, name="link")
app.add_typer(sync_cli, name="sync")
app.add_typer(services_cli, name="service")
app.command("demo")(demo)


def _version(show: bool) -> None:
    if show:
        from tzsb import __version__

        console.print(f"tzsb-exchange {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the installed version and exit."),
    ] = False,
) -> None:
    """tzsb-exchange: 特种设备安全监管信息共享接口 node."""


@app.command()
def init(
    home: HomeOption,
    level: Annotated[str, typer.Option(help=f"Node level: {', '.join(LEVELS)}.")] = "province",
    region: Annotated[str, typer.Option(help="GB/T 2260 region code of this node (100000 = national).")] = "100000",
    database_url: Annotated[str, typer.Option(help="PostgreSQL URL; default SQLite in the home.")] = "",
    service_path: Annotated[str, typer.Option(help="Interface path /<service>/<interFlag>.")] = "/tzsb/exchange",
) -> None:
    """Create a node home: settings, master key (0600) and a migrated database. Never overwrites."""
    from tzsb.registry import MasterKey
    from tzsb.store import open_store

    if level not in LEVELS:
        raise fail(f"--level must be one of {', '.join(LEVELS)}")
    if not is_region_code(region):
        raise fail("--region must be a 6-digit GB/T 2260 code, e.g. 330000 (100000 = national)")
    if (home / "tzsb.toml").exists() or (home / "master.key").exists():
        raise fail(f"{home} already holds a node; choose another --home (nothing was changed)")
    try:
        create_home(home)
    except OSError as exc:
        raise fail(f"cannot create the node home {home}: {exc}; choose another --home") from None
    try:
        settings = load_settings(
            home, environ={}, level=level, region=region, database_url=database_url, service_path=service_path
        )
        open_store(settings.database).dispose()
    except ConfigurationError as exc:
        raise fail(redact(str(exc), database_url)) from None
    except Exception as exc:
        # A driver's message may quote the URL or its password.
        raise fail(f"cannot open the database: {redact(str(exc), database_url)}") from None
    MasterKey.generate().write(settings.master_key_path)
    write_config(settings)
    console.print(f"node created in {home.resolve()} ({level} {region}); next: tzsb app create --home {home} ...")


@app.command()
def serve(
    home: HomeOption,
    host: Annotated[str | None, typer.Option(help="Listen address (default from settings: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default from settings: 8080).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes (default from settings: 1); use one per core.")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="Server certificate (PEM): serve HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Server private key (PEM).")] = None,
    client_ca: Annotated[
        Path | None, typer.Option(help="CA bundle (PEM): demand client certificates signed by it (mutual TLS).")
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            help="Network (CIDR) of a reverse proxy in front of the node; repeatable. From these peers only, the "
            "client address is taken from X-Forwarded-For (default from settings: none, always the TCP peer).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            help="Lowest level logged on stderr: debug, info, warning, error (default from settings: info).",
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            help="text (a timestamped line each) or json (an object per line) (default from settings: text).",
            show_default=False,
        ),
    ] = None,
    limit_concurrency: Annotated[
        int | None,
        typer.Option(
            help="Connections and requests held at once per worker; past it new requests get 503 (default from "
            "settings: 1000; 0 = no cap).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the interface over HTTP, or HTTPS with --tls-cert/--tls-key (and --client-ca for mutual TLS)."""
    import ipaddress
    import os
    import shutil

    import uvicorn

    from tzsb.app import tune_runtime
    from tzsb.cli import logs
    from tzsb.web import ReadTimeouts, TLSOptions, create_asgi, http_protocol

    if (tls_cert is None) != (tls_key is None) or (client_ca is not None and tls_cert is None):
        raise fail("--tls-cert and --tls-key go together, and --client-ca needs both")
    tls = TLSOptions(tls_cert, tls_key, client_ca) if tls_cert is not None and tls_key is not None else None
    for network in trusted_proxy or ():
        try:
            ipaddress.ip_network(network, strict=True)
        except ValueError as exc:
            raise fail(f"--trusted-proxy {network!r} is not a network such as 10.0.0.0/24 or 10.0.0.5: {exc}") from None
    # The worker processes read their settings from the environment, as this process does.
    if workers is not None:
        os.environ["TZSB_WORKERS"] = str(workers)
    if trusted_proxy:
        os.environ["TZSB_TRUSTED_PROXIES"] = ",".join(trusted_proxy)
    if limit_concurrency is not None:
        os.environ["TZSB_LIMIT_CONCURRENCY"] = str(limit_concurrency)
    if log_level is not None:
        os.environ["TZSB_LOG_LEVEL"] = log_level
    if log_format is not None:
        os.environ["TZSB_LOG_FORMAT"] = log_format
    try:
        logging_settings = load_settings(home)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    logs.configure(logging_settings.log_level, logging_settings.log_format)
    warn_exposed(home)
    node = open_node(home)
    settings = node.settings
    timeouts = ReadTimeouts(settings.header_timeout_seconds, settings.body_timeout_seconds)
    scheme = "https" if tls else "http"
    console.print(
        f"serving {settings.level} node {settings.region} at "
        f"{scheme}://{host or settings.host}:{port or settings.port}{settings.service_path}"
        + (" (client certificates required)" if client_ca else "")
        + (f" with {settings.workers} worker processes" if settings.workers > 1 else "")
        + (f", trusting X-Forwarded-For from {', '.join(settings.trusted_proxies)}" if settings.trusted_proxies else "")
    )
    options: dict[str, Any] = {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_config": logs.log_config(settings.log_level, settings.log_format),
        "access_log": False,
        # uvicorn's own forwarded-for handling stays off (it passes a malformed entry on as the address,
        # and trusts 127.0.0.1 unless told otherwise): the node reads X-Forwarded-For itself, from
        # --trusted-proxy peers only (tzsb.web.clients).
        "proxy_headers": False,
        "http": http_protocol(settings.max_header_bytes, timeouts=timeouts),
        **(tls.uvicorn_options(settings.max_header_bytes, timeouts) if tls else {}),
        "limit_concurrency": settings.limit_concurrency or None,
    }
    if settings.workers == 1:
        asgi = create_asgi(node)
        tune_runtime()
        uvicorn.run(asgi, **options)
        return
    node.close()  # each worker builds its own
    os.environ["TZSB_HOME"] = str(settings.home.resolve())
    # Each worker counts its metrics in files of this folder; a scrape adds them up. Emptied at
    # each start: counts of an earlier run must not add to this one's.
    metrics_folder = settings.home / ".metrics"
    shutil.rmtree(metrics_folder, ignore_errors=True)
    metrics_folder.mkdir(mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_folder.resolve())
    uvicorn.run("tzsb.web.server:worker_app", factory=True, workers=settings.workers, **options)


@app.command()
def send(
    url: Annotated[str, typer.Option(help="Interface URL, e.g. http://127.0.0.1:8080/tzsb/exchange.")],
    appid: Annotated[str, typer.Option()],
    secret: Annotated[str, typer.Option(envvar="TZSB_SECRET", help="The app's secret (or TZSB_SECRET).")],
    busicode: Annotated[str, typer.Option(help="e.g. 140101.")],
    action: Annotated[str, typer.Option(help="01 add, 02 modify, 03 delete, 04 query.")],
    file: Annotated[Path | None, typer.Option(help="JSON file with the busilist array ('-' = stdin).")] = None,
    query: Annotated[str | None, typer.Option(help="Query conditions as a JSON object (action 04).")] = None,
    sign: Annotated[SignAlgorithm, typer.Option(help="The app's sign algorithm.")] = SignAlgorithm.MD5,
    random: Annotated[str | None, typer.Option(help="Request id (default: a new UUID).")] = None,
) -> None:
    """Sign and send one request; print the verified answer. Exit code 1 when it was refused."""
    from tzsb.client import ExchangeClient, ResponseSignatureError

    if (file is None) == (query is None):
        raise fail("give exactly one of --file (a busilist array) or --query (a conditions object)")
    try:
        if file is not None:
            raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
            busilist = orjson.loads(raw)
        else:
            busilist = [orjson.loads(query or "")]
    except (OSError, orjson.JSONDecodeError) as exc:
        raise fail(f"cannot read the busilist: {exc}") from None
    if not isinstance(busilist, list):
        raise fail("the busilist must be a JSON array of objects")
    try:
        with ExchangeClient(url, appid, secret, sign) as client:
            response = client.send(busicode, action, busilist, random)
    except ResponseSignatureError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:
        raise fail(f"request failed: {exc}") from None
    print_json(response.body)
    if not response.ok:
        raise typer.Exit(code=1)


@app.command("prune-nonces")
def prune_nonces_command(
    home: HomeOption,
    days: Annotated[int, typer.Option(help="Forget random values claimed more than this many days ago.")] = 30,
) -> None:
    """Forget old request ids (random); apps with --require-timestamp stay safe from replays."""
    from datetime import timedelta

    from tzsb.store import nonces

    if days < 1:
        raise fail("--days must be at least 1")
    with node_session(home) as node:
        removed = nonces.prune(node.store, node.clock.now() - timedelta(days=days))
    console.print(f"forgot {removed} request id(s) older than {days} day(s)")


@app.command()
def log(
    home: HomeOption,
    limit: Annotated[int, typer.Option(help="How many rows, newest first.")] = 20,
    appid: Annotated[str | None, typer.Option(help="Only this app.")] = None,
    correlation: Annotated[
        str | None, typer.Option(help="Only the legs of one routed request (the corr column, in full).")
    ] = None,
    unidentified: Annotated[
        bool, typer.Option(help="Refusals of callers that never proved who they are, counted per address and minute.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the newest rows of the interaction log."""
    from tzsb.audit import InteractionLog, RefusalTally

    if unidentified:
        with node_session(home) as node:
            tallies = RefusalTally(node.store, node.clock).listing(limit)
        if as_json:
            print_json([
                {"client_addr": t.client_addr, "minute": t.minute, "count": t.count, "last_code": t.last_code}
                for t in tallies
            ])  # fmt: skip
            return
        table = Table("minute (UTC)", "client", "refusals", "last code")
        for tally in tallies:
            moment = datetime.fromtimestamp(tally.minute * 60, UTC).strftime("%Y-%m-%d %H:%M")
            table.add_row(moment, tally.client_addr, str(tally.count), tally.last_code)
        console.print(table)
        return
    with node_session(home) as node:
        rows = InteractionLog(node.store).recent(limit, appid, correlation)
    if as_json:
        print_json(rows)
        return
    # "out": a batch this node sent over a sync link, or a routed request's leg to its provider (client
    # is then where it went); a routed request's two legs share "corr" (the first 8 characters shown).
    table = Table("at", "dir", "appid", "busicode", "action", "records", "result", "code", "ms", "client", "corr")
    for row in rows:
        table.add_row(
            row["at"],
            row["direction"],
            row["appid"],
            row["busicode"],
            row["action"],
            str(row["record_count"]),
            row["result"],
            row["code"],
            f"{row['duration_ms']:.1f}",
            row["client_addr"],
            row["correlation"][:8],
        )
    console.print(table)


def main() -> None:
    app()
