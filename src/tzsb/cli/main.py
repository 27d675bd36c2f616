"""``tzsb``: create a node, manage its apps, serve it, and talk to any node from the shell."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from tzsb.errors import ConfigurationError
from tzsb.protocol.codes import BUSINESS_TYPES
from tzsb.protocol.regions import is_region_code
from tzsb.protocol.signing import SignAlgorithm
from tzsb.settings import LEVELS, load_settings, write_config

app = typer.Typer(help="tzsb-exchange: 特种设备安全监管信息共享接口 node.", no_args_is_help=True)
apps_cli = typer.Typer(help="Apps (callers) of this node: create, list, show, disable, rotate secrets.")
catalog_cli = typer.Typer(help="The data catalog: business types and their data elements.")
rules_cli = typer.Typer(help="Data-quality rules: run each interface's rule tests.")
users_cli = typer.Typer(help="Console accounts: create, list, disable, change passwords.")
app.add_typer(users_cli, name="user")
app.add_typer(apps_cli, name="app")
app.add_typer(catalog_cli, name="catalog")
app.add_typer(rules_cli, name="rules")
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

HomeOption = Annotated[
    Path, typer.Option("--home", envvar="TZSB_HOME", help="Node home folder (or TZSB_HOME).", show_default=False)
]


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def _node(home: Path) -> Any:
    from tzsb.app import build_node

    try:
        return build_node(load_settings(home))
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None


def _print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n")


@app.command()
def init(
    home: HomeOption,
    level: Annotated[str, typer.Option(help=f"Node level: {', '.join(LEVELS)}.")] = "province",
    region: Annotated[str, typer.Option(help="GB/T 2260 region code of this node (100000 = national).")] = "100000",
    database_url: Annotated[str, typer.Option(help="PostgreSQL URL; default SQLite in the home.")] = "",
    service_path: Annotated[str, typer.Option(help="Interface path /<service>/<interFlag>.")] = "/tzsb/exchange",
) -> None:
    """Create a node home: settings, master key (0600) and a migrated database. Never overwrites."""
    from tzsb.registry.keys import MasterKey
    from tzsb.store import open_store

    if level not in LEVELS:
        raise _fail(f"--level must be one of {', '.join(LEVELS)}")
    if not is_region_code(region):
        raise _fail("--region must be a 6-digit GB/T 2260 code, e.g. 330000 (100000 = national)")
    if (home / "tzsb.toml").exists() or (home / "master.key").exists():
        raise _fail(f"{home} already holds a node; choose another --home (nothing was changed)")
    home.mkdir(parents=True, exist_ok=True)
    try:
        settings = load_settings(
            home, environ={}, level=level, region=region, database_url=database_url, service_path=service_path
        )
        open_store(settings.database).dispose()
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:
        raise _fail(f"cannot open the database: {exc}") from None
    MasterKey.generate().write(settings.master_key_path)
    write_config(settings)
    console.print(f"node created in {home.resolve()} ({level} {region}); next: tzsb app create --home {home} ...")


@app.command()
def serve(
    home: HomeOption,
    host: Annotated[str | None, typer.Option(help="Listen address (default from settings: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default from settings: 8080).")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="Server certificate (PEM): serve HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Server private key (PEM).")] = None,
    client_ca: Annotated[
        Path | None, typer.Option(help="CA bundle (PEM): demand client certificates signed by it (mutual TLS).")
    ] = None,
) -> None:
    """Serve the interface over HTTP, or HTTPS with --tls-cert/--tls-key (and --client-ca for mutual TLS)."""
    import uvicorn

    from tzsb.web import create_asgi
    from tzsb.web.tls import TLSOptions

    if (tls_cert is None) != (tls_key is None) or (client_ca is not None and tls_cert is None):
        raise _fail("--tls-cert and --tls-key go together, and --client-ca needs both")
    tls = TLSOptions(tls_cert, tls_key, client_ca) if tls_cert is not None and tls_key is not None else None
    from tzsb.app import tune_runtime

    node = _node(home)
    settings = node.settings
    scheme = "https" if tls else "http"
    console.print(
        f"serving {settings.level} node {settings.region} at "
        f"{scheme}://{host or settings.host}:{port or settings.port}{settings.service_path}"
        + (" (client certificates required)" if client_ca else "")
    )
    asgi = create_asgi(node)
    tune_runtime()
    uvicorn.run(
        asgi,
        host=host or settings.host,
        port=port or settings.port,
        log_level="warning",
        access_log=False,
        # The client address is the TCP peer: a forwarded-for header would let a caller pick the
        # address that IP allow-lists and lock-outs judge.
        proxy_headers=False,
        **(tls.uvicorn_options() if tls else {}),
    )


@apps_cli.command("create")
def app_create(
    home: HomeOption,
    appid: Annotated[str, typer.Option(help="The app's id, agreed with the caller.")],
    region: Annotated[str, typer.Option(help="Region the app may read and write (e.g. 330100).")],
    busicode: Annotated[list[str], typer.Option(help="Granted busicode (repeat), e.g. 140101.")],
    action: Annotated[list[str], typer.Option(help="Granted action (repeat): 01 02 03 04.")],
    sign: Annotated[SignAlgorithm, typer.Option(help="Sign algorithm.")] = SignAlgorithm.MD5,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    max_records: Annotated[int, typer.Option(help="Most records per request.")] = 1000,
    override: Annotated[list[str] | None, typer.Option(help="Business type (e.g. 0101) it may take over.")] = None,
    level: Annotated[
        str | None, typer.Option(help="county, city, province, national, external or public (default: from region).")
    ] = None,
    max_bytes: Annotated[int | None, typer.Option(help="Largest request body in bytes.")] = None,
    rate: Annotated[int, typer.Option(help="Requests per minute (0 = no limit).")] = 0,
    ip_allow: Annotated[list[str] | None, typer.Option(help="Allowed client address or CIDR (repeat).")] = None,
    unmasked: Annotated[
        list[str] | None, typer.Option(help="Business type (e.g. 0103) answered without masking (repeat).")
    ] = None,
    require_timestamp: Annotated[bool, typer.Option(help="Demand the signed timestamp parameter.")] = False,
    cert_fingerprint: Annotated[
        list[str] | None, typer.Option(help="SHA-256 of a client certificate bound to the app (repeat).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Register an app and print its secret once."""
    from tzsb.registry import AppSpec

    node = _node(home)
    spec = AppSpec(
        appid=appid,
        region=region,
        busicodes=frozenset(busicode),
        actions=frozenset(action),
        sign_algorithm=sign,
        name=name,
        max_records=max_records,
        overrides=frozenset(override or ()),
        level=level,
        max_bytes=max_bytes,
        rate_per_minute=rate,
        ip_allow=tuple(ip_allow or ()),
        unmasked=frozenset(unmasked or ()),
        require_timestamp=require_timestamp,
        cert_fingerprints=tuple(item.lower().replace(":", "") for item in cert_fingerprint or ()),
    )
    try:
        created, secret = node.registry.create(spec)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    finally:
        node.close()
    shown = {**created.describe(), "secret": secret}
    if as_json:
        _print_json(shown)
    else:
        console.print(f"app {appid} created. secret (shown only now, store it safely): [bold]{secret}[/bold]")


