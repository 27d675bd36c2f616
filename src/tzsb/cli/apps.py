"""`tzsb app …`: register callers, show and change their grants, rotate secrets, lift lock-outs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tzsb.cli.common import HomeOption, console, fail, node_session, print_json
from tzsb.protocol import SignAlgorithm

apps_cli = typer.Typer(help="Apps (callers) of this node: create, list, show, disable, rotate secrets.")


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
    report_every: Annotated[
        str | None,
        typer.Option(
            help="How often it must deliver data (5.4): 12h, 1d, 2d … (default: its level's, if a regulator below)."
        ),
    ] = None,
    log_auditor: Annotated[
        bool, typer.Option(help="May read every interaction-log entry within its region (/tzsb/log), not only its own.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Register an app and print its secret once."""
    from tzsb.errors import ConfigurationError
    from tzsb.registry import AppSpec
    from tzsb.sync import parse_every

    try:
        report_every_seconds = None if report_every is None else parse_every(report_every)
    except ConfigurationError as exc:
        raise fail(str(exc).replace("--every", "--report-every")) from None

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
        log_auditor=log_auditor,
        report_every_seconds=report_every_seconds,
    )
    with node_session(home) as node:
        created, secret = node.registry.create(spec)
    shown = {**created.describe(), "secret": secret}
    if as_json:
        print_json(shown)
    else:
        console.print(f"app {appid} created. secret (shown only now, store it safely): [bold]{secret}[/bold]")


@apps_cli.command("list")
def app_list(home: HomeOption, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the apps of this node."""
    with node_session(home) as node:
        apps = [item.describe() for item in node.registry.list()]
    if as_json:
        print_json(apps)
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
    with node_session(home) as node:
        found = node.registry.get(appid)
    if found is None:
        raise fail(f"no app {appid}; `tzsb app list` shows the registered ones")
    print_json(found.describe())


def _set_enabled(home: Path, appid: str, enabled: bool) -> None:
    with node_session(home) as node:
        node.registry.set_enabled(appid, enabled)
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
    with node_session(home) as node:
        secret = node.registry.rotate_secret(appid, timedelta(hours=grace_hours))
    if as_json:
        print_json({"appid": appid, "secret": secret, "grace_hours": grace_hours})
    else:
        console.print(f"new secret for {appid} (shown only now): [bold]{secret}[/bold]")


@apps_cli.command("lockouts")
def app_lockouts(home: HomeOption, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """App and address pairs with failed signature checks; locked pairs first (spec 7.4)."""
    from tzsb.registry import Lockouts

    with node_session(home) as node:
        rows = Lockouts(node.store, node.clock).listing()
    if as_json:
        print_json(rows)
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
    """Lift a lock-out after checking the caller's secret with them (or its collisions with the records' sources)."""
    from tzsb.registry import Collisions, Lockouts

    with node_session(home) as node:
        lockouts = Lockouts(node.store, node.clock)
        removed = lockouts.clear(appid, addr)
        if addr is None:
            # The collisions seen so far stop counting: one more would not lock the app again at once.
            Collisions(node.store, node.clock, lockouts).acknowledge(appid)
    console.print(f"cleared {removed} lock-out record(s) of {appid}")


@apps_cli.command("collisions")
def app_collisions(
    home: HomeOption,
    appid: Annotated[str | None, typer.Option(help="Only this app.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Keys that apps' adds named but records they may not access hold (refused without naming them).

    A few are people or devices registered from another region: hand the record over with
    `tzsb record reassign`. Many from one app look like probing; 10 within 24 hours lock it out.
    """
    from tzsb.registry import Collisions, Lockouts

    with node_session(home) as node:
        rows = Collisions(node.store, node.clock, Lockouts(node.store, node.clock)).listing(appid, limit)
    if as_json:
        print_json([
            {"at": row.at, "appid": row.appid, "client_addr": row.client_addr, "business": row.business,
             "key": row.record_key, "held_region": row.held_region, "held_source": row.held_source}
            for row in rows
        ])  # fmt: skip
        return
    table = Table("at", "appid", "client", "business", "key", "held in", "held by")
    for row in rows:
        table.add_row(
            row.at, row.appid, row.client_addr, row.business, row.record_key, row.held_region, row.held_source
        )
    console.print(table)