@apps_cli.command("list")
def app_list(home: HomeOption, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the apps of this node."""
    node = _node(home)
    try:
        apps = [item.describe() for item in node.registry.list()]
    finally:
        node.close()
    if as_json:
        _print_json(apps)
        return
    table = Table("appid", "region", "busicodes", "actions", "sign", "enabled")
    for item in apps:
        table.add_row(
            str(item["appid"]),
            str(item["region"]),
            " ".join(item["busicodes"]),
            " ".join(item["actions"]),
            str(item["sign"]),
            "yes" if item["enabled"] else "no",
        )
    console.print(table)


@apps_cli.command("show")
def app_show(home: HomeOption, appid: str) -> None:
    """Show one app (never its secret)."""
    node = _node(home)
    try:
        found = node.registry.get(appid)
    finally:
        node.close()
    if found is None:
        raise _fail(f"no app {appid}; `tzsb app list` shows the registered ones")
    _print_json(found.describe())


def _set_enabled(home: Path, appid: str, enabled: bool) -> None:
    node = _node(home)
    try:
        node.registry.set_enabled(appid, enabled)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    finally:
        node.close()
    console.print(f"app {appid} {'enabled' if enabled else 'disabled'}")


@apps_cli.command("disable")
def app_disable(home: HomeOption, appid: str) -> None:
    """Refuse every further request of the app (E_APPID)."""
    _set_enabled(home, appid, False)


@apps_cli.command("enable")
def app_enable(home: HomeOption, appid: str) -> None:
    """Accept the app's requests again."""
    _set_enabled(home, appid, True)


@apps_cli.command("rotate-secret")
def app_rotate_secret(
    home: HomeOption,
    appid: str,
    grace_hours: Annotated[float, typer.Option(help="Hours the old secret keeps verifying.")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Issue a new secret (printed once); the old one stops now or after the grace period."""
    node = _node(home)
    try:
        secret = node.registry.rotate_secret(appid, timedelta(hours=grace_hours))
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    finally:
        node.close()
    if as_json:
        _print_json({"appid": appid, "secret": secret, "grace_hours": grace_hours})
    else:
        console.print(f"new secret for {appid} (shown only now): [bold]{secret}[/bold]")


@apps_cli.command("lockouts")
def app_lockouts(home: HomeOption, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """App and address pairs with failed signature checks; locked pairs first (spec 7.4)."""
    from tzsb.registry.lockout import Lockouts

    node = _node(home)
    try:
        rows = Lockouts(node.store, node.clock).listing()
    finally:
        node.close()
    if as_json:
        _print_json(rows)
        return
    table = Table("appid", "client", "failures", "last failure", "locked until")
    for row in rows:
        table.add_row(
            row["appid"], row["client_addr"], str(row["failures"]), row["last_failed_at"],
            row["locked_until"] if row["locked"] else "",
        )  # fmt: skip
    console.print(table)


@apps_cli.command("unlock")
def app_unlock(
    home: HomeOption,
    appid: str,
    addr: Annotated[str | None, typer.Option(help="Only this client address (default: all).")] = None,
) -> None:
    """Lift a lock-out after checking the caller's secret with them."""
    from tzsb.registry.lockout import Lockouts

    node = _node(home)
    try:
        removed = Lockouts(node.store, node.clock).clear(appid, addr)
    finally:
        node.close()
    console.print(f"cleared {removed} lock-out record(s) of {appid}")


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
        raise _fail("give exactly one of --file (a busilist array) or --query (a conditions object)")
    try:
        if file is not None:
            raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
            busilist = orjson.loads(raw)
        else:
            busilist = [orjson.loads(query or "")]
    except (OSError, orjson.JSONDecodeError) as exc:
        raise _fail(f"cannot read the busilist: {exc}") from None
    if not isinstance(busilist, list):
        raise _fail("the busilist must be a JSON array of objects")
    try:
        with ExchangeClient(url, appid, secret, sign) as client:
            response = client.send(busicode, action, busilist, random)
    except ResponseSignatureError as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:
        raise _fail(f"request failed: {exc}") from None
    _print_json(response.body)
    if not response.ok:
        raise typer.Exit(code=1)


@app.command("prune-nonces")
def prune_nonces_command(
    home: HomeOption,
    days: Annotated[int, typer.Option(help="Forget random values claimed more than this many days ago.")] = 30,
) -> None:
    """Forget old request ids (random); apps with --require-timestamp stay safe from replays."""
    from datetime import timedelta

    from tzsb.store.maintenance import prune_nonces

    if days < 1:
        raise _fail("--days must be at least 1")
    node = _node(home)
    try:
        removed = prune_nonces(node.store, node.clock.now() - timedelta(days=days))
    finally:
        node.close()
    console.print(f"forgot {removed} request id(s) older than {days} day(s)")


@app.command()
def log(
    home: HomeOption,
    limit: Annotated[int, typer.Option(help="How many rows, newest first.")] = 20,
    appid: Annotated[str | None, typer.Option(help="Only this app.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the newest rows of the interaction log."""
    from tzsb.audit import InteractionLog

    node = _node(home)
    try:
        rows = InteractionLog(node.store).recent(limit, appid)
    finally:
        node.close()
    if as_json:
        _print_json(rows)
        return
    table = Table("at", "appid", "busicode", "action", "records", "result", "code", "ms", "client")
    for row in rows:
        table.add_row(
            row["at"],
            row["appid"],
            row["busicode"],
            row["action"],
            str(row["record_count"]),
            row["result"],
            row["code"],
            f"{row['duration_ms']:.1f}",
            row["client_addr"],
        )
    console.print(table)


@catalog_cli.command("list")
def catalog_list(home: Annotated[Path | None, typer.Option("--home", envvar="TZSB_HOME")] = None) -> None:
    """The business types this node serves."""
    from tzsb.catalog import load_catalog

    catalog = load_catalog(home / "catalog" if home else None)
    table = Table("code", "name", "primary key", "region field", "fields")
    for code in catalog:
        business = catalog[code]
        table.add_row(code, business.name, business.primary_key, business.region_field, str(len(business.fields)))
    console.print(table)


@catalog_cli.command("show")
def catalog_show(
    code: str,
    home: Annotated[Path | None, typer.Option("--home", envvar="TZSB_HOME")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The data elements of one business type."""
    from tzsb.catalog import load_catalog

    catalog = load_catalog(home / "catalog" if home else None)
    if code not in catalog:
        known = ", ".join(catalog) or "none"
        hint = f" ({BUSINESS_TYPES[code]} has no data elements yet)" if code in BUSINESS_TYPES else ""
        raise _fail(f"business type {code} is not in the catalog{hint}; known: {known}")
    business = catalog[code]
    if as_json:
        _print_json(
            {
                "code": business.code,
                "name": business.name,
                "primary_key": business.primary_key,
                "region_field": business.region_field,
                "timestamp_field": business.timestamp_field,
                "fields": [
                    {
                        "code": spec.code,
                        "name": spec.name,
                        "type": spec.type.value,
                        "length": spec.length,
                        "required": spec.required,
                        "pattern": spec.pattern,
                        "codes": dict(spec.codes),
                        "sensitive": spec.sensitive,
                        "description": spec.description,
                    }
                    for spec in business.fields
                ],
            }
        )
        return
    table = Table("code", "name", "type", "len", "req", "sensitive", "pattern / codes", title=f"{code} {business.name}")
    for spec in business.fields:
        rule = spec.pattern or ", ".join(f"{k}={v}" for k, v in spec.codes.items())
        table.add_row(
            spec.code,
            spec.name,
            spec.type.value,
            str(spec.length or ""),
            "Y" if spec.required else "",
            "Y" if spec.sensitive else "",
            rule,
        )
    console.print(table)


@catalog_cli.command("docs")
def catalog_docs(
    out: Annotated[Path, typer.Option(help="Folder for the generated pages.")] = Path("docs/catalog"),
    home: Annotated[Path | None, typer.Option("--home", envvar="TZSB_HOME")] = None,
) -> None:
    """Write a reference page per business type (Chinese names first) and an index."""
    from tzsb.catalog import load_catalog
    from tzsb.catalog.reference_docs import pages

    out.mkdir(parents=True, exist_ok=True)
    generated = pages(load_catalog(home / "catalog" if home else None))
    for name, text in generated.items():
        (out / name).write_text(text, encoding="utf-8")
    console.print(f"wrote {len(generated)} pages to {out}")


@rules_cli.command("test")
def rules_test(
    home: Annotated[Path | None, typer.Option("--home", envvar="TZSB_HOME", help="Include <home>/rules.json.")] = None,
    busicode: Annotated[
        list[str] | None, typer.Option(help="Only these business types (4 digits, or a 6-digit busicode).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List passing cases too.")] = False,
) -> None:
    """Run the rule tests of every interface; exit 1 when any fails (that interface stays disabled)."""
    from tzsb.catalog import load_catalog
    from tzsb.clock import SystemClock
    from tzsb.rules.ruleset import RULES_FILE, compile_rules

    try:
        catalog = load_catalog(home / "catalog" if home else None)
        compiled = compile_rules(catalog, home / RULES_FILE if home else None, SystemClock())
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    wanted = {code[-4:] for code in busicode or ()} or set(catalog)
    failed = 0
    table = Table("business", "cases", "passed", "state")
    for code in sorted(wanted):
        if code not in compiled.results:
            raise _fail(f"business type {code} is not in the catalog")
        results = compiled.results[code]
        bad = [result for result in results if not result.passed]
        failed += len(bad)
        table.add_row(
            f"{code} {catalog[code].name}", str(len(results)), str(len(results) - len(bad)),
            "[red]disabled[/red]" if bad else "[green]enabled[/green]",
        )  # fmt: skip
        for result in results if verbose else bad:
            console.print(("  ok    " if result.passed else "  FAIL  ") + result.detail)
    console.print(table)
    if failed:
        raise typer.Exit(code=1)


def _accounts(home: Path) -> tuple[Any, Any]:
    from tzsb.registry.accounts import AccountStore

    node = _node(home)
    return node, AccountStore(node.store, node.clock)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return password


@users_cli.command("create")
def user_create(
    home: HomeOption,
    username: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="admin, operator, data_entry or auditor.")],
    region: Annotated[str, typer.Option(help="Region the account may see and change.")],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Create a console account (password hashed with scrypt)."""
    from tzsb.registry.accounts import Role

    try:
        chosen = Role(role)
    except ValueError:
        raise _fail("--role must be one of admin, operator, data_entry, auditor") from None
    password = _read_password(password_stdin)
    node, store = _accounts(home)
    try:
        store.create(username, password, chosen, region)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    finally:
        node.close()
    console.print(f"account {username} ({chosen.value}, {region}) created")


@users_cli.command("list")
def user_list(home: HomeOption, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List console accounts (never their password hashes)."""
    node, store = _accounts(home)
    try:
        rows = [
            {"username": a.username, "role": a.role.value, "region": a.region, "enabled": a.enabled}
            for a in store.list()
        ]
    finally:
        node.close()
    if as_json:
        _print_json(rows)
        return
    table = Table("username", "role", "region", "enabled")
    for row in rows:
        table.add_row(row["username"], row["role"], row["region"], "yes" if row["enabled"] else "no")
    console.print(table)


@users_cli.command("disable")
def user_disable(home: HomeOption, username: str) -> None:
    """Refuse every further login of the account."""
    node, store = _accounts(home)
    try:
        store.set_enabled(username, False)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    finally:
        node.close()
    console.print(f"account {username} disabled")


@users_cli.command("passwd")
def user_passwd(
    home: HomeOption,
    username: str,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Set a new password."""
    password = _read_password(password_stdin)
    node, store = _accounts(home)
    try:
        store.set_password(username, password)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    finally:
        node.close()
    console.print(f"password of {username} changed")


def main() -> None:
    app()
